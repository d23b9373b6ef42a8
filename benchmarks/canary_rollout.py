#!/usr/bin/env python3
"""A canary rollout of two hosts against a plain rollout, in one run.

On the hosts of an inventory (default inventory/local, the demo stack, which
must be up: scripts/demo; or a Molecule stack's inventory), under a load of
2 req/s through the gateway, the documented upgrade flow runs twice:
  1. plain: from the model the fleet serves (tiny-a or tiny-b) to the other one
     (playbooks/rolling_upgrade.yml);
  2. canary: back again, with vllm_server_canary_enabled, the first host as the
     canary with 20% of the requests, a 60 s window checked every 10 s.
Each run's wall time is split into phases from Ansible's profile_tasks callback
(benchmarks/rolling_upgrade.py): the canary's own share (share, analysis,
annotation, return) is the "canary" phase. Reported: both wall times, their
ratio, and the canary's overhead against its window.
Output: benchmarks/canary_rollout.out.txt

  .venv/bin/python benchmarks/canary_rollout.py [--inventory inventory/local]
      [--gateway http://127.0.0.1:8080] [--key-file .cache/local-secrets/vllm_api_key] [--window 60]
"""

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rolling_upgrade import ROOT, LoadGenerator, inventory_data, unit_starts, upgrade  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", action="append", default=None)
    parser.add_argument("--gateway", default="http://127.0.0.1:8080")
    parser.add_argument("--key-file", default=os.path.join(ROOT, ".cache", "local-secrets", "vllm_api_key"))
    parser.add_argument("--window", type=int, default=60)
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "canary_rollout.out.txt"))
    args = parser.parse_args()
    inventories = args.inventory or ["inventory/local"]
    hosts = inventory_data(inventories).get("vllm", {}).get("hosts", [])
    if len(hosts) < 2:
        sys.exit("a canary needs two vLLM hosts at least; %s has %d" % (" + ".join(inventories), len(hosts)))
    key = open(args.key_file).read().strip()
    models = os.path.join(ROOT, ".cache", "models")
    day2 = os.path.join(tempfile.mkdtemp(), "day2.json")
    canary = {"vllm_server_canary_enabled": True, "vllm_server_canary_share": 20,
              "vllm_server_canary_window": args.window, "vllm_server_canary_interval": 10,
              "vllm_server_canary_min_requests": 10, "vllm_server_canary_max_latency_ratio": 4.0}
    lines = ["canary rollout benchmark on %s: %d vLLM hosts, %d CPUs, load 2 req/s, %s"
             % (" + ".join(inventories), len(hosts), os.cpu_count(), time.strftime("%Y-%m-%d", time.gmtime()))]
    request = urllib.request.Request(args.gateway.rstrip("/") + "/v1/models", headers={"Authorization": "Bearer " + key})
    with urllib.request.urlopen(request, timeout=30) as response:
        serving = os.path.basename(json.load(response)["data"][0]["root"])
    other = "tiny-b" if serving == "tiny-a" else "tiny-a"
    results = {}
    for label, model, extra in (("plain rollout, %s -> %s" % (serving, other), other, {}),
                                ("canary rollout, %s -> %s" % (other, serving), serving, canary)):
        before = unit_starts(hosts)
        load = LoadGenerator(args.gateway, key, "tiny", rate=2).start()
        seconds, phases = upgrade(inventories, day2, {h: dict({"vllm_server_model": os.path.join(models, model)}, **extra)
                                                      for h in hosts})
        load.stop()
        after = unit_starts(hosts)
        s = load.summary()
        results[label] = (seconds, phases)
        lines.append("%s: %.1f s, %d instances restarted; requests sent %d, served %d, failed %d"
                     % (label, seconds, len([k for k in before if before[k] != after.get(k)]), s["sent"], s["ok"],
                        s["failed"]))
        lines.append("    phases (task time, s): " + ", ".join("%s %.1f" % kv for kv in phases.items()))
    (plain, _), (with_canary, phases) = results.values()
    lines.append("canary / plain: %.2f x; the canary adds %.1f s, of which its analysis window is %d s"
                 % (with_canary / plain, with_canary - plain, args.window))
    text = "\n".join(lines) + "\n"
    print(text, end="")
    with open(args.output, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
