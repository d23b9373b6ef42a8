#!/usr/bin/env bash
# How long the CPU build of vLLM takes to answer /health with the tiny test model:
# compiled (vLLM's default, torch.compile with Inductor) on a cold and a warm
# compile cache, against --enforce-eager and -O0, in one run on one host, and 20
# completions on each (a 120-character prompt, 16 tokens) to show what serving
# loses. An extra server on port 8010 of a running test host, as the vllm user,
# with its own cache directory per case (under /var/lib/vllm: /tmp is noexec).
# The "bytecode" set compares --enforce-eager starts with the virtualenv's
# compiled bytecode (what the role installs) and without it (as before: the vllm
# user cannot write __pycache__ into the root-owned virtualenv).
#
#   benchmarks/vllm_startup.sh [HOST [modes|bytecode]]
#     (default stack-vllm-2 after molecule converge -s default; set "modes")
# Output: benchmarks/vllm_startup.out.txt, benchmarks/vllm_startup_bytecode.out.txt
set -euo pipefail
H=${1:-stack-vllm-2}
SET=${2:-modes}
OUT="$(cd "$(dirname "$0")" && pwd)/vllm_startup$([ "$SET" = modes ] || echo "_$SET").out.txt"
EXP=/var/lib/vllm/startup-bench
probe='import sys, urllib.request
try:
    urllib.request.urlopen("http://127.0.0.1:8010/health", timeout=2)
except Exception:
    sys.exit(1)'
complete='import json, urllib.request
body = json.dumps({"model": "tiny", "prompt": "Hello " * 20, "max_tokens": 16}).encode()
for _ in range(20):
    urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:8010/v1/completions", data=body,
                           headers={"Content-Type": "application/json"}), timeout=60).read()'

run() {  # label cache-dir vLLM-arguments...
  local label=$1 cache=$EXP/$2 start ready done
  shift 2
  docker exec "$H" bash -c "mkdir -p $cache && chown vllm $cache"
  start=$(date +%s.%N)
  docker exec -d "$H" bash -c "runuser -u vllm -- env HOME=$cache VLLM_CACHE_ROOT=$cache HF_HOME=$cache/hf \
    HF_HUB_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=1 VLLM_CPU_OMP_THREADS_BIND=nobind /opt/vllm/current/bin/python \
    -m vllm.entrypoints.openai.api_server --model /var/lib/vllm/models/tiny-a --served-model-name tiny \
    --port 8010 --max-model-len 256 --dtype float32 $* >$cache.log 2>&1"
  until docker exec "$H" python3 -c "$probe"; do
    docker exec "$H" pgrep -f 'port 8010' >/dev/null || { docker exec "$H" tail -20 "$cache.log"; exit 1; }
    sleep 1
  done
  ready=$(date +%s.%N)
  docker exec "$H" python3 -c "$complete"
  done=$(date +%s.%N)
  printf '%-34s ready after %6.1f s; 20 completions %5.2f s\n' "$label" \
    "$(echo "$ready - $start" | bc)" "$(echo "$done - $ready" | bc)" | tee -a "$OUT"
  docker exec "$H" pkill -f 'port 8010' || true
  while docker exec "$H" pgrep -f 'port 8010' >/dev/null; do sleep 1; done
}

docker exec "$H" rm -rf "$EXP"
echo "vLLM start-up on $H ($(nproc) CPUs), $(date -u +%Y-%m-%d)" >"$OUT"
case "$SET" in
  modes)
    run "compiled, cold cache" c1
    run "compiled, warm cache" c1
    run "--enforce-eager" e1 --enforce-eager
    run "-O0" o1 -O0
    run "compiled, cold cache" c2
    run "--enforce-eager" e2 --enforce-eager
    ;;
  bytecode)
    # The no-bytecode case deletes the virtualenv's __pycache__ directories (as a
    # uv install without --compile-bytecode leaves it); compileall puts them back.
    site=$(docker exec "$H" /opt/vllm/current/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    for i in 1 2; do
      docker exec "$H" find "$site" -name __pycache__ -prune -exec rm -rf {} +
      run "--enforce-eager, no bytecode" n$i --enforce-eager
      # A few test and template files in the wheels do not compile; compileall says so in its status.
      docker exec "$H" /opt/vllm/current/bin/python -m compileall -q -j 0 "$site" >/dev/null || true
      run "--enforce-eager, bytecode" b$i --enforce-eager
    done
    ;;
  *) echo "unknown set $SET (modes or bytecode)" >&2; exit 2 ;;
esac
docker exec "$H" rm -rf "$EXP"
