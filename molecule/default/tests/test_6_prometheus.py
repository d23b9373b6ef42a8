"""Prometheus and the node exporters of the split stack (Prometheus on
stack-vllm-2, beside the GPUs): targets and their labels, vLLM and
recording-rule series, the rules rendered on the host, and what the roles do
when they run again: an invalid extra scrape config is refused by promtool while
the running Prometheus keeps its configuration, a reload that never happened is
applied by the next run, basic auth with file_sd targets (then the normal
configuration again), and a node exporter installed from a release archive
served by a local mirror (then the package again).

Runs after tests 1-4 on the converged stack and leaves it as it found it: every
run of playbooks/monitoring.yml that changes something is followed by one with
the scenario's own settings, also when an assertion fails on the way. It never
stops or restarts vLLM, HAProxy or Grafana. A Prometheus restart keeping its
samples is test_3_faults'."""

import base64
import calendar
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request

import pytest
import testinfra
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from loadgen import container_ip  # noqa: E402
from prom import api, query, targets  # noqa: E402
from vllm_checks import http, own_url, unit_property, wait_for  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
PLAYBOOK = os.path.join(ROOT, "playbooks", "monitoring.yml")
PROM_HOST = "stack-vllm-2"
ARCHIVE_HOST = "stack-vllm-1"  # its node exporter goes through the archive path and back
HOSTS = {"stack-vllm-1", "stack-vllm-2", "stack-mon-1"}
VLLM_TARGETS = {  # host_vars/stack-vllm-1.yml: two instances; stack-vllm-2: the default one
    ("stack-vllm-1", "main", "stack-vllm-1:8000"),
    ("stack-vllm-1", "second", "stack-vllm-1:8001"),
    ("stack-vllm-2", "main", "stack-vllm-2:8000"),
}
JOBS = {"vllm", "node", "gateway", "grafana", "alertmanager", "triton", "prometheus"}
CONF = "/etc/prometheus/prometheus.yml"
UNIT = "prometheus.service"
# Groups and alerts that must be there whatever else the rule files grow.
KEY_GROUPS = {"vllm.alerts", "vllm.recording.instance", "vllm.recording.model", "vllm.recording.latency",
              "host.alerts", "gpu.alerts"}
KEY_ALERTS = {
    "VllmInstanceDown", "VllmModelUnavailable", "VllmQueueDepthHigh", "VllmKvCacheNearFull",
    "VllmPreemptionsRising", "VllmTtftSloBreached", "VllmRequestErrorRatioHigh", "VllmHttp5xxRatioHigh",
    "VllmGenerationStalled", "HostDiskSpaceLow", "GpuTemperatureHigh", "GpuXidError",
}


def get_host(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


@pytest.fixture(scope="module")
def host():
    return get_host(PROM_HOST)


@pytest.fixture(scope="module")
def prom():
    return "http://%s:9090" % container_ip(PROM_HOST)


@pytest.fixture(scope="module")
def api_key():
    return get_host(ARCHIVE_HOST).ansible.get_variables()["vllm_server_api_key"]


@pytest.fixture(scope="module")
def normal(host):
    """The scenario's own Prometheus configuration, as found before these tests."""
    return {"conf": host.file(CONF).sha256sum, "execstart": exec_args(host)}


def exec_args(host):
    execstart = unit_property(host, UNIT, "ExecStart")
    return execstart.split("argv[]=", 1)[1].split(" ;", 1)[0]


def main_pid(host):
    return unit_property(host, UNIT, "MainPID")


def loaded_config(prom):
    return api(prom, "/api/v1/status/config")["yaml"]


def get_as(url, cred=None):
    """GET from the controller, optionally with basic auth: (status, body)."""
    req = urllib.request.Request(url)
    if cred:
        req.add_header("Authorization", "Basic " + base64.b64encode(cred.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""


def run_playbook(tmp_path, limit=PROM_HOST, extra=None, tags=None):
    """playbooks/monitoring.yml with the scenario's inventory, limited to one host."""
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY, PLAYBOOK,
           "--limit", limit]
    if extra is not None:
        path = tmp_path / ("extra-%d.json" % time.monotonic_ns())
        path.write_text(json.dumps(extra))
        cmd += ["-e", "@" + str(path)]
    if tags:
        cmd += ["--tags", tags]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), MOLECULE_PROJECT_DIRECTORY=ROOT,
               MOLECULE_EPHEMERAL_DIRECTORY=EPHEMERAL, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1200)
    print("ansible-playbook --limit %s%s%s: rc %d, %.0f s" % (
        limit, " (extra vars)" if extra else "", " --tags " + tags if tags else "", proc.returncode,
        time.monotonic() - start))
    return proc.returncode, proc.stdout + proc.stderr


