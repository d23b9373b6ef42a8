#!/usr/bin/env python3
"""What the gateway costs a streaming client: vLLM's own serving benchmark, at one
request rate, against one vLLM instance directly and through the gateway (plain
HTTP and TLS), alternating, in one run.

Each round runs vLLM's bench client (vllm.benchmarks.serve, what `vllm bench
serve` runs; random prompts, streamed /v1/completions, --ignore-eos so every
request streams the same number of tokens) once per target: (a) the instance
directly, (b) the gateway's plain HTTP listener, (c) its TLS listener, verified
against the given CA. The order rotates each round (a b c, b c a, c a b, ...), and
the three runs of a round use the same prompts (one seed per round), so load
from elsewhere on the machine and drift fall on every target alike. The client
saves every request's TTFT and inter-token gaps (--save-detailed); they are
pooled over the rounds per target and reported as TTFT p50/p99, inter-token
latency (ITL) p50, the share of gaps under 1 ms (chunks that arrived in one
read: coalesced, not streamed), output throughput (tokens / benchmark time) and
the ratios gateway/direct, with the per-round medians beside them.

The client runs where vLLM is installed: with --client-container, inside that
container (docker exec; the files it needs are copied in and removed after),
otherwise on this machine with --client-python. The API key is read from
--key-file and reaches the client in a 0600 file (playbooks/files/vllm_bench.py),
never on a command line. The model and tokenizer default to what the direct
instance reports in /v1/models (its `root` is the model directory on that host).

Output: a section appended to (or, without --append, replacing)
benchmarks/gateway_overhead.out.txt, titled with --label.

  .venv/bin/python benchmarks/gateway_overhead.py \\
      --direct http://VLLM_HOST:8000 --gateway http://GW_HOST:8080 \\
      --gateway-tls https://GW_HOST:8443 --ca-file ca.crt --key-file api_key \\
      --client-container VLLM_HOST [--client-python /opt/vllm/current/bin/python] \\
      [--rounds 3] [--num-prompts 20] [--request-rate 1] [--input-len 32] \\
      [--output-len 64] [--label TEXT] [--append]

For a TLS URL whose host name is not in the certificate, --tls-resolve NAME:IP
maps the name to the address inside the client (an /etc/hosts line in the
client container), so the certificate is verified, not skipped.
"""

import argparse
import datetime
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BENCH_SCRIPT = os.path.join(ROOT, "playbooks", "files", "vllm_bench.py")
OUT = os.path.join(ROOT, "benchmarks", "gateway_overhead.out.txt")
CLIENT_DIR = "/tmp/llmops-gateway-overhead"


