"""A site of two Prometheus shards remote-writing to one global store
(VictoriaMetrics, Debian's package), vmalert evaluating the global rules on it and
sending the global alerts to Alertmanager, real vLLM (two instances on vm-prom-a1,
one per shard) and Grafana (the test double) reading the store, on real systemd
hosts. Runs against vm-global; the other hosts are reached through testinfra's
ansible backend, the store, Grafana and vLLM also from the controller."""

import hashlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from loadgen import LoadGenerator, container_ip  # noqa: E402
from vllm_checks import own_url, unit_property, wait_for  # noqa: E402

SHARDS = ["vm-prom-a1", "vm-prom-a2"]
VLLM_HOST = "vm-prom-a1"
VLLM_TARGETS = {"vm-prom-a1:8000", "vm-prom-a1:8001"}  # host_vars/vm-prom-a1.yml
HOSTS = SHARDS + ["vm-global"]
USER = "fleet"
SECRET = "vm-test-secret-7c1f3a0e"  # converge.yml's victoriametrics_basic_auth_password
RULES = "/etc/victoria-metrics/rules"
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PLAYBOOK = os.path.join(PROJECT, "molecule", "victoriametrics", "converge.yml")
EPHEMERAL = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")
CHECK_QUERIES = os.path.join(PROJECT, "tests", "dashboards", "check_queries.py")
FLEET_DASHBOARD = os.path.join(PROJECT, "roles", "grafana", "files", "dashboards", "vllm-fleet-overview.json")

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
    status, body = get(host, own_url(host, 8428) + "/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
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
    status, _ = get(g, own_url(g, 8428) + "/api/v1/labels", auth=False)
    assert status == 401
    status, _ = get(g, own_url(g, 8428) + "/api/v1/labels")
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


# ---- vLLM targets sharded, the fleet dashboard on the global store ----------------

def test_each_vllm_target_up_in_exactly_one_shard(hosts):
    def active():
        out = {}
        for shard in SHARDS:
            status, body = get(hosts[shard], own_url(hosts[shard], 9090, "/api/v1/targets?state=active"), auth=False)
            assert status == 200, body
            out[shard] = {t["labels"]["instance"]: t["health"] for t in json.loads(body)["data"]["activeTargets"]
                          if t["labels"]["job"] == "vllm"}
        found = [i for targets in out.values() for i in targets]
        ok = sorted(found) == sorted(VLLM_TARGETS) and all(h == "up" for t in out.values() for h in t.values())
        return out if ok else None

    out = wait_for(active, 300, 5, "each vLLM target up in one shard")
    # hashmod split the two instances: each shard scrapes one, none scrapes both.
    assert all(len(targets) == 1 for targets in out.values()), out


def test_global_store_holds_every_vllm_series_from_both_shards_with_site_labels(hosts):
    g = hosts["vm-global"]

    def both():
        res = query(g, 'count by (instance, site, shard) (vllm:num_requests_running{job="vllm"})')
        return res if {r["metric"]["instance"] for r in res} == VLLM_TARGETS else None

    res = wait_for(both, 180, 3, "vLLM series of both instances in the global store")
    assert len(res) == len(VLLM_TARGETS), res  # one shard per instance
    assert {r["metric"]["site"] for r in res} == {"a"}
    assert {r["metric"]["shard"] for r in res} == {"0", "1"}
    # Every vLLM series name each shard's Prometheus holds is in the store too.
    for shard in SHARDS:
        status, body = get(hosts[shard], own_url(hosts[shard], 9090, "/api/v1/label/__name__/values?") + urllib.parse.urlencode(
            {"match[]": '{job="vllm", __name__=~"vllm:.*"}'}), auth=False)
        assert status == 200, body
        names = set(json.loads(body)["data"])
        assert names
        status, body = get(g, own_url(g, 8428) + "/api/v1/label/__name__/values?" + urllib.parse.urlencode(
            {"match[]": '{job="vllm", shard="%d", __name__=~"vllm:.*"}' % SHARDS.index(shard)}))
        assert status == 200, body
        assert names <= set(json.loads(body)["data"]), sorted(names - set(json.loads(body)["data"]))


def test_fleet_dashboard_queries_return_data_from_the_global_store(hosts, tmp_path):
    key = hosts[VLLM_HOST].ansible.get_variables()["vllm_server_api_key"]
    ip = container_ip(VLLM_HOST)
    loads = [LoadGenerator("http://%s:%s" % (ip, t.split(":")[1]), key, "tiny", rate=1.0) for t in sorted(VLLM_TARGETS)]
    # Only the fleet dashboard; its gateway panels are checked for syntax only (no gateway here).
    (tmp_path / "dashboards").mkdir()
    (tmp_path / "dashboards" / "vllm-fleet-overview.json").write_text(open(FLEET_DASHBOARD).read())
    for load in loads:
        load.start()
    try:
        wait_for(lambda: query(hosts["vm-global"], 'model_name:vllm_request_success:rate1m{site="a"} > 0'), 180, 5,
                 "a fleet recording-rule series with traffic in the global store")
        check = subprocess.run([sys.executable, CHECK_QUERIES, "--prometheus", "http://%s:8428" % container_ip("vm-global"),
                                "--dashboards", str(tmp_path / "dashboards"), "--basic-auth-user", USER,
                                "--syntax-only-match", "haproxy", "--wait", "180"],
                               env=dict(os.environ, CHECK_QUERIES_PASSWORD=SECRET),
                               capture_output=True, text=True, timeout=600)
    finally:
        for load in loads:
            load.stop()
    assert check.returncode == 0, check.stdout[-4000:] + check.stderr[-2000:]
    assert "OK vllm-fleet-overview.json panel 'Requests/s'" in check.stdout, check.stdout[-4000:]
    assert all(load.ok > 0 for load in loads)


def test_grafana_default_datasource_is_the_global_store(hosts):
    token = open(os.path.join(EPHEMERAL, "grafana-vm-global.token")).read().strip()

    def grafana(path):
        req = urllib.request.Request("http://%s:3000%s" % (container_ip("vm-global"), path),
                                     headers={"Authorization": "Bearer " + token})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    by_uid = {d["uid"]: d for d in grafana("/api/datasources")}
    assert [uid for uid, d in by_uid.items() if d["isDefault"]] == ["global"], by_uid
    # The list leaves out basicAuthUser (as Grafana's does); the datasource itself has it.
    store = grafana("/api/datasources/uid/global")
    assert (store["type"], store["url"], store["basicAuth"], store["basicAuthUser"]) == (
        "prometheus", "http://vm-global:8428", True, USER)
    # Grafana's own health check queries the store, with the store's basic auth.
    assert grafana("/api/datasources/uid/global/health")["status"] == "OK"
    # Each shard of site a stays available, not default.
    sites = {uid: (d["url"], d["isDefault"]) for uid, d in by_uid.items() if uid != "global"}
    assert sites == {"prometheus-a-0": ("http://vm-prom-a1:9090", False),
                     "prometheus-a-1": ("http://vm-prom-a2:9090", False)}
    assert grafana("/api/datasources/uid/prometheus-a-1/health")["status"] == "OK"


# ---- vmalert: global rules --------------------------------------------------------

def test_global_recording_rules_written_back_to_the_store(hosts):
    g = hosts["vm-global"]
    # vmalert writes to the store where it listens, the host's fleet address.
    assert "-remoteWrite.url=http://%s:8428 " % container_ip("vm-global") in cmdline(g, "vmalert.service")

    # Both rules are in one group, but their samples reach the store in separate
    # writes: a read between the two sees a new job:up:sum beside an older
    # site_job:up:sum (CI saw 3 and 2), so the two are awaited together.
    def recorded():
        fleet = query(g, 'job:up:sum{job="node"}')
        site = query(g, 'site_job:up:sum{site="a", job="node"}')
        values = [res[0]["value"][1] if res else None for res in (fleet, site)]
        return values if values == [str(len(HOSTS))] * 2 else None

    wait_for(recorded, 120, 3, "job:up:sum and site_job:up:sum from vmalert in the store")


def test_global_alert_reaches_alertmanager(hosts):
    g = hosts["vm-global"]

    def fired():
        status, body = get(g, own_url(g, 9093, "/api/v2/alerts"), auth=False)
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


# ---- A site Prometheus cut off from the store: alert, the other flows, WAL catch-up ----

def am_alerts(g, name):
    status, body = get(g, own_url(g, 9093, "/api/v2/alerts?active=true"), auth=False)
    assert status == 200, body
    return [a for a in json.loads(body) if a["labels"].get("alertname") == name]


def raw_samples(g, selector, start, end):
    """{(instance, job): number of raw samples in [start, end]} from the store's export API."""
    status, body = get(g, own_url(g, 8428) + "/api/v1/export?" + urllib.parse.urlencode(
        {"match[]": selector, "start": "%d" % start, "end": "%d" % end}))
    assert status == 200, body
    out = {}
    for line in body.splitlines():
        if line.strip():
            row = json.loads(line)
            key = (row["metric"]["instance"], row["metric"]["job"])
            out[key] = out.get(key, 0) + len(row["timestamps"])
    return out


def test_site_prometheus_cut_off_alerts_other_flows_and_wal_closes_the_gap(hosts):
    """Shard 1 (vm-prom-a2) loses its route to the store while it keeps scraping:
    the global SiteNotReporting alert names it in Alertmanager, shard 0's samples keep
    arriving, and once the route is back its remote write sends what it buffered in
    its WAL, so samples stamped inside the outage appear in the store."""
    g, cut = hosts["vm-global"], hosts["vm-prom-a2"]
    store_ip = cut.check_output("getent ahostsv4 vm-global | awk 'NR==1 {print $1}'")
    assert store_ip
    assert not am_alerts(g, "SiteNotReporting")
    start = int(time.time())
    cut.run_expect([0], "ip route add blackhole %s/32", store_ip)
    try:
        alerts = wait_for(lambda: am_alerts(g, "SiteNotReporting"), 240, 3, "SiteNotReporting in Alertmanager")
        assert {(a["labels"]["site"], a["labels"]["shard"]) for a in alerts} == {("a", "1")}, alerts
        assert alerts[0]["labels"]["scope"] == "global"
        end = int(time.time()) - 5
        # The other shard kept writing during the outage; nothing of shard 1 arrived.
        flowing = raw_samples(g, '{__name__="up", shard="0"}', start + 10, end)
        assert flowing and all(n > 1 for n in flowing.values()), flowing
        assert raw_samples(g, '{__name__="up", shard="1"}', start + 10, end) == {}
        # Shard 1 still scrapes: its Prometheus holds the samples the store lacks.
        status, body = get(cut, own_url(cut, 9090, "/api/v1/query?") + urllib.parse.urlencode(
            {"query": "count(count_over_time(up[%ds]))" % (end - start - 10), "time": "%d" % end}), auth=False)
        assert status == 200 and json.loads(body)["data"]["result"], body
    finally:
        cut.run_expect([0], "ip route del blackhole %s/32", store_ip)

    def caught_up():
        got = raw_samples(g, '{__name__="up", shard="1"}', start + 10, end)
        # Every target of shard 1 has as many samples in the outage window as the
        # thinnest target of shard 0 (same scrape interval), less one at the edge.
        return got if got and min(got.values()) >= min(flowing.values()) - 1 else None

    got = wait_for(caught_up, 180, 3, "shard 1's samples from inside the outage in the store")
    assert {job for _, job in got} >= {"node", "prometheus"}, got
    wait_for(lambda: not am_alerts(g, "SiteNotReporting"), 180, 3, "SiteNotReporting resolved")


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
    status, body = get(host, own_url(host, 8428) + "/api/v1/query?" + urllib.parse.urlencode({"query": promql, "time": "%d" % at}))
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
    vllm_before = count_at(g, 'count(vllm:num_requests_running{job="vllm"})', at)
    assert vllm_before == str(len(VLLM_TARGETS))
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
    # The last test of the scenario: its hosts are destroyed next, so the store is
    # left on the archive (the way back to the package is the same switch).
    rc, out = run_playbook(tmp_path, extra, VM_TAGS)
    assert rc == 0, out
    assert SECRET not in out
    assert g.file("/usr/local/bin/victoria-metrics").mode == 0o755
    assert cmdline(g, "victoria-metrics.service").startswith("/usr/local/bin/victoria-metrics ")
    assert cmdline(g, "vmalert.service").startswith("/usr/local/bin/vmalert ")
    assert unit_property(g, "victoria-metrics.service", "MainPID") != pid, "not restarted onto the new binary"
    # The store restarted on the same data directory: earlier samples are still there.
    wait_for(lambda: get(g, own_url(g, 8428) + "/health")[0] == 200, 60, 2, "the store's /health")
    assert count_at(g, 'count(up{job="node"})', at) == before
    assert count_at(g, 'count(vllm:num_requests_running{job="vllm"})', at) == vllm_before
    # Remote write resumes.
    wait_for(lambda: count_at(g, 'count(up{job="node"})', int(time.time())) == before, 90, 3,
             "fresh samples after the restart")
    # A second run with the same archives changes nothing.
    rc, out = run_playbook(tmp_path, extra, VM_TAGS)
    assert rc == 0 and re.search(r"vm-global\s*:.*changed=0", out), out