def wait_all_up(prom, cred=None):
    def all_up():
        if cred is None:
            found = targets(prom)
        else:
            status, body = get_as(prom + "/api/v1/targets?state=active", cred)
            assert status == 200, status
            found = json.loads(body)["data"]["activeTargets"]
        jobs = {t["labels"]["job"] for t in found}
        return found if jobs == JOBS and all(t["health"] == "up" for t in found) else None
    return wait_for(all_up, 180, interval=3, what="every target of every job up")


def back_to_normal(host, prom, tmp_path, normal):
    """The scenario's own settings again, and proof that they are what runs."""
    rc, out = run_playbook(tmp_path)
    assert rc == 0, out[-4000:]
    assert host.file(CONF).sha256sum == normal["conf"]
    assert exec_args(host) == normal["execstart"]
    assert not host.file("/etc/prometheus/web.yml").exists
    assert not host.file("/etc/prometheus/self-scrape.password").exists
    assert host.check_output("ls -A /etc/prometheus/file_sd") == ""
    assert get_as(prom + "/api/v1/targets")[0] == 200
    # Its own series restart with the first scrape of the restored self-scrape
    # target (the earlier targets' series were marked stale when they left).
    reloaded = wait_for(lambda: query(prom, "prometheus_config_last_reload_successful"), 60, interval=2,
                        what="Prometheus's own reload metric, scraped again")
    assert reloaded[0]["value"][1] == "1"
    wait_all_up(prom)


# ---- Installation and configuration from the inventory ---------------------------

def test_prometheus_from_package_hardened(host, normal):
    assert host.package("prometheus").is_installed
    assert unit_property(host, UNIT, "ActiveState") == "active"
    assert unit_property(host, UNIT, "User") == "prometheus"
    assert unit_property(host, UNIT, "FragmentPath") == "/etc/systemd/system/prometheus.service"
    assert unit_property(host, UNIT, "NoNewPrivileges") == "yes"
    assert unit_property(host, UNIT, "ProtectSystem") == "strict"
    assert unit_property(host, UNIT, "ReadWritePaths") == "/var/lib/prometheus/metrics2"
    args = normal["execstart"]
    # molecule/shared/group_vars/prometheus.yml
    assert "--storage.tsdb.retention.time=1d" in args and "--storage.tsdb.retention.size=1GB" in args
    assert "--web.enable-lifecycle" not in args and "--web.config.file" not in args
    data = host.file("/var/lib/prometheus/metrics2")
    assert data.is_directory and data.user == "prometheus"
    conf = host.file(CONF)
    assert (conf.user, conf.group, conf.mode) == ("root", "prometheus", 0o640)
    assert host.run("/usr/bin/promtool check config %s", CONF).rc == 0


def test_node_exporter_from_package(host):
    assert host.package("prometheus-node-exporter").is_installed
    unit = "prometheus-node-exporter.service"
    assert unit_property(host, unit, "ActiveState") == "active"
    assert unit_property(host, unit, "User") == "node-exp"
    assert unit_property(host, unit, "FragmentPath") == "/etc/systemd/system/" + unit
    assert unit_property(host, unit, "ProtectSystem") == "strict"


def test_generated_config(host):
    conf = yaml.safe_load(host.file(CONF).content_string)
    # The seed's 5 s scrape; rules every 5 s in this scenario (host_vars/stack-vllm-2.yml).
    assert conf["global"]["scrape_interval"] == "5s"
    assert conf["global"]["evaluation_interval"] == "5s"
    jobs = {j["job_name"]: j for j in conf["scrape_configs"]}
    assert set(jobs) == JOBS
    vllm = {(g["labels"]["host"], g["labels"]["vllm_instance"], t)
            for g in jobs["vllm"]["static_configs"] for t in g["targets"]}
    assert vllm == VLLM_TARGETS
    assert all(g["labels"]["vllm_model"] == "tiny" for g in jobs["vllm"]["static_configs"])
    assert {g["labels"]["host"] for g in jobs["node"]["static_configs"]} == HOSTS
    # Alerts go to every Alertmanager of the group (the fleet model), over API v2.
    assert conf["alerting"]["alertmanagers"] == [
        {"api_version": "v2", "static_configs": [{"targets": ["stack-mon-1:9093"]}]}]