def percentile(values, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def models(base_url, key, ca_file):
    context = ssl.create_default_context(cafile=ca_file) if base_url.startswith("https") else None
    request = urllib.request.Request(base_url.rstrip("/") + "/v1/models",
                                     headers={"Authorization": "Bearer " + key})
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        return json.load(response)["data"]


class Client:
    """Runs vLLM's bench client in a container (docker exec) or on this machine."""

    def __init__(self, args, key_file):
        self.container = args.client_container
        self.python = args.client_python
        if self.container:
            self.dir = CLIENT_DIR
            subprocess.check_call(["docker", "exec", self.container, "install", "-d", "-m", "0700", self.dir])
            # Through stdin (docker cp cannot write into a tmpfs); umask 077: the key file is 0600.
            for src, name in ((BENCH_SCRIPT, "vllm_bench.py"), (key_file, "api_key"), (args.ca_file, "ca.crt")):
                with open(src, "rb") as f:
                    subprocess.run(["docker", "exec", "-i", self.container, "sh", "-c",
                                    "umask 077; cat > %s/%s" % (self.dir, name)], stdin=f, check=True)
            for entry in args.tls_resolve:
                name, address = entry.split(":", 1)
                subprocess.check_call(["docker", "exec", self.container, "sh", "-c",
                                       "grep -q ' %s$' /etc/hosts || echo '%s %s' >> /etc/hosts" % (name, address, name)])
        else:
            self.dir = tempfile.mkdtemp(prefix="gateway-overhead-")
            shutil.copy(BENCH_SCRIPT, os.path.join(self.dir, "vllm_bench.py"))
            shutil.copy(key_file, os.path.join(self.dir, "api_key"))
            os.chmod(os.path.join(self.dir, "api_key"), 0o600)
            shutil.copy(args.ca_file, os.path.join(self.dir, "ca.crt"))

    def run(self, bench_args, result_name):
        env = {"HF_HUB_OFFLINE": "1", "SSL_CERT_FILE": self.dir + "/ca.crt"}
        argv = [self.python, self.dir + "/vllm_bench.py", "--api-key-file", self.dir + "/api_key"] + bench_args + [
            "--save-result", "--save-detailed", "--result-dir", self.dir, "--result-filename", result_name]
        if self.container:
            cmd = ["docker", "exec"] + ["-e%s=%s" % kv for kv in env.items()] + [self.container] + argv
            proc = subprocess.run(cmd, capture_output=True, text=True)
        else:
            proc = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, **env))
        if proc.returncode != 0:
            sys.exit("bench client failed (%d):\n%s\n%s" % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
        if self.container:
            text = subprocess.check_output(["docker", "exec", self.container, "cat", self.dir + "/" + result_name], text=True)
        else:
            with open(os.path.join(self.dir, result_name), encoding="utf-8") as f:
                text = f.read()
        return json.loads(text)

    def close(self):
        if self.container:
            subprocess.call(["docker", "exec", self.container, "rm", "-rf", self.dir])
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def summarize(results):
    """Pool the per-request figures of every round of one target."""
    ttfts, itls, rounds = [], [], []
    outputs = duration = failed = completed = 0
    for r in results:
        ok = [i for i, e in enumerate(r.get("errors", [])) if not e]
        ttfts += [r["ttfts"][i] * 1000 for i in ok]
        itls += [gap * 1000 for i in ok for gap in r["itls"][i]]
        outputs += r["total_output_tokens"]
        duration += r["duration"]
        completed += r["completed"]
        failed += r.get("failed", 0)
        rounds.append((r["median_ttft_ms"], r["median_itl_ms"]))
    return {
        "completed": completed,
        "failed": failed,
        "ttft_p50": percentile(ttfts, 50),
        "ttft_p99": percentile(ttfts, 99),
        "itl_p50": percentile(itls, 50),
        "itl_p90": percentile(itls, 90),
        "itl_under_1ms": sum(1 for g in itls if g < 1.0) / len(itls) if itls else float("nan"),
        "out_tok_s": outputs / duration if duration else float("nan"),
        "rounds": rounds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--direct", required=True, help="one vLLM instance, e.g. http://10.0.0.5:8000")
    parser.add_argument("--gateway", required=True, help="the gateway's plain listener, e.g. http://10.0.0.9:8080")
    parser.add_argument("--gateway-tls", help="the gateway's TLS listener, e.g. https://gw:8443")
    parser.add_argument("--ca-file", help="CA that signed the gateway's certificate (required with --gateway-tls)")
    parser.add_argument("--key-file", required=True, help="file holding the API key")
    parser.add_argument("--client-container", help="run the bench client in this container (docker exec)")
    parser.add_argument("--client-python", default="/opt/vllm/current/bin/python",
                        help="Python with vLLM installed (in the container, or here)")
    parser.add_argument("--tls-resolve", action="append", default=[], metavar="NAME:IP",
                        help="an /etc/hosts entry in the client container for the TLS URL's host name")
    parser.add_argument("--model", help="served model name (default: the first of the direct instance's /v1/models)")
    parser.add_argument("--tokenizer", help="tokenizer path on the client (default: that model's root)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--num-prompts", type=int, default=20, help="per target and round")
    parser.add_argument("--request-rate", type=float, default=1.0)
    parser.add_argument("--input-len", type=int, default=32)
    parser.add_argument("--output-len", type=int, default=64)
    parser.add_argument("--label", default="", help="title of this run's section in the output file")
    parser.add_argument("--append", action="store_true", help="append this run's section to the output file")
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args()
    if args.gateway_tls and not args.ca_file:
        parser.error("--gateway-tls needs --ca-file")
    if not args.ca_file:
        args.ca_file = os.devnull

    with open(args.key_file, encoding="utf-8") as f:
        key = f.read().strip()
    if not (args.model and args.tokenizer):
        served = models(args.direct, key, None)[0]
        args.model = args.model or served["id"]
        args.tokenizer = args.tokenizer or served.get("root") or served["id"]

    targets = [("direct", args.direct), ("gateway", args.gateway)]
    if args.gateway_tls:
        targets.append(("gateway-tls", args.gateway_tls))
    results = {name: [] for name, _ in targets}
    client = Client(args, args.key_file)
    started = time.monotonic()
    try:
        for rnd in range(args.rounds):
            order = targets[rnd % len(targets):] + targets[:rnd % len(targets)]
            for name, url in order:
                bench_args = [
                    "--backend", "openai", "--base-url", url, "--endpoint", "/v1/completions",
                    "--model", args.model, "--tokenizer", args.tokenizer,
                    "--dataset-name", "random", "--random-input-len", str(args.input_len),
                    "--random-output-len", str(args.output_len), "--ignore-eos",
                    "--num-prompts", str(args.num_prompts), "--request-rate", str(args.request_rate),
                    "--seed", str(rnd + 1), "--percentile-metrics", "ttft,itl", "--metric-percentiles", "50,99",
                    "--disable-tqdm"]
                r = client.run(bench_args, "%s-%d.json" % (name, rnd))
                results[name].append(r)
                print("round %d %-12s TTFT p50 %7.1f ms  ITL p50 %6.2f ms  %6.1f tok/s  failed %d" % (
                    rnd + 1, name, r["median_ttft_ms"], r["median_itl_ms"], r["output_throughput"], r.get("failed", 0)),
                    flush=True)
    finally:
        client.close()
    wall = time.monotonic() - started

    summary = {name: summarize(rs) for name, rs in results.items()}
    base = summary["direct"]
    lines = [
        "## %s" % (args.label or "run"),
        "",
        "%s; %d rounds x %d prompts per target at %g req/s, random %d in / %d out tokens (ignore-eos), "
        "streamed /v1/completions; model %s; order rotated each round; wall %.0f s." % (
            datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ"), args.rounds, args.num_prompts,
            args.request_rate, args.input_len, args.output_len, args.model, wall),
        "targets: " + ", ".join("%s %s" % t for t in targets),
        "",
        "%-12s %5s %4s %10s %10s %9s %9s %9s %9s" % (
            "target", "ok", "fail", "TTFTp50ms", "TTFTp99ms", "ITLp50ms", "ITLp90ms", "ITL<1ms", "out tok/s"),
    ]
    for name, _ in targets:
        s = summary[name]
        lines.append("%-12s %5d %4d %10.1f %10.1f %9.2f %9.2f %8.0f%% %9.1f" % (
            name, s["completed"], s["failed"], s["ttft_p50"], s["ttft_p99"], s["itl_p50"], s["itl_p90"],
            100 * s["itl_under_1ms"], s["out_tok_s"]))
    lines += ["", "ratios to direct:  TTFT p50   TTFT p99   ITL p50   out tok/s"]
    for name, _ in targets[1:]:
        s = summary[name]
        lines.append("  %-14s %8.2f %10.2f %9.2f %11.2f" % (
            name, s["ttft_p50"] / base["ttft_p50"], s["ttft_p99"] / base["ttft_p99"],
            s["itl_p50"] / base["itl_p50"] if base["itl_p50"] else float("nan"), s["out_tok_s"] / base["out_tok_s"]))
    lines += ["", "per-round medians (TTFT ms / ITL ms), in the order run:"]
    for name, _ in targets:
        lines.append("  %-12s %s" % (name, "   ".join("%.1f / %.2f" % r for r in summary[name]["rounds"])))
    lines.append("")
    text = "\n".join(lines) + "\n"
    print("\n" + text)

    header = (
        "# Gateway overhead: vLLM's bench client directly against one instance and through\n"
        "# the gateway (HTTP, TLS), alternating. Written by benchmarks/gateway_overhead.py;\n"
        "# see its docstring for what is measured and how to rerun. ITL<1ms: share of\n"
        "# inter-token gaps under 1 ms, i.e. streamed chunks that arrived together.\n\n")
    if args.append and os.path.exists(args.out):
        with open(args.out, "a", encoding="utf-8") as f:
            f.write("\n" + text)
    else:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(header + text)


if __name__ == "__main__":
    main()
