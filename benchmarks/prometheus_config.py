#!/usr/bin/env python3
"""Benchmark (not a test): the prometheus role's configuration for a large fleet.

Generates, in a temporary directory, an inventory of N GPU hosts (groups gpu and
vllm) with M vLLM instances each, plus one monitoring host on a local
connection, then:

  1. times `ansible-playbook --check` (no --diff) of the role's preflight
     (targets from the inventory) and configure steps (every template rendered)
     for the monitoring host: wall time and peak RSS of all processes;
  2. renders the same prometheus.yml and rule files for real into the temporary
     directory and checks them with `promtool check config` (which also checks
     the rule files it references), timing promtool too.

With --sites S the GPU hosts are spread over S sites (fleet_site), each with
--per-site Prometheus hosts (sharded by hashmod) in group prometheus, and one
global store (group victoriametrics) that every Prometheus remote-writes to;
the measured monitoring host is the first Prometheus of the first site, so its
prometheus.yml holds that site's targets only.

Run from the repository root with the tool venv:
    .venv/bin/python benchmarks/prometheus_config.py [--hosts 1000] [--instances 8] [--sites 8 --per-site 2]
The figures of the last runs are kept in benchmarks/prometheus_config.out.txt
(one site) and benchmarks/prometheus_config_sites.out.txt (--sites 8).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

PLAYBOOK = """
- name: Prometheus configuration for the generated fleet
  hosts: monitoring
  gather_facts: true
  gather_subset: [min]
  tasks:
    - name: Preflight (targets from the inventory)
      ansible.builtin.include_role:
        name: llmops.vllm.prometheus
        tasks_from: preflight.yml
        public: true

    - name: Configure (every template rendered)
      ansible.builtin.include_role:
        name: llmops.vllm.prometheus
        tasks_from: configure.yml
      when: bench_mode == 'check'

    - name: Rule files, rendered for promtool
      ansible.builtin.template:
        src: "{{ bench_role }}/templates/rules/{{ item }}.yml.j2"
        dest: "{{ prometheus_config_dir }}/rules/{{ item }}.yml"
        mode: "0644"
      loop: "{{ __prometheus_rule_templates.keys() | list }}"
      when: bench_mode == 'render'

    - name: prometheus.yml, rendered for promtool
      ansible.builtin.template:
        src: "{{ bench_role }}/templates/prometheus.yml.j2"
        dest: "{{ prometheus_config_dir }}/prometheus.yml"
        mode: "0644"
      when: bench_mode == 'render'