def test_every_target_up_with_its_labels(prom):
    by_job = {}
    for t in wait_all_up(prom):
        by_job.setdefault(t["labels"]["job"], []).append(t["labels"])
    # `instance` keeps Prometheus's meaning: the scraped address.
    assert {(v["host"], v["vllm_instance"], v["instance"]) for v in by_job["vllm"]} == VLLM_TARGETS
    assert {v["vllm_model"] for v in by_job["vllm"]} == {"tiny"}
    assert sorted(n["host"] for n in by_job["node"]) == sorted(HOSTS)
    assert [(g["host"], g["instance"]) for g in by_job["gateway"]] == [("stack-mon-1", "stack-mon-1:8405")]
    assert [(g["host"], g["instance"]) for g in by_job["grafana"]] == [("stack-mon-1", "stack-mon-1:3000")]
    assert [(g["host"], g["instance"]) for g in by_job["alertmanager"]] == [("stack-mon-1", "stack-mon-1:9093")]
    # molecule.yml puts stack-mon-1 into group triton: Triton's metrics port, served by a stub.
    assert [(g["host"], g["instance"]) for g in by_job["triton"]] == [("stack-mon-1", "stack-mon-1:8002")]
    assert [p["host"] for p in by_job["prometheus"]] == [PROM_HOST]


def test_vllm_and_recording_rule_series_have_data(prom, api_key):
    # job="vllm": Triton's vLLM backend (stack-mon-1, job triton) exports vllm:* series too.
    running = wait_for(lambda: query(prom, 'vllm:num_requests_running{job="vllm"}'), 120, interval=5,
                       what="vllm:num_requests_running")
    assert {(r["metric"]["host"], r["metric"]["vllm_instance"], r["metric"]["instance"]) for r in running} \
        == VLLM_TARGETS
    assert {r["metric"]["model_name"] for r in running} == {"tiny"}
    vllm_hosts = {h: get_host(h) for h in sorted({t[0] for t in VLLM_TARGETS})}
    records = sorted({r["name"] for g in api(prom, "/api/v1/rules")["groups"] for r in g["rules"]
                      if r["type"] == "recording"})
    assert records
    body = {"model": "tiny", "prompt": "Hello", "max_tokens": 8, "temperature": 0}

    def every_series():
        # Traffic to every instance on each round, so the 1m rates and latency
        # quantiles have something to show.
        for name, _, address in sorted(VLLM_TARGETS):
            status, text = http(vllm_hosts[name], own_url(vllm_hosts[name], int(address.split(":")[1]), "/v1/completions"),
                                key=api_key, body=body)
            assert status == 200, text
        tokens = query(prom, "instance:vllm_generation_tokens:rate1m > 0")
        if {(r["metric"]["host"], r["metric"]["vllm_instance"]) for r in tokens} != {t[:2] for t in VLLM_TARGETS}:
            return None
        empty = [r for r in records if not query(prom, r)]
        print("recording rules without data yet:", empty)
        return not empty

    wait_for(every_series, 240, interval=5, what="every recording rule to have data")
    fleet = query(prom, 'model_name:vllm_request_success:rate1m{model_name="tiny"}')
    assert fleet and float(fleet[0]["value"][1]) > 0


def test_rules_loaded_as_rendered(host, prom):
    rendered = {}
    for path in host.check_output("ls /etc/prometheus/rules/*.yml").split():
        rendered[path] = yaml.safe_load(host.file(path).content_string)["groups"]
    want_groups = {g["name"] for gs in rendered.values() for g in gs}
    want_alerts = {r["alert"] for gs in rendered.values() for g in gs for r in g["rules"] if "alert" in r}
    want_records = {r["record"] for gs in rendered.values() for g in gs for r in g["rules"] if "record" in r}
    assert KEY_GROUPS <= want_groups, want_groups
    assert KEY_ALERTS <= want_alerts, want_alerts

    groups = api(prom, "/api/v1/rules")["groups"]
    assert {g["name"] for g in groups} == want_groups
    assert {g["file"] for g in groups} == set(rendered)
    rules = [r for g in groups for r in g["rules"]]
    assert {r["name"] for r in rules if r["type"] == "alerting"} == want_alerts
    assert {r["name"] for r in rules if r["type"] == "recording"} == want_records
    assert sum(len(g["rules"]) for gs in rendered.values() for g in gs) == len(rules)

    def evaluated():
        current = [r for g in api(prom, "/api/v1/rules")["groups"] for r in g["rules"]]
        bad = [(r["name"], r.get("lastError")) for r in current if r["health"] != "ok"]
        return not bad or print("not evaluated yet or failing:", bad)

    wait_for(evaluated, 120, interval=5, what="every rule evaluated without error")


# ---- The roles run again ------------------------------------------------------------

