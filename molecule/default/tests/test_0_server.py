"""The vllm_server role on stack-vllm-1 (two instances, main on 8000 and second
on 8001, from host_vars/stack-vllm-1.yml), right after the converge: units,
sandboxing, secrets, the API key and /metrics. Read-only apart from a few
completions; test_3_faults kills a server with kill -9."""

import json
import os
import re
import sys

import pytest
import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from vllm_checks import http, own_url, unit_property  # noqa: E402

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOST = "stack-vllm-1"
SECRETS = "/etc/vllm/secrets.env"


@pytest.fixture(scope="module")
def host():
    return testinfra.get_host("ansible://" + HOST, ansible_inventory=INVENTORY)


@pytest.fixture(scope="module")
def hostvars(host):
    return host.ansible.get_variables()


@pytest.fixture(scope="module")
def api_key(hostvars):
    return hostvars["vllm_server_api_key"]


@pytest.fixture(scope="module")
def instances(hostvars):
    found = [(i["name"], int(i["port"])) for i in hostvars["vllm_server_instances"]]
    assert found == [("main", 8000), ("second", 8001)], found
    return found


def unit(name):
    return "vllm@%s.service" % name


def seconds(timespan):
    """systemd's timespan as `systemctl show` prints it ("35s", "1min 5s", "500ms")."""
    scale = {"h": 3600, "min": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|min|ms|us|s)\b", timespan)
    assert parts, timespan
    return sum(float(n) * scale[u] for n, u in parts)


def test_units_active_and_every_process_runs_as_vllm(host, instances):
    for name, _ in instances:
        assert unit_property(host, unit(name), "ActiveState") == "active", name
        assert unit_property(host, unit(name), "User") == "vllm", name
        pid = unit_property(host, unit(name), "MainPID")
        assert pid != "0", name
        assert host.check_output("ps -o user= -p %s", pid).strip() == "vllm"
        # Every process of the unit (API server and engine core) runs as vllm.
        cgroup = unit_property(host, unit(name), "ControlGroup")
        procs = host.check_output(
            "cat /sys/fs/cgroup/systemd%s/cgroup.procs 2>/dev/null || cat /sys/fs/cgroup%s/cgroup.procs",
            cgroup, cgroup).split()
        assert len(procs) >= 2, (name, procs)
        users = {host.check_output("ps -o user= -p %s", p).strip() for p in procs}
        assert users == {"vllm"}, (name, users)


def test_unit_hardening_and_graceful_stop(host, instances):
    for name, port in instances:
        u = unit(name)
        assert unit_property(host, u, "NoNewPrivileges") == "yes"
        assert unit_property(host, u, "ProtectSystem") == "strict"
        assert unit_property(host, u, "ProtectHome") == "yes"
        assert unit_property(host, u, "PrivateTmp") == "yes"
        assert unit_property(host, u, "Restart") == "on-failure"
        env = host.file("/etc/vllm/instances/%s.env" % name).content_string
        assert "--port %d " % port in env + " "
        # Graceful stop: vLLM drains for --shutdown-timeout, systemd waits longer.
        drain = re.search(r"--shutdown-timeout (\d+)", env)
        assert drain, env
        stop = seconds(unit_property(host, u, "TimeoutStopUSec"))
        assert stop > int(drain.group(1)), (stop, drain.group(1))


def test_secrets_file_is_private(host, api_key, instances):
    secrets = host.file(SECRETS)
    assert secrets.user == "root" and secrets.group == "root"
    assert secrets.mode == 0o600
    assert api_key in secrets.content_string
    for name, _ in instances:
        # The instance files are readable by the service group, not by others,
        # and do not hold the key.
        f = host.file("/etc/vllm/instances/%s.env" % name)
        assert (f.user, f.group, f.mode) == ("root", "vllm", 0o640), name
        assert api_key not in f.content_string
        assert SECRETS in unit_property(host, unit(name), "EnvironmentFiles")


def test_api_key_absent_from_process_table(host, api_key):
    table = host.check_output("ps -eww -o args")
    assert table.count("vllm.entrypoints.openai.api_server") >= 2
    assert api_key not in table


def test_completion_needs_the_key(host, api_key, instances):
    body = {"model": "tiny", "prompt": "Hello", "max_tokens": 8, "temperature": 0}
    for name, port in instances:
        base = own_url(host, port)
        assert http(host, base + "/health")[0] == 200, name
        status, text = http(host, base + "/v1/completions", key=api_key, body=body)
        assert status == 200, (name, text)
        assert json.loads(text)["usage"]["completion_tokens"] > 0
        assert http(host, base + "/v1/completions", body=body)[0] == 401, name
        assert http(host, base + "/v1/completions", key="wrong-key-0000000000", body=body)[0] == 401, name


def test_metrics_exposed(host, instances):
    for name, port in instances:
        status, text = http(host, own_url(host, port, "/metrics"))
        assert status == 200, name
        assert "vllm:num_requests_running{" in text, name
        assert 'model_name="tiny"' in text, name
