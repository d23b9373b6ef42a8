"""What the Alertmanager did: notifications recorded by the test webhook
receiver (molecule/shared/webhook_receiver.py on the first Alertmanager host),
and the silences it holds (Alertmanager API v2)."""

import json
import urllib.request

from loadgen import container_ip


def notifications(host, path=None):
    """Every webhook notification recorded on host, oldest first: [(path, alert)]."""
    with urllib.request.urlopen("http://%s:9099/log" % container_ip(host), timeout=10) as r:
        lines = r.read().decode().splitlines()
    out = []
    for line in lines:
        record = json.loads(line)
        if path is None or record["path"] == path:
            for alert in record["body"].get("alerts", []):
                out.append((record["path"], alert))
    return out


def silences(host):
    with urllib.request.urlopen("http://%s:9093/api/v2/silences" % container_ip(host), timeout=10) as r:
        return json.load(r)
