"""Helpers for testinfra checks of vLLM hosts: HTTP from inside the host (the
containers ship no curl), unit facts, and waiting with a deadline."""

import json
import time

HTTP = r"""
import json, os, sys, urllib.request, urllib.error
method, url, body = sys.argv[1], sys.argv[2], sys.argv[3]
key = os.environ.get("VLLM_TEST_KEY", "")
req = urllib.request.Request(url, method=method, data=body.encode() if body else None)
req.add_header("Content-Type", "application/json")
if key:
    req.add_header("Authorization", "Bearer " + key)
try:
    with urllib.request.urlopen(req, timeout=60) as r:
        print(json.dumps({"status": r.status, "body": r.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": e.read().decode()}))
except OSError as e:
    print(json.dumps({"status": 0, "body": str(e)}))
"""


def http(host, url, key="", body=None, method=None):
    """Request from inside the host; returns (status, text). The key reaches
    the request through the environment, not the requesting process's argv."""
    method = method or ("POST" if body is not None else "GET")
    payload = json.dumps(body) if body is not None else ""
    cmd = host.run("VLLM_TEST_KEY=%s python3 -c %s %s %s %s", key, HTTP, method, url, payload)
    assert cmd.rc == 0, cmd.stderr
    out = json.loads(cmd.stdout)
    return out["status"], out["body"]


def own_url(host, port, path=""):
    """A URL of a service on ``host`` as the host itself reaches it: the services
    listen on the host's fleet address (its name here), not on loopback."""
    return "http://%s:%d%s" % (host.backend.get_hostname(), port, path)


def unit_property(host, unit, prop):
    return host.check_output("systemctl show -p %s --value %s", prop, unit)


def wait_for(predicate, timeout, interval=2.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %d s waiting for %s" % (timeout, what))
