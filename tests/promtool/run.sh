#!/usr/bin/env bash
# Renders the prometheus role's rule files and the victoriametrics role's global
# rule files with their default variables, checks
# them with `promtool check rules` and runs the unit tests in this directory
# with `promtool test rules`. Exit status 0 only when every test passes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
promtool="$("$here/ensure_promtool.sh")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$root"
ANSIBLE_CONFIG="$root/ansible.cfg" ansible-playbook -i localhost, "$here/render_rules.yml" -e "render_dir=$work" >"$work/render.log" 2>&1 \
  || { cat "$work/render.log"; exit 1; }

"$promtool" check rules "$work"/*.yml
# The TTFT SLO selects the bucket bound as vLLM writes it.
grep -q 'le="1.0"' "$work/vllm_alerts.yml"
cp "$here"/*.test.yml "$work/"
cd "$work"
"$promtool" test rules ./*.test.yml
