"""The vllm_server role on a real systemd host running real vLLM (CPU build)."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from vllm_checks import http, unit_property, wait_for  # noqa: E402

UNIT = "vllm@main.service"
BASE = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def api_key(host):
    return host.ansible.get_variables()["vllm_server_api_key"]


def test_unit_active_as_service_user(host):
    assert unit_property(host, UNIT, "ActiveState") == "active"
    assert unit_property(host, UNIT, "User") == "vllm"
    pid = unit_property(host, UNIT, "MainPID")
    assert pid != "0"
    owner = host.check_output("ps -o user= -p %s", pid).strip()
    assert owner == "vllm"
    # Every process of the unit (API server and engine core) runs as vllm.
    cgroup = unit_property(host, UNIT, "ControlGroup")
    procs = host.check_output(
        "cat /sys/fs/cgroup/systemd%s/cgroup.procs 2>/dev/null || cat /sys/fs/cgroup%s/cgroup.procs", cgroup, cgroup).split()
    assert len(procs) >= 2
    users = {host.check_output("ps -o user= -p %s", p).strip() for p in procs}
    assert users == {"vllm"}


def test_unit_hardening(host):
    assert unit_property(host, UNIT, "NoNewPrivileges") == "yes"
    assert unit_property(host, UNIT, "ProtectSystem") == "strict"
    assert unit_property(host, UNIT, "PrivateTmp") == "yes"
    assert unit_property(host, UNIT, "Restart") == "on-failure"
    # Graceful stop: vLLM drains for --shutdown-timeout, systemd waits longer.
    assert "--shutdown-timeout 5" in host.file("/etc/vllm/instances/main.env").content_string
    assert unit_property(host, UNIT, "TimeoutStopUSec") == "35s"


def test_secrets_file_is_private(host, api_key):
    secrets = host.file("/etc/vllm/secrets.env")
    assert secrets.user == "root"
    assert secrets.mode == 0o600
    assert api_key in secrets.content_string
    # The instance file is world-readable and must not hold the key.
    assert api_key not in host.file("/etc/vllm/instances/main.env").content_string


def test_api_key_absent_from_process_table(host, api_key):
    table = host.check_output("ps -eww -o args")
    assert "vllm.entrypoints.openai.api_server" in table
    assert api_key not in table


def test_health(host):
    status, _ = http(host, BASE + "/health")
    assert status == 200


def test_completion_needs_the_key(host, api_key):
    body = {"model": "tiny", "prompt": "Hello", "max_tokens": 8, "temperature": 0}
    status, text = http(host, BASE + "/v1/completions", key=api_key, body=body)
    assert status == 200, text
    usage = json.loads(text)["usage"]
    assert usage["completion_tokens"] > 0
    status, _ = http(host, BASE + "/v1/completions", body=body)
    assert status == 401
    status, _ = http(host, BASE + "/v1/completions", key="wrong-key-0000000000", body=body)
    assert status == 401


def test_metrics_exposed(host):
    status, text = http(host, BASE + "/metrics")
    assert status == 200
    assert 'vllm:num_requests_running{' in text
    assert 'model_name="tiny"' in text


def test_systemd_brings_back_a_killed_server(host):
    old_pid = unit_property(host, UNIT, "MainPID")
    host.run("kill -9 %s", old_pid)
    wait_for(lambda: unit_property(host, UNIT, "MainPID") not in ("0", old_pid), 120, what="a new main process")
    wait_for(lambda: http(host, BASE + "/health")[0] == 200, 600, interval=5, what="/health after kill -9")
    assert unit_property(host, UNIT, "ActiveState") == "active"
