"""A site of two Prometheus shards remote-writing to one global store
(VictoriaMetrics, Debian's package), vmalert evaluating the global rules on it and
sending the global alerts to Alertmanager, on real systemd hosts. Runs against
vm-global; the shards are reached through testinfra's ansible backend."""

import hashlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse

import pytest
import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from vllm_checks import unit_property, wait_for  # noqa: E402

SHARDS = ["vm-prom-a1", "vm-prom-a2"]
HOSTS = SHARDS + ["vm-global"]
USER = "fleet"
SECRET = "vm-test-secret-7c1f3a0e"  # converge.yml's victoriametrics_basic_auth_password
VM = "http://127.0.0.1:8428"
RULES = "/etc/victoria-metrics/rules"
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PLAYBOOK = os.path.join(PROJECT, "molecule", "victoriametrics", "converge.yml")

# Requests from inside vm-global with basic auth; the password reaches the
# request through the environment, not the requesting process's argv.
GET = r"""
import base64, json, os, sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1])
if os.environ.get("T_USER"):
    tok = base64.b64encode(("%s:%s" % (os.environ["T_USER"], os.environ["T_PASS"])).encode()).decode()
    req.add_header("Authorization", "Basic " + tok)
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(json.dumps({"status": r.status, "body": r.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": e.read().decode()}))
except OSError as e:
    print(json.dumps({"status": 0, "body": str(e)}))
"""


@pytest.fixture(scope="module")
def hosts():
    return {name: testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY) for name in HOSTS}


def get(host, url, auth=True):
    cmd = host.run("T_USER=%s T_PASS=%s python3 -c %s %s",
                   USER if auth else "", SECRET if auth else "", GET, url)
    assert cmd.rc == 0, cmd.stderr
    out = json.loads(cmd.stdout)
    return out["status"], out["body"]


def query(host, promql):
    status, body = get(host, VM + "/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    assert status == 200, body
    return json.loads(body)["data"]["result"]


def cmdline(host, unit):
    pid = unit_property(host, unit, "MainPID")
    assert pid != "0", "%s is not running" % unit
    return host.check_output("tr '\\0' ' ' < /proc/%s/cmdline", pid)


def run_playbook(tmp_path, extra, tags=None):
    path = tmp_path / "extra.json"
    path.write_text(json.dumps(extra))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY, PLAYBOOK,
           "--limit", "vm-global", "--diff", "-v", "-e", "@" + str(path)]
    if tags:
        cmd += ["--tags", tags]
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="false", ANSIBLE_NOCOLOR="true")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=PROJECT, timeout=600)
    return proc.returncode, re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)


# ---- The store: package, flags, hardening, auth ------------------------------------

def test_store_runs_with_retention_and_dedup_flags(hosts):
    g = hosts["vm-global"]
    assert g.package("victoria-metrics").is_installed
    args = cmdline(g, "victoria-metrics.service")
    assert "-retentionPeriod=30d" in args
    assert "-dedup.minScrapeInterval=5s" in args
    assert "-storageDataPath=/var/lib/victoria-metrics" in args
    assert "-envflag.enable" in args
    props = g.check_output("systemctl show -p User -p ProtectSystem -p NoNewPrivileges -p ReadWritePaths "
                           "victoria-metrics.service")
    assert "User=_victoria-metrics" in props and "ProtectSystem=strict" in props
    assert "NoNewPrivileges=yes" in props and "/var/lib/victoria-metrics" in props


def test_basic_auth_and_no_secret_on_a_command_line(hosts):
    g = hosts["vm-global"]
    status, _ = get(g, VM + "/api/v1/labels", auth=False)
    assert status == 401
    status, _ = get(g, VM + "/api/v1/labels")
    assert status == 200
    env = g.file("/etc/victoria-metrics/victoria-metrics.env")
    assert env.mode == 0o600 and env.user == "root"
    for host in hosts.values():
        assert SECRET not in host.check_output("ps -eo args"), "the store's password is on a command line"
    for shard in SHARDS:
        pw = hosts[shard].file("/etc/prometheus/victoriametrics.password")
        assert pw.mode == 0o640 and pw.group == "prometheus"
        assert SECRET not in hosts[shard].file("/etc/prometheus/prometheus.yml").content_string


