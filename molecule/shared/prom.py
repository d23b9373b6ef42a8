"""Prometheus HTTP API helpers for the verifiers (from the controller)."""

import json
import urllib.parse
import urllib.request


def api(base, path, **params):
    url = base.rstrip("/") + path + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=30) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]


def query(base, expr, time=None):
    params = {"query": expr}
    if time is not None:
        params["time"] = "%.3f" % time
    return api(base, "/api/v1/query", **params)["result"]


def alerts(base, name=None, state=None):
    found = api(base, "/api/v1/alerts")["alerts"]
    return [a for a in found
            if (name is None or a["labels"].get("alertname") == name) and (state is None or a["state"] == state)]


def targets(base):
    return api(base, "/api/v1/targets", state="active")["activeTargets"]
