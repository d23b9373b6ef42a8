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
demo_gateway_tls
ansible-playbook -i "$INVENTORY" "$ROOT/playbooks/local_hosts.yml" >/dev/null
demo_grafana_source

run() {
  local name=$1 start end log
  shift
  log=$(mktemp /tmp/site-run-XXXXXX.log)
  start=$(date +%s.%N)
  if ! ansible-playbook -i "$INVENTORY" "$ROOT/site.yml" "$@" >"$log" 2>&1; then
    echo "site.yml ($name) failed; its output: $log" >&2
    return 1
  fi
  end=$(date +%s.%N)
  printf '%-22s %7.1f s\n' "$name" "$(echo "$end - $start" | bc)"
  sed -n '/PLAY RECAP/,$p' "$log" | grep -E 'ok=' | sed 's/^/    /'
  rm -f "$log"
}

# The output file is replaced only by a complete run.
{
  echo "site.yml on inventory/local ($(nproc) CPUs, $(date -u +%F))"
  run "first run"
  run "second run (no change)"
  run "--check" --check
} > "$OUT.new"
mv "$OUT.new" "$OUT"
cat "$OUT"
