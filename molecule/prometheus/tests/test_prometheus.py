"""Prometheus and node exporters on real systemd hosts, scraping real vLLM (CPU
build). Runs against the monitoring host; the vLLM host is reached through
testinfra's ansible backend and Prometheus through its HTTP API."""

import json
import os
import subprocess
import sys
import time
import urllib.parse

import pytest
import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from vllm_checks import http, unit_property, wait_for  # noqa: E402

PROM = "http://127.0.0.1:9090"
VLLM_HOST = "prometheus-vllm-1"
MON_HOST = "prometheus-monitoring-1"
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PLAYBOOK = os.path.join(PROJECT, "molecule", "shared", "converge_monitoring.yml")
EXPECTED_ALERTS = {
    "VllmInstanceDown", "VllmModelUnavailable", "VllmQueueDepthHigh", "VllmKvCacheNearFull",
    "VllmPreemptionsRising", "VllmTtftSloBreached", "VllmRequestErrorRatioHigh", "VllmHttp5xxRatioHigh",
    "VllmGenerationStalled", "HostDiskSpaceLow", "GpuTemperatureHigh", "GpuXidError",
}


@pytest.fixture(scope="module")
def vllm_host():
    return testinfra.get_host("ansible://" + VLLM_HOST, ansible_inventory=INVENTORY)


def api(host, path, **params):
    url = PROM + path + ("?" + urllib.parse.urlencode(params) if params else "")
    status, body = http(host, url)
    assert status == 200, (url, status, body)
    data = json.loads(body)
    assert data["status"] == "success", data
    return data["data"]


def query(host, expr, **params):
    return api(host, "/api/v1/query", query=expr, **params)["result"]


def loaded_config(host):
    return api(host, "/api/v1/status/config")["yaml"]


def main_pid(host):
    return unit_property(host, "prometheus.service", "MainPID")


def run_playbook(tmp_path, extra=None, tags=None):
    """ansible-playbook of the shared monitoring converge against the monitoring host."""
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY, PLAYBOOK,
           "--limit", MON_HOST]
    if extra is not None:
        path = tmp_path / "extra.json"
        path.write_text(json.dumps(extra))
        cmd += ["-e", "@" + str(path)]
    if tags:
        cmd += ["--tags", tags]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), cwd=PROJECT, timeout=1200)
    return proc.returncode, proc.stdout + proc.stderr


# ---- Installation and units ----------------------------------------------------

def test_prometheus_from_package_hardened(host):
    assert host.package("prometheus").is_installed
    assert unit_property(host, "prometheus.service", "ActiveState") == "active"
    assert unit_property(host, "prometheus.service", "User") == "prometheus"
    assert unit_property(host, "prometheus.service", "FragmentPath") == "/etc/systemd/system/prometheus.service"
    assert unit_property(host, "prometheus.service", "NoNewPrivileges") == "yes"
    assert unit_property(host, "prometheus.service", "ProtectSystem") == "strict"
    assert unit_property(host, "prometheus.service", "ReadWritePaths") == "/var/lib/prometheus/metrics2"
    execstart = unit_property(host, "prometheus.service", "ExecStart")
    assert "--storage.tsdb.retention.time=1d" in execstart
    assert "--storage.tsdb.retention.size=1GB" in execstart
    assert "--web.enable-lifecycle" not in execstart
    data = host.file("/var/lib/prometheus/metrics2")
    assert data.is_directory and data.user == "prometheus"
    conf = host.file("/etc/prometheus/prometheus.yml")
    assert conf.user == "root" and conf.group == "prometheus" and conf.mode == 0o640


def test_node_exporter_from_package_on_monitoring_host(host):
    assert host.package("prometheus-node-exporter").is_installed
    unit = "prometheus-node-exporter.service"
    assert unit_property(host, unit, "ActiveState") == "active"
    assert unit_property(host, unit, "User") == "node-exp"
    assert unit_property(host, unit, "FragmentPath") == "/etc/systemd/system/" + unit
    assert unit_property(host, unit, "ProtectSystem") == "strict"


def test_node_exporter_from_archive_on_vllm_host(vllm_host):
    # Installed from the release archive the test serves, not from the package.
    assert not vllm_host.package("prometheus-node-exporter").is_installed
    binary = vllm_host.file("/usr/local/bin/node_exporter")
    assert binary.is_file and binary.mode == 0o755 and binary.user == "root"
    assert unit_property(vllm_host, "node_exporter.service", "ActiveState") == "active"
    assert unit_property(vllm_host, "node_exporter.service", "User") == "node-exp"
    assert "/usr/local/bin/node_exporter" in unit_property(vllm_host, "node_exporter.service", "ExecStart")
    assert unit_property(vllm_host, "node_exporter.service", "NoNewPrivileges") == "yes"
    assert "1.5.0" in vllm_host.check_output("/usr/local/bin/node_exporter --version 2>&1")


# ---- Configuration from the inventory ----------------------------------------------

