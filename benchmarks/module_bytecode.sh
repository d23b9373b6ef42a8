#!/usr/bin/env bash
# What the hosts' module bytecode cache (scripts/ansible_module_bytecode.py) saves:
# one playbook of 70 module runs per host (command, stat, file) on two systemd
# hosts of the test image, over the docker connection with pipelining, run
# three times:
#   1. without the cache (its .pth file moved aside on both hosts): every module
#      run compiles the module_utils it ships from source, twice;
#   2. with it, first run (writes the cache);
#   3. with it, second run (reads it): what every task after the first gets.
# Reports wall seconds and the machine's CPU seconds (controller and hosts
# together, from /proc/stat; nothing else should run meanwhile) and run 3
# against run 1, measured in the same run.
# Output: benchmarks/module_bytecode.out.txt
#   benchmarks/module_bytecode.sh
source "$(dirname "$0")/../scripts/lib.sh"
# Not bootstrap_tools: that starts a new .cache/timings.txt, the suite's record.
ensure_host_packages
ensure_docker
ensure_venv
ensure_image
enter_venv
OUT="$ROOT/benchmarks/module_bytecode.out.txt"
HOSTS=(bench-bytecode-1 bench-bytecode-2)
work=$(mktemp -d)
trap 'docker rm -f "${HOSTS[@]}" >/dev/null 2>&1; rm -rf "$work"' EXIT

for host in "${HOSTS[@]}"; do
  docker rm -f "$host" >/dev/null 2>&1 || true
  docker run -d --name "$host" --cgroupns host --cap-add SYS_ADMIN \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock --tmpfs /tmp "$IMAGE" >/dev/null
done
cat >"$work/inventory.yml" <<YML
all:
  hosts: {${HOSTS[0]}: {}, ${HOSTS[1]}: {}}
  vars: {ansible_connection: community.docker.docker, ansible_python_interpreter: /usr/bin/python3}
YML
cat >"$work/modules.yml" <<'YML'
- name: 70 module runs per host
  hosts: all
  gather_facts: false
  tasks:
    - name: Command
      ansible.builtin.command: "true"
      changed_when: false
      loop: "{{ range(30) | list }}"
    - name: Stat
      ansible.builtin.stat:
        path: /etc/hostname
      loop: "{{ range(30) | list }}"
    - name: File
      ansible.builtin.file:
        path: /etc/hostname
        state: file
      loop: "{{ range(10) | list }}"
YML
export ANSIBLE_CONFIG="$ROOT/ansible.cfg" ANSIBLE_COLLECTIONS_PATH="$ROOT/collections"

busy() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }

# One run: "wall cpu" in seconds.
run() {
  local start end t0 t1
  t0=$(busy)
  start=$(date +%s.%N)
  ansible-playbook -i "$work/inventory.yml" "$work/modules.yml" >"$work/log" 2>&1 \
    || { cat "$work/log" >&2; exit 1; }
  end=$(date +%s.%N)
  t1=$(busy)
  awk -v s="$start" -v e="$end" -v c=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.1f %.1f\n", e - s, c / hz }'
}

on_hosts() { for host in "${HOSTS[@]}"; do docker exec "$host" sh -c "$1"; done; }

{
  echo "# benchmarks/module_bytecode.sh, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores"
  module_bytecode_on_hosts off "${HOSTS[@]}"
  read -r w1 c1 < <(run)
  module_bytecode_on_hosts on "${HOSTS[@]}"
  on_hosts "rm -rf /var/cache/ansible-module-bytecode"
  read -r w2 c2 < <(run)
  read -r w3 c3 < <(run)
  printf '%-44s %8s %8s\n' "run (140 module runs)" "wall s" "CPU s"
  printf '%-44s %8s %8s\n' "1. without the cache" "$w1" "$c1"
  printf '%-44s %8s %8s\n' "2. with it, first run (writes it)" "$w2" "$c2"
  printf '%-44s %8s %8s\n' "3. with it, second run (reads it)" "$w3" "$c3"
  awk -v w1="$w1" -v c1="$c1" -v w3="$w3" -v c3="$c3" \
    'BEGIN { printf "run 3 against run 1: wall %.2fx, CPU %.2fx\n", w3 / w1, c3 / c1 }'
} | tee "$OUT"
