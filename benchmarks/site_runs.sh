#!/usr/bin/env bash
# Wall time of site.yml on the local demo hosts (inventory/local): the first run
# on fresh hosts, the second run (nothing to change) and --check on the same
# hosts. Recreates the demo hosts first. Output: benchmarks/site_runs.out.txt
#   benchmarks/site_runs.sh
source "$(dirname "$0")/../scripts/lib.sh"
bootstrap
INVENTORY="$ROOT/inventory/local"
OUT="$ROOT/benchmarks/site_runs.out.txt"
"$ROOT/scripts/demo" down >/dev/null 2>&1 || true
ansible-playbook -i "$INVENTORY" "$ROOT/playbooks/local_hosts.yml" >/dev/null
if ! curl -sfI --max-time 10 https://apt.grafana.com/gpg-full.key >/dev/null 2>&1; then
  "$ROOT/tests/apt_repo/build.sh" serve >/dev/null
  LLMOPS_GRAFANA_REPO=$("$ROOT/tests/apt_repo/build.sh" url)
  export LLMOPS_GRAFANA_REPO LLMOPS_GRAFANA_VERSION=12.2.0+double
fi

run() {
  local name=$1 start end recap
  shift
  start=$(date +%s.%N)
  recap=$(ansible-playbook -i "$INVENTORY" "$ROOT/site.yml" "$@" | sed -n '/PLAY RECAP/,$p' | grep -E 'ok=')
  end=$(date +%s.%N)
  printf '%-22s %7.1f s\n' "$name" "$(echo "$end - $start" | bc)"
  printf '%s\n' "$recap" | sed 's/^/    /'
}

{
  echo "site.yml on inventory/local ($(nproc) CPUs, $(date -u +%F))"
  run "first run" 
  run "second run (no change)"
  run "--check" --check
} | tee "$OUT"