def test_generated_config(host):
    conf = host.file("/etc/prometheus/prometheus.yml").content_string
    assert "scrape_interval: 5s" in conf and "evaluation_interval: 30s" in conf
    assert '"host": "prometheus-vllm-1"' in conf and '"vllm_instance": "main"' in conf
    # No group gpu/gateway in this inventory, Grafana disabled: no such jobs.
    for job in ("gpu", "gateway", "grafana"):
        assert 'job_name: "%s"' % job not in conf
    assert host.run("/usr/bin/promtool check config /etc/prometheus/prometheus.yml").rc == 0


def test_every_target_up(host):
    def all_up():
        targets = api(host, "/api/v1/targets", state="active")["activeTargets"]
        return targets if targets and all(t["health"] == "up" for t in targets) else None

    targets = wait_for(all_up, 180, interval=5, what="every target up")
    by_job = {}
    for t in targets:
        by_job.setdefault(t["labels"]["job"], []).append(t["labels"])
    assert set(by_job) == {"vllm", "node", "prometheus"}
    (vllm,) = by_job["vllm"]
    assert vllm["host"] == VLLM_HOST
    assert vllm["vllm_instance"] == "main"
    assert vllm["vllm_model"] == "tiny"
    # `instance` keeps Prometheus's meaning: the scraped address.
    assert vllm["instance"] == VLLM_HOST + ":8000"
    assert sorted(n["host"] for n in by_job["node"]) == sorted([VLLM_HOST, MON_HOST])


def test_vllm_metrics_and_recording_rules_have_data(host, vllm_host):
    key = vllm_host.ansible.get_variables()["vllm_server_api_key"]
    body = {"model": "tiny", "prompt": "Hello", "max_tokens": 8, "temperature": 0}

    running = wait_for(lambda: query(host, 'vllm:num_requests_running{host="%s"}' % VLLM_HOST), 120, interval=5,
                       what="vllm:num_requests_running")
    assert running[0]["metric"]["model_name"] == "tiny"
    assert running[0]["metric"]["vllm_instance"] == "main"

    def generating():
        status, text = http(vllm_host, "http://127.0.0.1:8000/v1/completions", key=key, body=body)
        assert status == 200, text
        res = query(host, 'instance:vllm_generation_tokens:rate1m{host="%s"}' % VLLM_HOST)
        return res if res and float(res[0]["value"][1]) > 0 else None

    res = wait_for(generating, 240, interval=5, what="recording rule instance:vllm_generation_tokens:rate1m > 0")
    assert res[0]["metric"]["vllm_instance"] == "main"
    fleet = wait_for(lambda: query(host, 'model_name:vllm_request_success:rate1m{model_name="tiny"}'), 120,
                     interval=5, what="model_name:vllm_request_success:rate1m")
    assert fleet[0]["metric"]["job"] == "vllm"


def test_rules_loaded(host):
    groups = api(host, "/api/v1/rules")["groups"]
    names = {g["name"] for g in groups}
    assert names == {"vllm.alerts", "vllm.recording.instance", "vllm.recording.model", "vllm.recording.latency",
                     "host.alerts", "gpu.alerts"}
    rules = [r for g in groups for r in g["rules"]]
    assert {r["name"] for r in rules if r["type"] == "alerting"} == EXPECTED_ALERTS

    def evaluated():
        current = [r for g in api(host, "/api/v1/rules")["groups"] for r in g["rules"]]
        return current if all(r["health"] == "ok" for r in current) else None

    wait_for(evaluated, 120, interval=5, what="every rule evaluated without error")
    # A healthy fleet: none of the vLLM alerts fires.
    firing = [a["labels"]["alertname"] for a in api(host, "/api/v1/alerts")["alerts"] if a["state"] == "firing"]
    assert not [a for a in firing if a.startswith("Vllm")], firing


# ---- Running state ------------------------------------------------------------

def test_data_kept_across_restart(host):
    probe = "count_over_time(up{job=\"prometheus\"}[10m])"
    at = str(time.time() - 15)
    before = query(host, probe, time=at)
    assert before and float(before[0]["value"][1]) > 0
    pid = main_pid(host)
    host.run_expect([0], "systemctl restart prometheus.service")
    wait_for(lambda: main_pid(host) not in ("0", pid) and http(host, PROM + "/-/ready")[0] == 200, 180,
             what="Prometheus ready after the restart")
    # The samples from before the restart are still there (TSDB and WAL in the data directory).
    after = query(host, probe, time=at)
    assert after and after[0]["value"][1] == before[0]["value"][1]


