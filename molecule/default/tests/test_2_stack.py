"""The whole stack from site.yml: two vLLM hosts behind the HAProxy gateway."""

import json
import os
import sys
import time

import pytest
import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from loadgen import LoadGenerator, container_ip  # noqa: E402
from prom import alerts  # noqa: E402
from vllm_checks import http, own_url, wait_for  # noqa: E402

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
VLLM_HOSTS = ["stack-vllm-1", "stack-vllm-2"]
GATEWAY = "stack-mon-1"


def backend(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


@pytest.fixture(scope="module")
def gateway():
    return backend(GATEWAY)


@pytest.fixture(scope="module")
def api_key(gateway):
    return backend(VLLM_HOSTS[0]).ansible.get_variables()["vllm_server_api_key"]


@pytest.fixture(scope="module")
def gateway_url():
    return "http://%s:8080" % container_ip(GATEWAY)


def generation_tokens(host):
    status, text = http(host, own_url(host, 8000, "/metrics"))
    assert status == 200
    total = 0.0
    for line in text.splitlines():
        if line.startswith("vllm:generation_tokens_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def haproxy_stat(gateway):
    script = ("import socket,time;s=socket.socket(socket.AF_UNIX);s.connect('/run/haproxy/admin.sock');"
              "s.sendall(b'show stat\\n');time.sleep(0.3);print(s.recv(1<<20).decode())")
    out = gateway.check_output("python3 -c %s", script)
    header = out.splitlines()[0].lstrip("# ").split(",")
    rows = [dict(zip(header, line.split(","))) for line in out.splitlines()[1:] if line]
    return {r["svname"]: r for r in rows if r.get("pxname") == "vllm"}


def test_gateway_config_checked_and_running(gateway):
    assert gateway.service("haproxy").is_running
    assert gateway.run("haproxy -c -f /etc/haproxy/haproxy.cfg").rc == 0
    stats = haproxy_stat(gateway)
    servers = {"stack-vllm-1_main", "stack-vllm-1_second", "stack-vllm-2_main"}
    assert servers <= set(stats)
    assert all(stats[s]["status"] == "UP" for s in servers)


def test_gateway_needs_the_key(gateway, gateway_url):
    status, _ = http(gateway, own_url(gateway, 8080, "/v1/models"))
    assert status == 401


def test_completions_reach_both_backends(gateway, api_key):
    before = {h: generation_tokens(backend(h)) for h in VLLM_HOSTS}
    for _ in range(12):
        status, text = http(gateway, own_url(gateway, 8080, "/v1/completions"), key=api_key,
                            body={"model": "tiny", "prompt": "Hello", "max_tokens": 4})
        assert status == 200, text
    after = {h: generation_tokens(backend(h)) for h in VLLM_HOSTS}
    for h in VLLM_HOSTS:
        assert after[h] > before[h], "no completion reached %s" % h


def test_gateway_metrics_endpoint(gateway):
    status, text = http(gateway, own_url(gateway, 8405, "/metrics"))
    assert status == 200
    assert 'haproxy_server_status{proxy="vllm",server="stack-vllm-1_main"' in text


def test_stopping_one_instance_loses_no_request(gateway, api_key, gateway_url):
    stopped = backend("stack-vllm-2")
    load = LoadGenerator(gateway_url, api_key, "tiny", rate=4).start()
    try:
        time.sleep(5)
        stopped.check_output("systemctl stop vllm@main.service")
        wait_for(lambda: haproxy_stat(gateway)["stack-vllm-2_main"]["status"].startswith("DOWN"), 60,
                 what="the gateway to mark stack-vllm-2 down")
        prom = "http://%s:9090" % container_ip("stack-vllm-2")
        wait_for(lambda: [a for a in alerts(prom, "VllmInstanceDown", "firing")
                          if a["labels"].get("host") == "stack-vllm-2"], 180, interval=3,
                 what="VllmInstanceDown firing for the stopped instance")
    finally:
        load.stop()
        stopped.check_output("systemctl start vllm@main.service")
    summary = load.summary()
    assert summary["sent"] >= 40, summary
    assert summary["failed"] == 0, summary
    wait_for(lambda: http(stopped, own_url(stopped, 8000, "/health"))[0] == 200, 600, interval=5,
             what="stack-vllm-2 to come back")
    wait_for(lambda: haproxy_stat(gateway)["stack-vllm-2_main"]["status"] == "UP", 120,
             what="the gateway to take stack-vllm-2 back")
