#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.vllm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vllm_instances
short_description: Decide which vLLM instances of a host to restart
version_added: "0.1.0"
description:
  - Compares each instance's desired fingerprint with the one recorded when the instance last
    came up healthy (a JSON file per instance in O(state_dir)), and reads whether its systemd unit
    is active.
  - An instance is to be restarted when its fingerprint differs, when none was ever recorded,
    when its unit is not active, or when O(force) is set.
  - The host is I(serving) when at least one instance is active on a recorded configuration.
    Changing such a host goes through the rollout path (drain, restart, gate), while a host that
    serves nothing yet is started all at once.
  - Reads only; changes nothing.
author: llmops.vllm maintainers (!UNKNOWN)
extends_documentation_fragment:
  - llmops.vllm.attributes
  - llmops.vllm.attributes.info_module
options:
  instances:
    description:
      - The instances the host should run, in order, each mapped to its desired fingerprint (a digest
        of everything it runs on). Instance C(<name>) runs as unit C(vllm@<name>.service).
    type: dict
    required: true
  state_dir:
    description: Directory holding one applied record per instance, named after it.
    type: path
    required: true
  force:
    description: Restart every instance, whatever its record says (its virtualenv was rebuilt in place).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Which instances need a restart?
  llmops.vllm.vllm_instances:
    state_dir: /var/lib/vllm/.applied
    instances:
      main: "{{ main_fingerprint }}"
  register: plan

- name: Restart them
  ansible.builtin.systemd_service:
    name: "vllm@{{ item }}.service"
    state: restarted
  loop: "{{ plan.restart }}"
"""

RETURN = r"""
instances:
  description: One entry per instance, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Instance name., type: str}
    unit: {description: systemd unit., type: str}
    active_state: {description: 'What C(systemctl is-active) said.', type: str, sample: active}
    applied: {description: 'The recorded fingerprint, or null.', type: str}
    restart: {description: Whether the instance is to be restarted., type: bool}
    reason: {description: 'Why, or C(unchanged).', type: str, sample: configuration changed}
restart:
  description: Names of the instances to restart.
  returned: always
  type: list
  elements: str
serving:
  description: Whether some instance is active on a recorded configuration.
  returned: always
  type: bool
records:
  description: The recorded state of each instance that has one (fingerprint, port, url, unit), by name.
  returned: always
  type: dict
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule


def read_record(path):
    """The applied record of one instance, or None. Older releases wrote the bare fingerprint."""
    try:
        with open(path) as f:
            text = f.read().strip()
    except (IOError, OSError):
        return None
    if not text:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return {"fingerprint": text}
    return record if isinstance(record, dict) else {"fingerprint": text}


def active_states(module, units):
    """systemctl is-active for every unit in one call: one line per unit, in order."""
    if not units:
        return []
    systemctl = module.get_bin_path("systemctl", required=True)
    # is-active exits non-zero when any unit is not active; the lines still say which.
    rc, out, err = module.run_command([systemctl, "is-active"] + list(units))
    lines = out.splitlines()
    if len(lines) != len(units):
        module.fail_json(msg="systemctl is-active gave %d lines for %d units: %s" % (len(lines), len(units), err or out))
    return [line.strip() for line in lines]


def plan(instances, records, states, force):
    out = []
    for inst, state in zip(instances, states):
        record = records.get(inst["name"])
        applied = record.get("fingerprint") if record else None
        if force:
            reason = "forced (the release was rebuilt in place)"
        elif applied is None:
            reason = "never came up on a recorded configuration"
        elif applied != inst["fingerprint"]:
            reason = "configuration changed"
        elif state != "active":
            reason = "unit is %s" % state
        else:
            reason = "unchanged"
        out.append({"name": inst["name"], "unit": inst["unit"], "active_state": state, "applied": applied,
                    "restart": reason != "unchanged", "reason": reason})
    serving = any(i["active_state"] == "active" and i["applied"] is not None for i in out)
    return out, serving


def main():
    module = AnsibleModule(
        argument_spec=dict(
            instances=dict(type="dict", required=True),
            state_dir=dict(type="path", required=True),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    instances = [{"name": name, "unit": "vllm@%s.service" % name, "fingerprint": str(fingerprint)}
                 for name, fingerprint in module.params["instances"].items()]
    records = {}
    for inst in instances:
        record = read_record(os.path.join(module.params["state_dir"], inst["name"]))
        if record is not None:
            records[inst["name"]] = record
    states = active_states(module, [i["unit"] for i in instances])
    result, serving = plan(instances, records, states, module.params["force"])
    module.exit_json(changed=False, instances=result, restart=[i["name"] for i in result if i["restart"]],
                     serving=serving, records=records)


if __name__ == "__main__":
    main()
