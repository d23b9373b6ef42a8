"""A steady load through the gateway, from the controller, counting failures.

Used by scenarios that must prove "no request lost": start() sends one
completion every 1/rate seconds (each on its own thread, so a slow request does
not slow the schedule) until stop(); every non-200 answer or connection error
is recorded with its time and reason.
"""

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request


def container_ip(name):
    out = subprocess.check_output(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name], text=True)
    return out.split()[0]


class LoadGenerator:
    def __init__(self, url, api_key, model, rate=2.0, max_tokens=8, timeout=120, prompt="Hello"):
        self.url = url.rstrip("/") + "/v1/completions"
        self.prompt = prompt
        self.api_key = api_key
        self.model = model
        self.interval = 1.0 / rate
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.sent = 0
        self.ok = 0
        self.failures = []
        self.served_by_model = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self._scheduler = None

    def _one(self):
        body = json.dumps({"model": self.model, "prompt": self.prompt, "max_tokens": self.max_tokens}).encode()
        req = urllib.request.Request(self.url, data=body, headers={
            "Content-Type": "application/json", "Authorization": "Bearer " + self.api_key})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                answer = json.loads(resp.read())
                with self._lock:
                    self.ok += 1
                    model = answer.get("model")
                    self.served_by_model[model] = self.served_by_model.get(model, 0) + 1
        except urllib.error.HTTPError as e:
            with self._lock:
                self.failures.append((time.time(), "HTTP %d %s" % (e.code, e.read()[:200])))
        except Exception as e:  # noqa: BLE001 - every failure counts
            with self._lock:
                self.failures.append((time.time(), repr(e)))

    def _schedule(self):
        next_at = time.monotonic()
        while not self._stop.is_set():
            t = threading.Thread(target=self._one, daemon=True)
            t.start()
            self._threads.append(t)
            with self._lock:
                self.sent += 1
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def start(self):
        self._scheduler = threading.Thread(target=self._schedule, daemon=True)
        self._scheduler.start()
        return self

    def stop(self):
        self._stop.set()
        self._scheduler.join()
        for t in self._threads:
            t.join(self.timeout + 5)
        return self

    def summary(self):
        return {"sent": self.sent, "ok": self.ok, "failed": len(self.failures),
                "failures": self.failures[:10], "by_model": dict(self.served_by_model)}
