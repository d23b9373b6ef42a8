#!/usr/bin/env bash
# What cached bytecode saves the controller: one Ansible run of the prometheus
# role's preflight on ten hosts (local connections to this machine, so the
# figures are the controller's own work), run three times:
#   1. PYTHONDONTWRITEBYTECODE=1 and an empty cache: every process and every
#      forked task worker compiles Ansible and the plugins it loads from source;
#   2. caching allowed, first run (writes the cache);
#   3. caching allowed, second run (reads it): what scripts/lib.sh gets by
#      unsetting PYTHONDONTWRITEBYTECODE.
# The caches live in a throwaway PYTHONPYCACHEPREFIX, so the virtualenv's own
# state does not matter. Reports wall and CPU seconds (user + system, children
# included) and run 3 against run 1, measured in the same run.
# Output: benchmarks/bytecode_cache.out.txt
#   benchmarks/bytecode_cache.sh
source "$(dirname "$0")/../scripts/lib.sh"
enter_venv
OUT="$ROOT/benchmarks/bytecode_cache.out.txt"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python - "$work/inventory.json" <<'PY'
import json, sys
hosts = {"host%02d" % i: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
         for i in range(10)}
json.dump({"all": {"hosts": hosts}}, open(sys.argv[1], "w"))
PY
cat >"$work/preflight.yml" <<'YML'
- name: The prometheus role's preflight on ten hosts
  hosts: all
  gather_facts: true
  roles:
    - role: llmops.vllm.prometheus
      vars:
        prometheus_install_method: archive
YML
export ANSIBLE_CONFIG="$ROOT/ansible.cfg" ANSIBLE_COLLECTIONS_PATH="$ROOT/collections"

# One run: "wall cpu" in seconds.
run() {
  local prefix=$1
  shift
  env "$@" PYTHONPYCACHEPREFIX="$prefix" /usr/bin/time -f '%e %U %S' -o "$work/time" \
    ansible-playbook -i "$work/inventory.json" "$work/preflight.yml" --tags prometheus_preflight \
    >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
  awk '{printf "%.1f %.1f\n", $1, $2 + $3}' "$work/time"
}

{
  echo "# benchmarks/bytecode_cache.sh, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores"
  read -r w1 c1 < <(run "$work/none" PYTHONDONTWRITEBYTECODE=1)
  read -r w2 c2 < <(run "$work/cache")
  read -r w3 c3 < <(run "$work/cache")
  printf '%-48s %8s %8s\n' run "wall s" "CPU s"
  printf '%-48s %8s %8s\n' "1. PYTHONDONTWRITEBYTECODE=1, nothing cached" "$w1" "$c1"
  printf '%-48s %8s %8s\n' "2. caching allowed, first run (writes it)" "$w2" "$c2"
  printf '%-48s %8s %8s\n' "3. caching allowed, second run (reads it)" "$w3" "$c3"
  awk -v w1="$w1" -v c1="$c1" -v w3="$w3" -v c3="$c3" \
    'BEGIN { printf "run 3 against run 1: wall %.2fx, CPU %.2fx\n", w3 / w1, c3 / c1 }'
} | tee "$OUT"