# ---- Sharding and remote write ------------------------------------------------------

def test_shards_carry_site_and_shard_labels_and_hashmod(hosts):
    for i, shard in enumerate(SHARDS):
        cfg = hosts[shard].file("/etc/prometheus/prometheus.yml").content_string
        assert re.search(r"external_labels:\n\s+shard: '%d'\n\s+site: a\n" % i, cfg), cfg
        assert "action: hashmod" in cfg and 'regex: "%d", action: keep' % i in cfg
        assert "/api/v1/write" in cfg and "password_file:" in cfg


def test_each_node_target_scraped_by_exactly_one_shard(hosts):
    g = hosts["vm-global"]

    def counted():
        res = query(g, 'count by (instance) (up{job="node"})')
        return res if len(res) == len(HOSTS) else None

    res = wait_for(counted, 120, 3, "every node target in the global store")
    assert all(r["value"][1] == "1" for r in res), res
    # Each instance comes from one shard only, and both shards wrote some.
    by_shard = query(g, 'count by (shard, site) (up{job="node"})')
    assert {r["metric"]["site"] for r in by_shard} == {"a"}
    assert sum(int(r["value"][1]) for r in by_shard) == len(HOSTS)
    # Every node target is up.
    assert query(g, 'sum(up{job="node"})')[0]["value"][1] == str(len(HOSTS))


def test_remote_write_arrives_from_both_shards(hosts):
    g = hosts["vm-global"]

    def both():
        res = query(g, 'count by (site, shard) (up{job="prometheus"})')
        return res if {r["metric"].get("shard") for r in res} == {"0", "1"} else None

    res = wait_for(both, 120, 3, "series from both shards")
    assert {r["metric"]["site"] for r in res} == {"a"}


# ---- vmalert: global rules --------------------------------------------------------

def test_global_recording_rules_written_back_to_the_store(hosts):
    g = hosts["vm-global"]
    assert "-remoteWrite.url=http://127.0.0.1:8428" in cmdline(g, "vmalert.service")

    def recorded():
        res = query(g, 'job:up:sum{job="node"}')
        return res if res and res[0]["value"][1] == str(len(HOSTS)) else None

    wait_for(recorded, 120, 3, "job:up:sum from vmalert in the store")
    assert query(g, 'site_job:up:sum{site="a", job="node"}')[0]["value"][1] == str(len(HOSTS))


def test_global_alert_reaches_alertmanager(hosts):
    g = hosts["vm-global"]

    def fired():
        status, body = get(g, "http://127.0.0.1:9093/api/v2/alerts", auth=False)
        assert status == 200, body
        return [a for a in json.loads(body) if a["labels"].get("alertname") == "GlobalWatchdog"]

    alerts = wait_for(fired, 120, 3, "GlobalWatchdog in Alertmanager")
    assert alerts[0]["labels"]["scope"] == "global"


def test_bad_rule_file_rejected_old_rules_kept(hosts, tmp_path):
    g = hosts["vm-global"]
    before = g.file(RULES + "/global_recording.yml").content_string
    bad = {"victoriametrics_extra_rule_files": {
        "broken": {"groups": [{"name": "broken", "rules": [{"record": "x:y", "expr": "sum(up"}]}]}}}
    rc, out = run_playbook(tmp_path, bad)
    assert rc != 0, out
    assert "Extra rule files" in out
    assert SECRET not in out
    assert not g.file(RULES + "/broken.yml").exists
    assert g.file(RULES + "/global_recording.yml").content_string == before
    status, body = get(g, "http://127.0.0.1:8880/metrics", auth=False)
    assert re.search(r"(?m)^vmalert_config_last_reload_successful 1$", body)
    assert g.service("vmalert.service").is_running


