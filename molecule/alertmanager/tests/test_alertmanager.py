"""Two Alertmanagers (Debian's package) forming one gossip cluster, on real
systemd hosts. Runs against am-1, where a webhook receiver
(molecule/shared/webhook_receiver.py) records every notification; am-2 is reached
through testinfra's ansible backend. Alerts are posted with amtool, the client
the package ships."""

import hashlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import uuid

import pytest
import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from vllm_checks import http, own_url, unit_property, wait_for  # noqa: E402

HOSTS = ["am-1", "am-2"]
UNIT = "prometheus-alertmanager.service"
CONFIG = "/etc/alertmanager/alertmanager.yml"
SECRET = "am-test-secret-4b7e2d91c0"  # converge.yml's am_test_secret
RECEIVED = "/var/lib/am-test-webhook/received.jsonl"
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PLAYBOOK = os.path.join(PROJECT, "molecule", "alertmanager", "converge.yml")
# Longest a clustered peer waits before it notifies (position x peer timeout,
# set to 5 s in converge.yml) plus the route's group_wait and some slack.
DEDUP_WINDOW = 12


@pytest.fixture(scope="module")
def hosts():
    return {name: testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY) for name in HOSTS}


def metrics(host):
    status, body = http(host, own_url(host, 9093, "/metrics"))
    assert status == 200, body
    values = {}
    for line in body.splitlines():
        if line.startswith("alertmanager_") and " " in line:
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def file_hash(host):
    """alertmanager_config_hash as Alertmanager derives it from the file."""
    md5 = hashlib.md5(host.file(CONFIG).content).digest()
    return int.from_bytes(md5[:6], "little")


def amtool_add(on, url, **labels):
    """amtool alert add, run on host `on`, to the Alertmanager at url."""
    args = " ".join("%s=%s" % kv for kv in labels.items())
    on.check_output("amtool --alertmanager.url=%s alert add %s" % (url, args))


def deliveries(host, path, run):
    """Notifications received at path that carry an alert with label run=<run>."""
    content = host.run("cat %s", RECEIVED).stdout
    found = []
    for line in content.splitlines():
        rec = json.loads(line)
        if rec["path"] == path and any(a["labels"].get("run") == run for a in rec["body"]["alerts"]):
            found.append(rec["body"])
    return found


def run_playbook(tmp_path, extra=None, tags=None, check=False):
    """ansible-playbook of the scenario's converge against am-1, verbose and with --diff."""
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY, PLAYBOOK,
           "--limit", "am-1", "--diff", "-v"]
    if extra is not None:
        path = tmp_path / "extra.json"
        path.write_text(json.dumps(extra))
        cmd += ["-e", "@" + str(path)]
    if tags:
        cmd += ["--tags", tags]
    if check:
        cmd += ["--check"]
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="false", ANSIBLE_NOCOLOR="true")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=PROJECT, timeout=600)
    return proc.returncode, re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)


def no_secret_anywhere(hosts, output, *secrets):
    for secret in secrets:
        assert secret not in output, "a receiver secret appears in the playbook output"
        for host in hosts.values():
            assert secret not in host.check_output("ps -eo args"), "a receiver secret is on a command line"


# ---- Installation, unit, file modes -------------------------------------------

def unit_props(host, *props):
    out = host.check_output("systemctl show" + " -p %s" * len(props) + " %s", *props, UNIT)
    return dict(line.split("=", 1) for line in out.splitlines())


def test_package_and_hardened_unit(hosts):
    for host in hosts.values():
        assert host.package("prometheus-alertmanager").is_installed
        assert unit_props(host, "ActiveState", "FragmentPath", "User", "NoNewPrivileges", "ProtectSystem",
                          "ReadWritePaths", "CapabilityBoundingSet", "PrivateDevices") == {
            "ActiveState": "active",
            "FragmentPath": "/etc/systemd/system/" + UNIT,
            "User": "alertmanager",
            "NoNewPrivileges": "yes",
            "ProtectSystem": "strict",
            "ReadWritePaths": "/var/lib/alertmanager",
            "CapabilityBoundingSet": "",
            "PrivateDevices": "yes",
        }


def test_secrets_file_not_world_readable(hosts):
    for host in hosts.values():
        assert SECRET in host.file(CONFIG).content_string  # the checks below are about a file with secrets
        modes = host.check_output("stat -c '%%n %%U %%G %%a' %s /etc/alertmanager", CONFIG).splitlines()
        assert modes == [CONFIG + " root alertmanager 640", "/etc/alertmanager root alertmanager 750"]
        assert host.run("runuser -u nobody -- cat %s", CONFIG).rc != 0
        assert SECRET not in host.check_output("ps -eo args")


