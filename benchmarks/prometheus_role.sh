#!/usr/bin/env bash
# The prometheus role's run with nothing to change, on the demo stack's
# Prometheus host (inventory/local, up: scripts/demo): the role alone, as a
# play of its own with facts gathered, three times after one settling run.
# Reports each run's wall time, its task count (ok + skipped from the recap)
# and the tasks that took longest (the whole site.yml: benchmarks/site_runs.sh).
# Output: benchmarks/prometheus_role.out.txt
#   benchmarks/prometheus_role.sh
source "$(dirname "$0")/../scripts/lib.sh"
enter_venv
demo_grafana_source
INVENTORY="$ROOT/inventory/local"
OUT="$ROOT/benchmarks/prometheus_role.out.txt"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/prometheus.yml" <<'YML'
- name: The prometheus role alone
  hosts: prometheus
  gather_facts: true
  roles:
    - llmops.vllm.prometheus
YML

# One run: wall seconds, then the recap's ok/changed/skipped; keeps the output.
run() {
  local playbook=$1 log=$2 start end
  start=$(date +%s.%N)
  ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks PROFILE_TASKS_TASK_OUTPUT_LIMIT=5 ANSIBLE_NOCOLOR=1 \
    ansible-playbook -i "$INVENTORY" "$playbook" >"$log" 2>&1 || { echo "$playbook failed: $log" >&2; cat "$log" >&2; exit 1; }
  end=$(date +%s.%N)
  printf '%6.1f s  %s\n' "$(echo "$end - $start" | bc)" \
    "$(sed -n '/PLAY RECAP/,$p' "$log" | grep -E 'ok=' | awk '{printf "%s %s %s %s; ", $1, $3, $4, $7}')"
}

run "$work/prometheus.yml" "$work/settle.log" >/dev/null
{
  echo "prometheus role, nothing to change, on inventory/local's Prometheus host ($(nproc) CPUs, $(date -u +%F))"
  for i in 1 2 3; do
    printf 'role run %d: ' "$i"
    run "$work/prometheus.yml" "$work/role-$i.log"
  done
  echo "slowest tasks of the last role run (profile_tasks):"
  sed -n '/^=====/,$p' "$work/role-3.log" | grep -E ' -+ +[0-9.]+s$' | head -5 | sed 's/^/    /'
} > "$OUT.new"
mv "$OUT.new" "$OUT"
cat "$OUT"
