"""The host firewall (roles/host_firewall, playbooks/firewall.yml) on the split stack.

site.yml ran it last, with the controller (the gateway address of network
llmops-stack) as the admin network (host_vars). From a host that is neither
gateway nor Prometheus (stack-vllm-1), a vLLM port and the exporters of the
other hosts are closed; from the gateway (stack-mon-1) the vLLM ports and from
Prometheus (stack-vllm-2) the exporters are open; every Prometheus target stays
up, and the controller still reaches what the other tests use. Refused and timed
out both count as closed. Runs last; changes nothing but re-running the play.
"""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from loadgen import container_ip  # noqa: E402
from prom import targets  # noqa: E402
from vllm_checks import wait_for  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
HOSTS = ("stack-vllm-1", "stack-vllm-2", "stack-mon-1")
PROBE = ("import socket,sys\n"
         "try:\n"
         "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()\n"
         "    print('open')\n"
         "except OSError as e:\n"
         "    print('closed', type(e).__name__)\n")


def reach(src, dst, port):
    """Whether host src opens a TCP connection to host dst (its address on the fleet network)."""
    out = subprocess.run(["docker", "exec", src, "python3", "-c", PROBE, container_ip(dst), str(port)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip() == "open"


@pytest.mark.parametrize("host", HOSTS)
def test_each_host_runs_the_table_with_the_connections_first(host):
    out = subprocess.check_output(["docker", "exec", host, "nft", "list", "table", "inet", "llmops"], text=True)
    rules = [line.strip() for line in out.splitlines()]
    assert "policy drop;" in out
    assert rules.index("ct state established,related accept") < rules.index('iif "lo" accept')
    assert 'llmops.vllm rule set' in out
    assert any(r.startswith("ip saddr") and "tcp dport 22 accept" in r for r in rules)
    # loaded at boot: nftables.service enabled, its file includes the role's
    assert subprocess.check_output(["docker", "exec", host, "systemctl", "is-enabled", "nftables"],
                                   text=True).strip() == "enabled"
    conf = subprocess.check_output(["docker", "exec", host, "cat", "/etc/nftables.conf"], text=True)
    assert 'include "/etc/nftables.d/llmops.nft"' in conf


# TCP listeners of a host, from /proc (no ss or netstat in the images): [address, port].
LISTENERS = r"""
import json, socket
out = []
for path, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
    try:
        lines = open(path).read().splitlines()[1:]
    except OSError:
        continue
    for line in lines:
        fields = line.split()
        if fields[3] != "0A":  # LISTEN
            continue
        addr, port = fields[1].split(":")
        raw = bytes.fromhex(addr)
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
        out.append([socket.inet_ntop(family, raw), int(port, 16)])
print(json.dumps(out))
"""
# The services' ports in this scenario: vLLM (two instances on stack-vllm-1), the
# gateway (client, TLS, metrics), node exporter, Prometheus, Alertmanager, Grafana.
SERVICE_PORTS = {8000, 8001, 8080, 8443, 8405, 9100, 9090, 9093, 3000}


@pytest.mark.parametrize("host", HOSTS)
def test_services_listen_on_the_fleet_address_not_every_interface(host):
    listeners = json.loads(subprocess.check_output(["docker", "exec", host, "python3", "-c", LISTENERS], text=True))
    ours = sorted((addr, port) for addr, port in listeners if port in SERVICE_PORTS)
    # Node exporter runs everywhere; vLLM or Prometheus or the gateway besides it.
    assert len({port for _, port in ours}) >= 2, listeners
    assert all(addr == container_ip(host) for addr, _ in ours), ours


@pytest.mark.parametrize("src,dst,port", [
    ("stack-vllm-1", "stack-vllm-2", 8000),   # vLLM: gateway and Prometheus only
    ("stack-vllm-1", "stack-mon-1", 9100),    # node exporter: Prometheus only
    ("stack-vllm-1", "stack-mon-1", 8405),    # HAProxy metrics: Prometheus only
    ("stack-vllm-1", "stack-mon-1", 9093),    # Alertmanager: Prometheus and admins
    ("stack-vllm-1", "stack-vllm-2", 9090),   # Prometheus: Grafana and admins
    ("stack-mon-1", "stack-vllm-1", 9100),    # the gateway is not Prometheus
])
def test_closed_to_hosts_that_do_not_need_it(src, dst, port):
    assert not reach(src, dst, port), "%s reaches %s:%d" % (src, dst, port)


@pytest.mark.parametrize("src,dst,port", [
    ("stack-mon-1", "stack-vllm-1", 8000),    # gateway -> vLLM
    ("stack-mon-1", "stack-vllm-1", 8001),
    ("stack-mon-1", "stack-vllm-2", 8000),
    ("stack-vllm-2", "stack-vllm-1", 8000),   # Prometheus -> vLLM
    ("stack-vllm-2", "stack-vllm-1", 9100),   # Prometheus -> exporters
    ("stack-vllm-2", "stack-mon-1", 9100),
    ("stack-vllm-2", "stack-mon-1", 8405),
    ("stack-vllm-2", "stack-mon-1", 9093),
    ("stack-mon-1", "stack-vllm-2", 9090),    # Grafana -> Prometheus
    ("stack-vllm-1", "stack-mon-1", 8080),    # the gateway is open to the client networks
    ("stack-vllm-1", "stack-mon-1", 3000),    # and Grafana
])
def test_open_to_the_peers_that_need_it(src, dst, port):
    assert reach(src, dst, port), "%s cannot reach %s:%d" % (src, dst, port)


def test_the_controller_is_an_admin_network():
    for host, port in (("stack-vllm-2", 9090), ("stack-vllm-1", 8001), ("stack-mon-1", 9093),
                       ("stack-mon-1", 9100)):
        socket.create_connection((container_ip(host), port), timeout=5).close()


def test_every_prometheus_target_stays_up():
    prom = "http://%s:9090" % container_ip("stack-vllm-2")

    def all_up():
        found = targets(prom)
        return found and all(t["health"] == "up" for t in found)
    wait_for(all_up, 60, what="every target up")
    jobs = {t["labels"]["job"] for t in targets(prom)}
    assert {"vllm", "node", "gateway", "grafana", "alertmanager", "triton"} <= jobs


def test_second_run_of_the_firewall_play_changes_nothing():
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), MOLECULE_PROJECT_DIRECTORY=ROOT,
               MOLECULE_EPHEMERAL_DIRECTORY=EPHEMERAL, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY,
           os.path.join(ROOT, "playbooks", "firewall.yml")]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    print("firewall.yml: rc %d, %.0f s" % (proc.returncode, time.monotonic() - start))
    assert_unchanged(proc)
    # check mode with diff agrees: nothing to change
    assert_unchanged(subprocess.run(cmd + ["--check", "--diff"], capture_output=True, text=True, env=env,
                                    cwd=ROOT, timeout=600))


def assert_unchanged(proc):
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    for host in HOSTS:
        assert any(line.startswith(host) and " changed=0 " in line and " failed=0 " in line
                   for line in out.splitlines()), out[-4000:]
