"""Faults: a killed vLLM server comes back through systemd while the
instance-down alert fires, reaches people through the Alertmanager (the test
webhook receiver) and then resolves; a Prometheus restart keeps the samples it
took before."""

import os
import sys
import time

import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from alerting import notifications  # noqa: E402
from loadgen import container_ip  # noqa: E402
from prom import alerts, query  # noqa: E402
from vllm_checks import http, own_url, unit_property, wait_for  # noqa: E402

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
UNIT = "vllm@main.service"


def host(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


def prom():
    return "http://%s:9090" % container_ip("stack-vllm-2")


def test_kill_9_fires_instance_down_then_resolves():
    victim = host("stack-vllm-1")
    old_pid = unit_property(victim, UNIT, "MainPID")
    victim.check_output("kill -9 %s", old_pid)
    # instance_down_for is 10s in this scenario (host_vars/stack-vllm-2.yml).
    firing = wait_for(lambda: [a for a in alerts(prom(), "VllmInstanceDown", "firing")
                               if a["labels"].get("host") == "stack-vllm-1"], 240, interval=3,
                      what="VllmInstanceDown firing for stack-vllm-1")
    assert firing[0]["annotations"].get("summary")
    wait_for(lambda: unit_property(victim, UNIT, "MainPID") not in ("0", old_pid), 120, what="a new main process")
    wait_for(lambda: http(victim, own_url(victim, 8000, "/health"))[0] == 200, 600, interval=5,
             what="/health after kill -9")
    wait_for(lambda: not alerts(prom(), "VllmInstanceDown"), 240, interval=3,
             what="VllmInstanceDown to resolve")
    # People heard of it: the Alertmanager delivered the alert, then its resolution.
    delivered = wait_for(lambda: [a for _, a in notifications("stack-mon-1", "/default")
                                  if a["labels"].get("alertname") == "VllmInstanceDown"
                                  and a["labels"].get("host") == "stack-vllm-1"
                                  and a["labels"].get("vllm_instance") == "main"], 120, interval=3,
                         what="VllmInstanceDown delivered to the webhook")
    assert delivered[0]["status"] == "firing"
    wait_for(lambda: [a for _, a in notifications("stack-mon-1", "/default")
                      if a["labels"].get("alertname") == "VllmInstanceDown"
                      and a["labels"].get("host") == "stack-vllm-1" and a["status"] == "resolved"], 180, interval=3,
             what="the resolution of VllmInstanceDown delivered to the webhook")


def test_watchdog_reaches_its_own_receiver():
    watchdog = wait_for(lambda: notifications("stack-mon-1", "/watchdog"), 180, interval=5,
                        what="the Watchdog at its receiver")
    assert all(a["labels"]["alertname"] == "Watchdog" for _, a in watchdog)
    assert not [a for _, a in notifications("stack-mon-1", "/default") if a["labels"]["alertname"] == "Watchdog"]


def test_prometheus_restart_keeps_earlier_samples():
    base = prom()
    # A moment when Prometheus had scraped both vLLM hosts (the previous test
    # killed one of them).
    wait_for(lambda: query(base, 'count(up{job="vllm"} == 1) == 3'), 180, interval=5, what="every vLLM target up")
    # Both servers restarted in earlier tests, so their counters start at 0:
    # generate some tokens so the sample kept across the restart is not zero.
    monitor = host("stack-mon-1")
    key = host("stack-vllm-1").ansible.get_variables()["vllm_server_api_key"]
    for _ in range(4):
        status, _ = http(monitor, own_url(monitor, 8080, "/v1/completions"), key=key,
                         body={"model": "tiny", "prompt": "Hello", "max_tokens": 4})
        assert status == 200
    time.sleep(15)
    at = time.time() - 5
    before = query(base, 'sum(vllm:num_requests_running{job="vllm"}) by (host)', at)
    assert len(before) == 2, before
    tokens = 'sum(vllm:generation_tokens_total{job="vllm"})'
    tokens_before = query(base, tokens, at)
    assert tokens_before and float(tokens_before[0]["value"][1]) > 0, tokens_before
    prometheus_host = host("stack-vllm-2")
    prometheus_host.check_output("systemctl restart prometheus")
    wait_for(lambda: http(prometheus_host, own_url(prometheus_host, 9090, "/-/ready"))[0] == 200, 180, what="Prometheus ready")
    after = query(base, 'sum(vllm:num_requests_running{job="vllm"}) by (host)', at)
    assert sorted((r["metric"]["host"], r["value"][1]) for r in after) == \
        sorted((r["metric"]["host"], r["value"][1]) for r in before)
    # A counter's value from before the restart is still there, unchanged.
    assert query(base, tokens, at) == tokens_before