def test_invalid_scrape_config_fails_and_keeps_previous(host, tmp_path):
    conf = "/etc/prometheus/prometheus.yml"
    checksum = host.file(conf).sha256sum
    pid = main_pid(host)
    bad = {"prometheus_extra_scrape_configs": [
        {"job_name": "broken-job", "scrape_interval": "5x", "static_configs": [{"targets": ["127.0.0.1:9"]}]}]}
    rc, out = run_playbook(tmp_path, bad)
    assert rc != 0, out
    # promtool's own message reaches the operator.
    assert 'not a valid duration string: \\"5x\\"' in out or 'not a valid duration string: "5x"' in out, out
    # The file was not replaced; Prometheus kept running the previous configuration.
    assert host.file(conf).sha256sum == checksum
    assert main_pid(host) == pid
    assert unit_property(host, "prometheus.service", "ActiveState") == "active"
    assert "broken-job" not in loaded_config(host)
    assert query(host, "prometheus_config_last_reload_successful")[0]["value"][1] == "1"


def test_reload_not_applied_is_converged_by_next_run(host, tmp_path):
    """A configuration written without its reload (here: a run limited to the
    configure tag) is brought into Prometheus by the next run, with a reload,
    although the files themselves are already up to date."""
    pid = main_pid(host)
    probe = {"prometheus_extra_scrape_configs": [
        {"job_name": "probe-job", "static_configs": [{"targets": ["127.0.0.1:9090"]}]}]}

    rc, out = run_playbook(tmp_path, probe, tags="prometheus_configure")
    assert rc == 0, out
    assert "probe-job" in host.file("/etc/prometheus/prometheus.yml").content_string
    assert "probe-job" not in loaded_config(host)

    rc, out = run_playbook(tmp_path, probe)
    assert rc == 0, out
    assert "Loaded | Reload with SIGHUP" in out
    assert "probe-job" in loaded_config(host)
    assert main_pid(host) == pid, "a configuration change must reload, not restart"

    # Back to the scenario's configuration.
    rc, out = run_playbook(tmp_path)
    assert rc == 0, out
    assert "probe-job" not in loaded_config(host)
    assert main_pid(host) == pid


BASIC_HTTP = r"""
import base64, json, os, sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1])
cred = os.environ.get("PROM_TEST_CRED", "")
if cred:
    req.add_header("Authorization", "Basic " + base64.b64encode(cred.encode()).decode())
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        print(json.dumps({"status": r.status, "body": r.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": ""}))
"""


def http_basic(host, url, cred=""):
    cmd = host.run("PROM_TEST_CRED=%s python3 -c %s %s", cred, BASIC_HTTP, url)
    assert cmd.rc == 0, cmd.stderr
    out = json.loads(cmd.stdout)
    return out["status"], out["body"]


def test_basic_auth_and_file_sd(host, tmp_path):
    """Optional web config (basic auth, checked with promtool check web-config)
    and file_sd target files; then back to the scenario's configuration."""
    password = "test-only-prom-pass-7c1d"
    cred = "prom:" + password
    extra = {
        "prometheus_file_sd": True,
        # bcrypt of the throwaway password above.
        "prometheus_web_basic_auth_users": {"prom": "$2b$10$uDpx8DTdDzSJYeKixWyXzeid7mIY4.V2FMrz1.pR9VzMjuBUm42aq"},
        "prometheus_web_client_username": "prom",
        "prometheus_web_client_password": password,
    }
    rc, out = run_playbook(tmp_path, extra)
    assert rc == 0, out
    assert password not in out
    web = host.file("/etc/prometheus/web.yml")
    assert web.mode == 0o640 and web.group == "prometheus"
    secret = host.file("/etc/prometheus/self-scrape.password")
    assert secret.mode == 0o640 and secret.user == "root" and secret.content_string == password
    assert password not in host.check_output("ps -eww -o args")
    conf = host.file("/etc/prometheus/prometheus.yml").content_string
    assert "file_sd_configs" in conf and "prometheus-vllm-1:8000" not in conf
    vllm_sd = json.loads(host.file("/etc/prometheus/file_sd/vllm.json").content_string)
    assert vllm_sd == [{"targets": ["prometheus-vllm-1:8000"],
                        "labels": {"host": VLLM_HOST, "vllm_instance": "main", "vllm_model": "tiny"}}]

    assert http_basic(host, PROM + "/api/v1/targets")[0] == 401
    assert http_basic(host, PROM + "/api/v1/targets", "prom:wrong-password")[0] == 401

    def all_up():
        status, body = http_basic(host, PROM + "/api/v1/targets?state=active", cred)
        assert status == 200
        targets = json.loads(body)["data"]["activeTargets"]
        jobs = {t["labels"]["job"] for t in targets}
        return jobs == {"vllm", "node", "prometheus"} and all(t["health"] == "up" for t in targets)

    # The self-scrape authenticates with the password file; file_sd targets are found.
    wait_for(all_up, 180, interval=5, what="every target up with basic auth and file_sd")

    rc, out = run_playbook(tmp_path)
    assert rc == 0, out
    assert not host.file("/etc/prometheus/web.yml").exists
    assert not host.file("/etc/prometheus/self-scrape.password").exists
    assert not host.file("/etc/prometheus/file_sd/vllm.json").exists
    assert http(host, PROM + "/api/v1/targets")[0] == 200