def test_invalid_scrape_config_fails_and_keeps_previous(host, prom, tmp_path, normal):
    pid = main_pid(host)
    bad = {"prometheus_extra_scrape_configs": [
        {"job_name": "broken-job", "scrape_interval": "5x", "static_configs": [{"targets": ["127.0.0.1:9"]}]}]}
    try:
        rc, out = run_playbook(tmp_path, extra=bad)
        assert rc != 0, out[-4000:]
        # promtool's own message reaches the operator.
        assert 'not a valid duration string: \\"5x\\"' in out or 'not a valid duration string: "5x"' in out, \
            out[-4000:]
        # The file was not replaced; Prometheus kept running the previous configuration.
        assert host.file(CONF).sha256sum == normal["conf"]
        assert main_pid(host) == pid
        assert unit_property(host, UNIT, "ActiveState") == "active"
        assert "broken-job" not in loaded_config(prom)
        assert query(prom, "prometheus_config_last_reload_successful")[0]["value"][1] == "1"
    except Exception:
        back_to_normal(host, prom, tmp_path, normal)
        raise


def test_reload_not_applied_is_converged_by_next_run(host, prom, tmp_path, normal):
    """A configuration written without its reload (a run limited to the
    configure tag) is brought into Prometheus by the next run, with a reload,
    although the files themselves are already up to date."""
    pid = main_pid(host)
    probe = {"prometheus_extra_scrape_configs": [
        {"job_name": "probe-job", "static_configs": [{"targets": ["127.0.0.1:9090"]}]}]}
    try:
        rc, out = run_playbook(tmp_path, extra=probe, tags="prometheus_configure")
        assert rc == 0, out[-4000:]
        assert "probe-job" in host.file(CONF).content_string
        assert "probe-job" not in loaded_config(prom)

        rc, out = run_playbook(tmp_path, extra=probe)
        assert rc == 0, out[-4000:]
        assert "Loaded | Reload with SIGHUP" in out
        assert "probe-job" in loaded_config(prom)
        assert main_pid(host) == pid, "a configuration change must reload, not restart"
    finally:
        back_to_normal(host, prom, tmp_path, normal)
    assert "probe-job" not in loaded_config(prom)
    assert main_pid(host) == pid


def test_basic_auth_and_file_sd(host, prom, tmp_path, normal):
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
    # A rule file the role does not manage (left by an earlier setting) goes.
    host.check_output("printf 'groups: []\\n' > /etc/prometheus/rules/stray.yml")
    try:
        rc, out = run_playbook(tmp_path, extra=extra)
        assert rc == 0, out[-4000:]
        assert password not in out
        assert not host.file("/etc/prometheus/rules/stray.yml").exists
        web = host.file("/etc/prometheus/web.yml")
        assert web.mode == 0o640 and web.group == "prometheus"
        secret = host.file("/etc/prometheus/self-scrape.password")
        assert secret.mode == 0o640 and secret.user == "root" and secret.content_string == password
        assert password not in host.check_output("ps -eww -o args")
        conf = host.file(CONF).content_string
        assert "file_sd_configs" in conf and "stack-vllm-1:8000" not in conf
        vllm_sd = json.loads(host.file("/etc/prometheus/file_sd/vllm.json").content_string)
        assert {(g["labels"]["host"], g["labels"]["vllm_instance"], t) for g in vllm_sd for t in g["targets"]} \
            == VLLM_TARGETS
        assert all(g["labels"]["vllm_model"] == "tiny" for g in vllm_sd)

        assert get_as(prom + "/api/v1/targets")[0] == 401
        assert get_as(prom + "/api/v1/targets", "prom:wrong-password")[0] == 401
        # The self-scrape authenticates with the password file; file_sd targets are found.
        wait_all_up(prom, cred)
    finally:
        back_to_normal(host, prom, tmp_path, normal)


# ---- Node exporter from a release archive -------------------------------------------

@pytest.fixture
def mirror(tmp_path):
    """tests/release_archive/serve.py: node_exporter-<v>.linux-amd64.tar.gz and its
    sha256sums.txt, built from Debian's binary, served on the controller's
    127.0.0.1 (the role downloads and checks archives on the controller)."""
    serve = [sys.executable, os.path.join(ROOT, "tests", "release_archive", "serve.py")]
    state = str(tmp_path / "release_archive")
    info = json.loads(subprocess.check_output(serve + ["start", "--state-dir", state, "--idle-exit", "600"],
                                              text=True, timeout=600))
    yield info
    subprocess.run(serve + ["stop", "--state-dir", state], check=True, timeout=60)


