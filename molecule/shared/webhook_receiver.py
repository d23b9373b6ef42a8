#!/usr/bin/env python3
"""Test helper: a webhook receiver that records what arrives.

Every POST is appended as one JSON line to the log file:
{"path": <request path without the query>, "body": <the JSON body>}. The query
string is never recorded (tests put secrets there). GET /log returns the lines;
anything else answers 200 with an empty body.

    webhook_receiver.py --port 9099 --log /var/lib/webhook/received.jsonl

Standard library only: it runs on the test hosts (Debian's python3) as a
transient systemd service (systemd-run), started and stopped by the test.
"""

import argparse
import http.server
import json
import threading
import urllib.parse

LOCK = threading.Lock()


def handler_for(log_path):
    class Handler(http.server.BaseHTTPRequestHandler):
        def _reply(self, status, body=b""):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(data or b"null")
            except ValueError:
                body = data.decode(errors="replace")
            record = {"path": urllib.parse.urlsplit(self.path).path, "body": body}
            with LOCK, open(log_path, "a") as f:
                f.write(json.dumps(record) + "\n")
            self._reply(200)

        def do_GET(self):
            if urllib.parse.urlsplit(self.path).path != "/log":
                return self._reply(200)
            with LOCK:
                try:
                    with open(log_path, "rb") as f:
                        body = f.read()
                except FileNotFoundError:
                    body = b""
            self._reply(200, body)

        def log_message(self, *args):
            pass

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=9099)
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--log", required=True)
    a = p.parse_args()
    http.server.ThreadingHTTPServer((a.bind, a.port), handler_for(a.log)).serve_forever()


if __name__ == "__main__":
    main()