def test_config_checked_and_routes(hosts):
    host = hosts["am-1"]
    assert "SUCCESS" in host.check_output("amtool check-config %s", CONFIG)

    def route(*labels):
        cmd = "amtool config routes test --config.file=%s" + " %s" * len(labels)
        return host.check_output(cmd, CONFIG, *labels).strip()

    assert route("alertname=Watchdog", "severity=none") == "watchdog"
    assert route("alertname=X", "severity=critical") == "pager,ops-email"
    assert route("alertname=X", "team=gpu") == "gpu-slack"
    assert route("alertname=X", "team=platform") == "opsgenie"
    assert route("alertname=X") == "default"


def test_default_inhibit_rules(hosts):
    host = hosts["am-1"]
    url = "http://am-1:9093"
    amtool_add(host, url, alertname="HostDown", host="gpu-9")
    amtool_add(host, url, alertname="GpuTemperatureHigh", host="gpu-9", gpu="0")
    amtool_add(host, url, alertname="VllmInstanceDown", host="gpu-8", vllm_instance="a")
    amtool_add(host, url, alertname="VllmTtftSloBreached", host="gpu-8", vllm_instance="a")
    amtool_add(host, url, alertname="VllmHttp5xxRatioHigh", host="gpu-8", vllm_instance="b")

    def state(**labels):
        query = "&".join("filter=" + urllib.parse.quote('%s="%s"' % kv) for kv in labels.items())
        status, body = http(host, own_url(host, 9093, "/api/v2/alerts?") + query)
        assert status == 200, body
        return [a["status"]["state"] for a in json.loads(body)]

    # A host down mutes what runs on it; an instance down mutes its own latency
    # and error alerts, not those of the host's other instances.
    assert state(alertname="GpuTemperatureHigh", host="gpu-9") == ["suppressed"]
    assert state(alertname="HostDown", host="gpu-9") == ["active"]
    assert state(alertname="VllmTtftSloBreached", host="gpu-8") == ["suppressed"]
    assert state(alertname="VllmHttp5xxRatioHigh", host="gpu-8") == ["active"]


# ---- Cluster ------------------------------------------------------------------

def test_cluster_of_two(hosts):
    for host in hosts.values():
        wait_for(lambda h=host: metrics(h).get("alertmanager_cluster_members") == 2, 60,
                 what="alertmanager_cluster_members == 2")
        status, body = http(host, own_url(host, 9093, "/api/v2/status"))
        cluster = json.loads(body)["cluster"]
        assert cluster["status"] == "ready", cluster
        assert len(cluster["peers"]) == 2, cluster
    positions = sorted(metrics(h)["alertmanager_peer_position"] for h in hosts.values())
    assert positions == [0, 1]


def test_watchdog_reaches_its_receiver(hosts):
    run = uuid.uuid4().hex[:12]
    for name in HOSTS:
        amtool_add(hosts["am-1"], "http://%s:9093" % name, alertname="Watchdog", severity="none", run=run)
    got = wait_for(lambda: deliveries(hosts["am-1"], "/watchdog", run), 30, what="the Watchdog notification")
    assert got[0]["receiver"] == "watchdog"


def test_alert_to_both_delivered_once(hosts):
    run = uuid.uuid4().hex[:12]
    for name in HOSTS:
        amtool_add(hosts["am-1"], "http://%s:9093" % name, alertname="AmTest", test="am-molecule", run=run)
    wait_for(lambda: deliveries(hosts["am-1"], "/hook", run), 40, what="the notification")
    time.sleep(DEDUP_WINDOW)
    got = deliveries(hosts["am-1"], "/hook", run)
    assert len(got) == 1, got
    assert got[0]["receiver"] == "test-webhook" and got[0]["status"] == "firing"


def test_survivor_delivers_once(hosts):
    # Stop the peer at position 0, the one that notifies first.
    first = next(n for n in HOSTS if metrics(hosts[n])["alertmanager_peer_position"] == 0)
    survivor = next(n for n in HOSTS if n != first)
    hosts[first].check_output("systemctl stop %s", UNIT)
    try:
        run = uuid.uuid4().hex[:12]
        amtool_add(hosts["am-1"], "http://%s:9093" % survivor, alertname="AmTest", test="am-molecule", run=run)
        wait_for(lambda: deliveries(hosts["am-1"], "/hook", run), 40, what="the survivor's notification")
        time.sleep(5)
        assert len(deliveries(hosts["am-1"], "/hook", run)) == 1
    finally:
        hosts[first].check_output("systemctl start %s", UNIT)
        # The next tests read its /metrics: done only once it answers again.
        wait_for(lambda: http(hosts[first], own_url(hosts[first], 9093, "/-/ready"))[0] == 200, 60,
                 what="%s ready again" % first)


# ---- Validation, running-state convergence, secrets -----------------------------