"""


def make_inventory(path, n_hosts, n_instances, n_sites=0, per_site=1):
    hosts = {}
    for i in range(n_hosts):
        hosts["gpu-%04d" % i] = {
            "ansible_host": "10.%d.%d.%d" % (i // 65536, (i // 256) % 256, i % 256),
            "vllm_server_instances": [{"name": "gpu%d" % k, "port": 8000 + k} for k in range(n_instances)],
        }
        if n_sites:
            hosts["gpu-%04d" % i]["fleet_site"] = "site-%d" % (i % n_sites)
    mon = {"mon-1": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}
    children = {
        "gpu": {"hosts": hosts},
        "vllm": {"hosts": {h: None for h in hosts}, "vars": {"vllm_server_served_model_name": "llama-3-70b"}},
        "monitoring": {"hosts": mon},
    }
    if n_sites:
        mon["mon-1"]["fleet_site"] = "site-0"
        prom = {"mon-1": None}
        for site in range(n_sites):
            for k in range(per_site):
                if (site, k) != (0, 0):
                    prom["prom-%d-%d" % (site, k)] = {"fleet_site": "site-%d" % site, "ansible_host": "10.250.%d.%d" % (site, k)}
        children["prometheus"] = {"hosts": prom}
        children["victoriametrics"] = {"hosts": {"vm-global": {"ansible_host": "10.251.0.1", "fleet_site": "site-0"}}}
    inventory = {"all": {"children": children}}
    with open(path, "w") as f:
        json.dump(inventory, f)  # JSON is YAML


# Runs a command in a child Python that reports the peak RSS of the command's
# process tree (RUSAGE_CHILDREN of that child only), so each figure is exact.
_MEASURE = (
    "import json, resource, subprocess, sys\n"
    "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "print(json.dumps([p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.stdout + p.stderr]))\n"
)


def run(cmd, env):
    """Runs cmd; returns (wall seconds, peak RSS in MiB of its largest process, output)."""
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _MEASURE] + cmd, env=env, capture_output=True, text=True, check=True)
    wall = time.monotonic() - start
    rc, maxrss_kib, output = json.loads(proc.stdout)
    if rc != 0:
        sys.stderr.write(output)
        raise SystemExit("command failed: %s" % " ".join(cmd))
    return wall, maxrss_kib / 1024.0, output


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hosts", type=int, default=1000)
    p.add_argument("--instances", type=int, default=8)
    p.add_argument("--sites", type=int, default=0, help="spread the GPU hosts over this many sites (0: no sites)")
    p.add_argument("--per-site", type=int, default=1, help="Prometheus hosts per site (hashmod shards)")
    a = p.parse_args()

    promtool = subprocess.run([os.path.join(ROOT, "tests", "promtool", "ensure_promtool.sh")],
                              check=True, capture_output=True, text=True).stdout.strip()
    out = []

    def say(line=""):
        out.append(line)
        print(line, flush=True)

    with tempfile.TemporaryDirectory(prefix="prombench-") as tmp:
        inv = os.path.join(tmp, "inventory.yml")
        make_inventory(inv, a.hosts, a.instances, a.sites, a.per_site)
        book = os.path.join(tmp, "bench.yml")
        with open(book, "w") as f:
            f.write(PLAYBOOK)
        conf = os.path.join(tmp, "etc")
        for d in ("", "rules", "file_sd"):
            os.makedirs(os.path.join(conf, d), exist_ok=True)
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
        common = [ANSIBLE_PLAYBOOK, "-i", inv, book,
                  "-e", "prometheus_config_dir=" + conf,
                  "-e", "prometheus_user=root", "-e", "prometheus_group=root",
                  "-e", "bench_role=" + os.path.join(ROOT, "roles", "prometheus")]

        say("prometheus configuration benchmark")
        say("  inventory: %d GPU hosts x %d vLLM instances = %d vLLM targets (+ %d node, %d GPU, 1 self)"
            % (a.hosts, a.instances, a.hosts * a.instances, a.hosts + 1, a.hosts))
        if a.sites:
            say("  sites: %d (fleet_site), %d Prometheus per site (hashmod shards), 1 global store (victoriametrics);"
                " measured: the first Prometheus of site-0" % (a.sites, a.per_site))
        say("  machine: %s, %d CPUs, Python %s; %s" % (platform.platform(), os.cpu_count(), platform.python_version(),
                                                        subprocess.run([ANSIBLE_PLAYBOOK, "--version"], capture_output=True,
                                                                       text=True).stdout.splitlines()[0]))
        say()
        small = os.path.join(tmp, "small.yml")
        make_inventory(small, 1, 1)
        base_wall, base_rss, _ = run([common[0], "-i", small] + common[3:] + ["--check", "-e", "bench_mode=check"], env)
        wall, rss, log = run(common + ["--check", "-e", "bench_mode=check"], env)
        recap = [ln for ln in log.splitlines() if ln.startswith("mon-1")]
        say("1. ansible-playbook --check (preflight + configure of the role, no --diff)")
        say("   wall time: %.1f s   (same run for 1 host x 1 instance: %.1f s)" % (wall, base_wall))
        say("   peak RSS of the largest process: %.0f MiB   (1 host x 1 instance: %.0f MiB)" % (rss, base_rss))
        say("   recap: %s" % (recap[-1].split(":", 1)[1].strip() if recap else "?"))
        say()

        wall, rss, log = run(common + ["-e", "bench_mode=render"], env)
        cfg = os.path.join(conf, "prometheus.yml")
        size = os.path.getsize(cfg)
        with open(cfg) as f:
            text = f.read()
        targets = text.count('"targets": [')
        say("2. the same configuration rendered for real")
        say("   wall time: %.1f s, peak RSS of the largest process: %.0f MiB" % (wall, rss))
        say("   prometheus.yml: %.1f MiB, %d lines, %d target groups" % (size / 2**20, text.count("\n"), targets))
        start = time.monotonic()
        check = subprocess.run([promtool, "check", "config", cfg], capture_output=True, text=True)
        took = time.monotonic() - start
        say("   promtool check config (and the rule files it references): rc=%d in %.1f s" % (check.returncode, took))
        for line in (check.stdout + check.stderr).strip().splitlines():
            say("     " + line.replace(tmp, "<tmp>"))
        # vLLM, node (every host), GPU; the self-scrape is written differently. (The inventory has
        # no grafana group any more, so no Grafana job: the "1 Grafana" of older runs.)
        if a.sites:
            mine = len(range(0, a.hosts, a.sites))  # GPU hosts of site-0
            # vLLM, node (its GPU hosts, its Prometheus hosts, the global store), GPU, the global store.
            expected = mine * a.instances + (mine + a.per_site + 1) + mine + 1
            shards = text.count("action: hashmod")
            say("   hashmod relabelling in %d jobs; remote_write entries: %d"
                % (shards, text.count("/api/v1/write")))
        else:
            expected = a.hosts * a.instances + (a.hosts + 1) + a.hosts
        say("   target groups expected %d, found %d: %s" % (expected, targets, "OK" if targets == expected else "MISMATCH"))
        if os.environ.get("BENCH_SHOW_CONFIG"):
            print(text)
        if check.returncode != 0 or targets != expected:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