def node_target(prom, name):
    found = [t for t in targets(prom) if t["labels"]["job"] == "node" and t["labels"]["host"] == name]
    assert len(found) == 1, found
    return found[0]


def up_since(target, since):
    """The target is up and was last scraped after `since` (epoch seconds)."""
    scraped = calendar.timegm(time.strptime(target["lastScrape"][:19], "%Y-%m-%dT%H:%M:%S"))
    return target["health"] == "up" and scraped > since + 1


def test_node_exporter_from_release_archive(prom, mirror, tmp_path):
    node = get_host(ARCHIVE_HOST)
    version = mirror["versions"]["node_exporter"]
    base = "%s/node_exporter/v%s" % (mirror["url"], version)
    cache = tmp_path / "archive-cache"
    # The test mirror serves plain http on 127.0.0.1: allowed explicitly, as for any local mirror.
    archive = {"node_exporter_install_method": "archive", "node_exporter_archive_base_url": base,
               "node_exporter_archive_cache_dir": str(cache), "node_exporter_allow_insecure_mirror": True}
    package_unit, archive_unit = "prometheus-node-exporter.service", "node_exporter.service"
    assert unit_property(node, package_unit, "ActiveState") == "active"

    # A checksum that does not match: the download is refused before the host changes.
    rc, out = run_playbook(tmp_path, limit=ARCHIVE_HOST,
                           extra=dict(archive, node_exporter_archive_sha256={"amd64": "0" * 64}))
    assert rc != 0, out[-4000:]
    assert "did not match" in out, out[-4000:]
    assert not node.file("/usr/local/bin/node_exporter").exists
    assert not node.file("/etc/systemd/system/" + archive_unit).exists
    assert unit_property(node, package_unit, "ActiveState") == "active"

    try:
        # The switch of install method: the packaged service gives port 9100 up first.
        node.check_output("systemctl disable --now %s", package_unit)
        switched = time.time()
        rc, out = run_playbook(tmp_path, limit=ARCHIVE_HOST, extra=archive)
        assert rc == 0, out[-4000:]
        # The archive that reached the host is the one sha256sums.txt names.
        stem = "node_exporter-%s.linux-amd64" % version
        sums = urllib.request.urlopen(base + "/sha256sums.txt", timeout=30).read().decode()
        expected = [line.split()[0] for line in sums.splitlines() if line.split()[1] == stem + ".tar.gz"]
        tarball = cache / (stem + ".tar.gz")
        assert hashlib.sha256(tarball.read_bytes()).hexdigest() == expected[0]
        with tarfile.open(tarball) as tar:
            packed = hashlib.sha256(tar.extractfile(stem + "/node_exporter").read()).hexdigest()
        binary = node.file("/usr/local/bin/node_exporter")
        assert binary.is_file and binary.mode == 0o755 and binary.user == "root"
        assert binary.sha256sum == packed
        assert version in node.check_output("/usr/local/bin/node_exporter --version 2>&1")
        assert unit_property(node, archive_unit, "ActiveState") == "active"
        assert unit_property(node, archive_unit, "User") == "node-exp"
        assert unit_property(node, archive_unit, "NoNewPrivileges") == "yes"
        assert "/usr/local/bin/node_exporter" in unit_property(node, archive_unit, "ExecStart")
        pid = unit_property(node, archive_unit, "MainPID")
        assert node.file("/proc/%s/exe" % pid).linked_to == "/usr/local/bin/node_exporter"
        assert unit_property(node, package_unit, "ActiveState") == "inactive"
        # Prometheus scrapes the new exporter at the same address.
        wait_for(lambda: up_since(node_target(prom, ARCHIVE_HOST), switched), 60, interval=3,
                 what="the node target of %s scraped from the archive's exporter" % ARCHIVE_HOST)
    finally:
        # Back to the package: the archive's unit and binary go, the role starts its unit again.
        node.run("systemctl disable --now %s", archive_unit)
        node.run("rm -f /etc/systemd/system/%s /usr/local/bin/node_exporter", archive_unit)
        node.run("systemctl daemon-reload")
        rc, out = run_playbook(tmp_path, limit=ARCHIVE_HOST)
        assert rc == 0, out[-4000:]
    assert unit_property(node, package_unit, "ActiveState") == "active"
    assert unit_property(node, package_unit, "UnitFileState") == "enabled"
    assert unit_property(node, archive_unit, "LoadState") == "not-found"
    wait_for(lambda: node_target(prom, ARCHIVE_HOST)["health"] == "up", 60, interval=3,
             what="the node target of %s up on the package's exporter" % ARCHIVE_HOST)