# ---- Release archive, restart, data kept ----------------------------------------------

VERSION = "1.79.5"
VM_TAGS = "victoriametrics_install,victoriametrics_configure,victoriametrics_run"


def make_archive(host, tmp_path, name, binary, member):
    """A release-style archive (binary at the root, as upstream packs it) built from
    the package's binary on the host: no release page can be reached here."""
    fname = "%s-linux-amd64-v%s.tar.gz" % (name, VERSION)
    host.check_output("rm -rf /tmp/arch-%s && mkdir /tmp/arch-%s && cp %s /tmp/arch-%s/%s && "
                      "tar -C /tmp/arch-%s -czf /tmp/%s %s", name, name, binary, name, member, name, fname, member)
    res = host.ansible("fetch", "src=/tmp/%s dest=%s/ flat=yes" % (fname, tmp_path), check=False)
    assert not res.get("failed"), res
    return hashlib.sha256((tmp_path / fname).read_bytes()).hexdigest()


def count_at(host, promql, at):
    status, body = get(host, VM + "/api/v1/query?" + urllib.parse.urlencode({"query": promql, "time": "%d" % at}))
    assert status == 200, body
    res = json.loads(body)["data"]["result"]
    return res[0]["value"][1] if res else None


def test_archive_install_restart_keeps_earlier_samples(hosts, tmp_path):
    g = hosts["vm-global"]
    if g.system_info.arch not in ("x86_64", "amd64"):
        pytest.skip("the test archives are built for amd64")
    at = int(time.time()) - 60
    before = count_at(g, 'count(up{job="node"})', at)
    assert before == str(len(HOSTS))
    pid = unit_property(g, "victoria-metrics.service", "MainPID")
    extra = {
        "victoriametrics_install_method": "archive",
        "victoriametrics_archive_base_url": "file://%s" % tmp_path,
        "victoriametrics_archive_cache_dir": str(tmp_path / "cache"),
        "victoriametrics_archive_sha256": {
            "amd64": make_archive(g, tmp_path, "victoria-metrics", "/usr/bin/victoria-metrics", "victoria-metrics-prod")},
        "victoriametrics_vmutils_archive_sha256": {
            "amd64": make_archive(g, tmp_path, "vmutils", "/usr/bin/vmalert", "vmalert-prod")},
    }
    try:
        rc, out = run_playbook(tmp_path, extra, VM_TAGS)
        assert rc == 0, out
        assert SECRET not in out
        assert g.file("/usr/local/bin/victoria-metrics").mode == 0o755
        assert cmdline(g, "victoria-metrics.service").startswith("/usr/local/bin/victoria-metrics ")
        assert cmdline(g, "vmalert.service").startswith("/usr/local/bin/vmalert ")
        assert unit_property(g, "victoria-metrics.service", "MainPID") != pid, "not restarted onto the new binary"
        # The store restarted on the same data directory: earlier samples are still there.
        wait_for(lambda: get(g, VM + "/health")[0] == 200, 60, 2, "the store's /health")
        assert count_at(g, 'count(up{job="node"})', at) == before
        # Remote write resumes.
        wait_for(lambda: count_at(g, 'count(up{job="node"})', int(time.time())) == before, 90, 3,
                 "fresh samples after the restart")
        # A second run with the same archives changes nothing.
        rc, out = run_playbook(tmp_path, extra, VM_TAGS)
        assert rc == 0 and re.search(r"vm-global\s*:.*changed=0", out), out
    finally:
        # Back onto the package, as converge.yml leaves it.
        rc, out = run_playbook(tmp_path, {}, VM_TAGS)
        assert rc == 0, out
    assert cmdline(g, "victoria-metrics.service").startswith("/usr/bin/victoria-metrics ")
