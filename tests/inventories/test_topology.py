"""Which host gets which service, for every example inventory.

Runs `ansible-playbook site.yml --list-hosts` on each inventory the project ships
and compares the hosts of each play with what the inventory's layout promises.
"""

import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Play name -> hosts, per inventory. Plays whose hosts are decided at run time
# (the vLLM rollout's parallel and batched plays) list no host here.
PLAYS = {
    "prod": {
        "Sort the GPU hosts into serving and not serving": {"gpu-node-01", "gpu-node-02", "gpu-node-03"},
        "Stage the vLLM release and model, and plan the rollout": {"gpu-node-01", "gpu-node-02", "gpu-node-03"},
        "Deploy the vLLM gateway": {"gw-01"},
        "Node exporter on every host": {"gpu-node-01", "gpu-node-02", "gpu-node-03", "gw-01", "mon-01"},
        "Prometheus": {"mon-01"},
        "Grafana": {"mon-01"},
    },
    "local": {
        "Sort the GPU hosts into serving and not serving": set(),
        "Stage the vLLM release and model, and plan the rollout": {"llmops-vllm-1", "llmops-vllm-2"},
        "Deploy the vLLM gateway": {"llmops-mon-1"},
        "Node exporter on every host": {"llmops-vllm-1", "llmops-vllm-2", "llmops-mon-1"},
        "Prometheus": {"llmops-mon-1"},
        "Grafana": {"llmops-mon-1"},
    },
    "examples/all-in-one": {
        "Sort the GPU hosts into serving and not serving": {"box-01"},
        "Stage the vLLM release and model, and plan the rollout": {"box-01"},
        "Deploy the vLLM gateway": {"box-01"},
        "Node exporter on every host": {"box-01"},
        "Prometheus": {"box-01"},
        "Grafana": {"box-01"},
    },
    # The seed's layout: Prometheus beside the GPUs, Grafana on a host of its own.
    "examples/split": {
        "Sort the GPU hosts into serving and not serving": {"gpu-node-01", "gpu-node-02"},
        "Stage the vLLM release and model, and plan the rollout": {"gpu-node-01", "gpu-node-02"},
        "Deploy the vLLM gateway": {"gpu-node-01"},
        "Node exporter on every host": {"gpu-node-01", "gpu-node-02", "grafana-01"},
        "Prometheus": {"gpu-node-02"},
        "Grafana": {"grafana-01"},
    },
    # Beyond one Prometheus: a Prometheus (or two) beside each GPU site, one global host.
    "examples/multi-site": {
        "Sort the GPU hosts into serving and not serving": {"fra1-gpu-01", "fra1-gpu-02", "ams1-gpu-01", "ams1-gpu-02"},
        "Stage the vLLM release and model, and plan the rollout": {"fra1-gpu-01", "fra1-gpu-02", "ams1-gpu-01", "ams1-gpu-02"},
        "Deploy the vLLM gateway": {"fra1-gpu-01", "ams1-gpu-01"},
        "Node exporter on every host": {"fra1-gpu-01", "fra1-gpu-02", "ams1-gpu-01", "ams1-gpu-02", "fra1-prom-1",
                                        "fra1-prom-2", "ams1-prom-a", "ams1-prom-b", "global-01"},
        "Prometheus": {"fra1-prom-1", "fra1-prom-2", "ams1-prom-a", "ams1-prom-b"},
        "Grafana": {"global-01"},
    },
}

PLAY_LINE = re.compile(r"^\s+play #\d+ \(([^)]*)\): (.*?)\tTAGS:")
HOST_COUNT = re.compile(r"^\s+hosts \((\d+)\):")


