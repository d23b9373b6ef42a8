#!/usr/bin/env bash
# Wall time of site.yml on the local demo hosts (inventory/local): the first run
# on fresh hosts, then three runs with nothing to change (their median against
# the first: a shared machine varies by about 20% from run to run) and --check
# on the same hosts. Recreates the demo hosts first.
# Output: benchmarks/site_runs.out.txt
#   benchmarks/site_runs.sh
source "$(dirname "$0")/../scripts/lib.sh"
bootstrap
INVENTORY="$ROOT/inventory/local"
OUT="$ROOT/benchmarks/site_runs.out.txt"
"$ROOT/scripts/demo" down >/dev/null 2>&1 || true
demo_gateway_tls
ansible-playbook -i "$INVENTORY" "$ROOT/playbooks/local_hosts.yml" >/dev/null
demo_grafana_source

# Prints the run's name, its wall time and its recap; the seconds go to $TIMES.
TIMES=$(mktemp /tmp/site-run-times-XXXXXX)
run() {
  local name=$1 start end log took
  shift
  log=$(mktemp /tmp/site-run-XXXXXX.log)
  start=$(date +%s.%N)
  if ! ansible-playbook -i "$INVENTORY" "$ROOT/site.yml" "$@" >"$log" 2>&1; then
    echo "site.yml ($name) failed; its output: $log" >&2
    return 1
  fi
  end=$(date +%s.%N)
  took=$(echo "$end - $start" | bc)
  echo "$took" >>"$TIMES"
  printf '%-26s %7.1f s\n' "$name" "$took"
  sed -n '/PLAY RECAP/,$p' "$log" | grep -E 'ok=' | sed 's/^/    /'
  rm -f "$log"
}

# The output file is replaced only by a complete run.
{
  echo "site.yml on inventory/local ($(nproc) CPUs, $(date -u +%F))"
  run "first run"
  for i in 1 2 3; do run "no change, run $i"; done
  run "--check" --check
  # The first run, then the three with nothing to change.
  head -n 4 "$TIMES" | python3 -c '
import statistics, sys
first, *same = [float(x) for x in sys.stdin]
median = statistics.median(same)
print("no change: median %.1f s = %.2fx of the first run (each: %s)"
      % (median, median / first, ", ".join("%.2fx" % (t / first) for t in same)))'
} > "$OUT.new"
rm -f "$TIMES"
mv "$OUT.new" "$OUT"
cat "$OUT"