def test_bad_route_rejected_running_config_kept(hosts, tmp_path):
    host = hosts["am-1"]
    new_secret = "am-test-secret-rotated-51c9e0"
    before_md5 = host.file(CONFIG).md5sum
    before_hash = metrics(host)["alertmanager_config_hash"]
    bad_routes = [{"matchers": ['test="am-molecule"'], "receiver": "no-such-receiver"}]
    rc, out = run_playbook(tmp_path, {"alertmanager_routes": bad_routes, "am_test_secret": new_secret})
    assert rc != 0, out
    assert 'undefined receiver \\"no-such-receiver\\" used in route' in out or \
        'undefined receiver "no-such-receiver" used in route' in out, out[-3000:]
    no_secret_anywhere(hosts, out, SECRET, new_secret)
    # A malformed secret URL: amtool quotes it, the role hides it.
    bad_receivers = [{"name": "default"}, {"name": "watchdog", "webhook": [{"url": "ht tp://am-1/" + new_secret}]}]
    rc, out = run_playbook(tmp_path, {"alertmanager_receivers": bad_receivers, "am_test_secret": new_secret})
    assert rc != 0, out
    assert "<hidden>" in out and "first path segment in URL cannot contain colon" in out, out[-3000:]
    no_secret_anywhere(hosts, out, SECRET, new_secret)
    assert host.file(CONFIG).md5sum == before_md5
    assert metrics(host)["alertmanager_config_hash"] == before_hash == file_hash(host)
    assert metrics(host)["alertmanager_config_last_reload_successful"] == 1


def test_running_state_converges(hosts, tmp_path):
    host = hosts["am-1"]
    pid = unit_property(host, UNIT, "MainPID")
    old_hash = file_hash(host)
    new_secret = "am-test-secret-rotated-51c9e0"
    extra = {"alertmanager_repeat_interval": "3h", "am_test_secret": new_secret}

    # A dry run shows the change coming, writes nothing and prints no secret.
    rc, out = run_playbook(tmp_path, extra, check=True)
    assert rc == 0, out[-3000:]
    assert re.search(r"Configure \| alertmanager\.yml\]\s*\**\s*changed: \[am-1\]", out), out[-3000:]
    assert file_hash(host) == old_hash
    no_secret_anywhere(hosts, out, SECRET, new_secret)

    # Files only: the new file is in place, Alertmanager still runs the old one.
    rc, out = run_playbook(tmp_path, extra, tags="alertmanager_configure")
    assert rc == 0, out[-3000:]
    no_secret_anywhere(hosts, out, SECRET, new_secret)
    assert new_secret in host.file(CONFIG).content_string
    assert file_hash(host) != old_hash
    assert metrics(host)["alertmanager_config_hash"] == old_hash

    # The same desired state again: the file is unchanged, yet the run reloads.
    rc, out = run_playbook(tmp_path, extra)
    assert rc == 0, out[-3000:]
    assert re.search(r"Loaded \| Reload with SIGHUP\]\s*\**\s*changed: \[am-1\]", out), out[-3000:]
    assert re.search(r"am-1\s+: ok=\d+\s+changed=1\s", out), out[-3000:]
    assert metrics(host)["alertmanager_config_hash"] == file_hash(host)
    no_secret_anywhere(hosts, out, SECRET, new_secret)

    # Back to the scenario's configuration; reloads, never restarts.
    rc, out = run_playbook(tmp_path)
    assert rc == 0, out[-3000:]
    assert metrics(host)["alertmanager_config_hash"] == file_hash(host) == old_hash
    assert unit_property(host, UNIT, "MainPID") == pid
    assert metrics(host)["alertmanager_config_last_reload_successful"] == 1


def test_unit_stopped_and_disabled_by_hand_is_started_and_enabled_by_the_next_run(hosts, tmp_path):
    # A run leaves a unit that is enabled, running and due no restart alone,
    # without a call to systemd (_service's probe reads its state): it must still
    # see one stopped and disabled by hand.
    host = hosts["am-1"]
    task = r"Service \| Enable, start, restart once after a change of %s\]\s*\**\s*" % re.escape(UNIT)
    host.check_output("systemctl disable --now %s", UNIT)
    try:
        assert unit_props(host, "ActiveState", "UnitFileState") == {"ActiveState": "inactive",
                                                                     "UnitFileState": "disabled"}
        rc, out = run_playbook(tmp_path)
        assert rc == 0, out[-3000:]
        assert re.search(task + r"changed: \[am-1\]", out), out[-3000:]
        assert unit_props(host, "ActiveState", "UnitFileState") == {"ActiveState": "active", "UnitFileState": "enabled"}
        pid = unit_property(host, UNIT, "MainPID")

        rc, out = run_playbook(tmp_path)
        assert rc == 0, out[-3000:]
        assert re.search(task + r"skipping: \[am-1\]", out), out[-3000:]
        assert re.search(r"am-1\s+: ok=\d+\s+changed=0\s", out), out[-3000:]
        assert unit_property(host, UNIT, "MainPID") == pid
    finally:
        host.run("systemctl enable --now %s", UNIT)
        wait_for(lambda: http(host, own_url(host, 9093, "/-/ready"))[0] == 200, 60, what="am-1 ready again")