def list_hosts(inventory):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    out = subprocess.run([playbook, "-i", os.path.join(ROOT, "inventory", inventory),
                          os.path.join(ROOT, "site.yml"), "--list-hosts"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    plays, current, left = {}, None, 0
    for line in out.splitlines():
        m = PLAY_LINE.match(line)
        if m:
            current = m.group(2)
            plays[current] = set()
            continue
        m = HOST_COUNT.match(line)
        if m:
            left = int(m.group(1))
            continue
        if current and left and line.strip():
            plays[current].add(line.strip())
            left -= 1
    return plays


@pytest.mark.parametrize("inventory", sorted(PLAYS))
def test_each_service_lands_on_the_hosts_of_its_group(inventory):
    plays = list_hosts(inventory)
    for play, hosts in PLAYS[inventory].items():
        assert plays.get(play) == hosts, "%s: play %r runs on %s, expected %s" % (
            inventory, play, sorted(plays.get(play) or []), sorted(hosts))
    # The first play checks every host before any changes.
    first = next(iter(plays))
    assert first == "Check every input before any host changes"
    assert plays[first] == set().union(*PLAYS[inventory].values())


def fleet_of(inventory):
    """The fleet model of an inventory, from `ansible-inventory --list` (group vars resolved)."""
    sys.path.insert(0, os.path.join(ROOT, "collections"))
    from ansible_collections.llmops.vllm.plugins.filter.fleet import fleet_model

    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    tool = os.path.join(os.path.dirname(sys.executable), "ansible-inventory")
    data = json.loads(subprocess.run([tool, "-i", os.path.join(ROOT, "inventory", inventory), "--list"],
                                     cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout)
    hostvars = data["_meta"]["hostvars"]
    groups = {}

    def hosts_of(group):
        out = list(data.get(group, {}).get("hosts", []))
        for child in data.get(group, {}).get("children", []):
            out += [h for h in hosts_of(child) if h not in out]
        return out

    for group in data:
        if group != "_meta":
            groups[group] = hosts_of(group)
    for host in hostvars:
        hostvars[host].setdefault("inventory_hostname", host)
    return fleet_model(hostvars, groups)


def test_multi_site_which_host_gets_which_service():
    model = fleet_of("examples/multi-site")
    services = {h: sorted(s) for h, s in model["services"].items()}
    assert services == {
        "fra1-gpu-01": ["gateway", "gpu", "node_exporter", "vllm"],
        "fra1-gpu-02": ["gpu", "node_exporter", "vllm"],
        "ams1-gpu-01": ["gateway", "gpu", "node_exporter", "vllm"],
        "ams1-gpu-02": ["gpu", "node_exporter", "vllm"],
        "fra1-prom-1": ["node_exporter", "prometheus"],
        "fra1-prom-2": ["node_exporter", "prometheus"],
        "ams1-prom-a": ["node_exporter", "prometheus"],
        "ams1-prom-b": ["node_exporter", "prometheus"],
        "global-01": ["alertmanager", "grafana", "node_exporter", "victoriametrics"],
    }
    # Which Prometheus scrapes which host, and how.
    assert {s: (v["mode"], v["prometheus"]) for s, v in model["sites"].items()} == {
        "fra1": ("shard", ["fra1-prom-1", "fra1-prom-2"]),
        "ams1": ("ha", ["ams1-prom-a", "ams1-prom-b"]),
    }
    vllm_hosts = {p: sorted({tg["labels"]["host"] for tg in v["scrape_targets"]["vllm"]})
                  for p, v in model["prometheus"].items()}
    assert vllm_hosts == {
        "fra1-prom-1": ["fra1-gpu-01", "fra1-gpu-02"], "fra1-prom-2": ["fra1-gpu-01", "fra1-gpu-02"],
        "ams1-prom-a": ["ams1-gpu-01", "ams1-gpu-02"], "ams1-prom-b": ["ams1-gpu-01", "ams1-gpu-02"],
    }
    assert model["site_of"]["global-01"] == "fra1"
    assert [model["prometheus"][p]["external_labels"] for p in sorted(model["prometheus"])] == [
        {"site": "ams1", "replica": "ams1-prom-a"}, {"site": "ams1", "replica": "ams1-prom-b"},
        {"site": "fra1", "shard": "0"}, {"site": "fra1", "shard": "1"}]
    assert model["remote_write_urls"] == ["http://10.0.0.31:8428/api/v1/write"]
