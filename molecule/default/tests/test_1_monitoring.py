"""Monitoring of the whole stack: Prometheus targets, rules and alerts, the load
test through the gateway, every dashboard query, Grafana's provisioned objects."""

import glob
import json
import os
import re
import subprocess
import sys
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from loadgen import container_ip  # noqa: E402
from prom import alerts, query, targets  # noqa: E402
from vllm_checks import wait_for  # noqa: E402

# ShareGPT's format (a list of {"id", "conversations": [{"from", "value"}, ...]}),
# written for these tests: short turns, so the tiny model answers quickly.
_TOPICS = ["GPU memory", "a systemd unit", "Prometheus recording rules", "HAProxy health checks",
           "rolling upgrades", "tokenizers", "KV cache blocks", "alert routing", "canary releases",
           "time to first token", "batch scheduling", "model weights on disk"]
SHAREGPT_SMALL = [
    {"id": "llmops-%d" % i,
     "conversations": [
         {"from": "human", "value": "Explain %s to a new operator of an inference fleet, in two sentences." % topic},
         {"from": "gpt", "value": "It matters for %s because the fleet depends on it every day." % topic}]}
    for i, topic in enumerate(_TOPICS)]

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]


@pytest.fixture(scope="module")
def prom():
    # The seed's split layout: Prometheus beside the GPUs, on a vLLM host.
    return "http://%s:9090" % container_ip("stack-vllm-2")


@pytest.fixture(scope="module")
def grafana():
    token = open(os.path.join(EPHEMERAL, "grafana-stack-mon-1.token")).read().strip()

    def get(path):
        req = urllib.request.Request("http://%s:3000%s" % (container_ip("stack-mon-1"), path),
                                     headers={"Authorization": "Bearer " + token})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    return get


def test_every_target_up(prom):
    def all_up():
        found = targets(prom)
        return found if found and all(t["health"] == "up" for t in found) else None
    found = wait_for(all_up, 180, interval=5, what="every Prometheus target up")
    jobs = {t["labels"]["job"] for t in found}
    assert {"vllm", "node", "gateway", "grafana", "prometheus", "triton"} <= jobs, jobs
    vllm_hosts = {t["labels"].get("host") for t in found if t["labels"]["job"] == "vllm"}
    assert vllm_hosts == {"stack-vllm-1", "stack-vllm-2"}


def test_no_alert_firing_in_steady_state(prom):
    # The Watchdog always fires: it is the dead man's switch.
    assert [a for a in alerts(prom, state="firing") if a["labels"]["alertname"] != "Watchdog"] == []


def test_load_test_then_every_dashboard_query_has_data(prom, tmp_path):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), MOLECULE_PROJECT_DIRECTORY=ROOT,
               ANSIBLE_NOCOLOR="1")
    # A small file in ShareGPT's format on the controller: the playbook copies it
    # to the client host and vLLM's benchmark samples its conversations.
    dataset = tmp_path / "sharegpt-small.json"
    dataset.write_text(json.dumps(SHAREGPT_SMALL))
    proc = subprocess.run(["ansible-playbook", "-i", INVENTORY, os.path.join(ROOT, "playbooks", "loadtest.yml"),
                           "-e", "loadtest_num_prompts=30", "-e", "loadtest_dataset=sharegpt",
                           "-e", "loadtest_sharegpt_path=%s" % dataset],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "30 completed, 0 failed" in proc.stdout, proc.stdout[-2000:]
    assert "dataset: ShareGPT file %s" % dataset in proc.stdout, proc.stdout[-2000:]
    # The summary is printed and saved beside the result, with the percentiles.
    result = re.search(r"result: (\S+\.json)", proc.stdout).group(1)
    summary = open(result[:-len(".json")] + ".summary.txt").read()
    assert re.search(r"TTFT: p50 [0-9.]+ ms, p90 [0-9.]+ ms, p99 [0-9.]+ ms", summary), summary
    assert re.search(r"ITL: p50 [0-9.]+ ms, p90 [0-9.]+ ms, p99 [0-9.]+ ms", summary), summary
    assert json.load(open(result))["completed"] == 30
    # Recording rules and rates need a couple of evaluations after the traffic.
    wait_for(lambda: query(prom, "model_name:vllm_num_requests_running:sum"), 120, interval=5,
             what="a recording-rule series")
    check = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "dashboards", "check_queries.py"),
                            "--prometheus", prom, "--gpu-syntax-only", "--wait", "180"],
                           capture_output=True, text=True, timeout=900)
    assert check.returncode == 0, check.stdout[-4000:] + check.stderr[-2000:]


def test_grafana_has_the_datasource_and_dashboards(grafana):
    status, ds = grafana("/api/datasources/uid/prometheus")
    assert status == 200
    assert ds["type"] == "prometheus"
    # Split layout: Grafana reads the Prometheus beside the GPUs over the network,
    # and Grafana's own health check of the datasource (it queries Prometheus) passes.
    assert ds["url"] == "http://stack-vllm-2:9090"
    status, health = grafana("/api/datasources/uid/prometheus/health")
    assert (status, health["status"]) == (200, "OK"), health
    for path in glob.glob(os.path.join(ROOT, "roles", "grafana", "files", "dashboards", "*.json")):
        uid = json.load(open(path))["uid"]
        status, body = grafana("/api/dashboards/uid/%s" % uid)
        assert status == 200
        assert body["dashboard"]["uid"] == uid
