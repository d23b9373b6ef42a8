#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.vllm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: directories
short_description: Several directories with their owner, group and mode, in one task
version_added: "0.1.0"
description:
  - Makes sure each directory of O(paths) exists with the given owner, group and mode, as
    M(ansible.builtin.file) with O(ansible.builtin.file#module:state=directory) would, but in one
    remote call for all of them instead of one per directory. A role's directory list costs one
    task whether it has two entries or ten.
  - Missing parents are created with the attributes of the entry that needs them, as
    M(ansible.builtin.file) does.
  - Every path is checked before anything changes, so a path that exists and is not a directory
    fails the task with nothing created.
author: llmops.vllm maintainers (!UNKNOWN)
extends_documentation_fragment:
  - llmops.vllm.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - One diff per directory that is created or whose owner, group or mode changes.
options:
  paths:
    description: The directories, in the order they are made.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path of the directory.
        type: path
        required: true
      owner:
        description: Owner (name or uid). Left as it is when not given.
        type: str
      group:
        description: Group (name or gid). Left as it is when not given.
        type: str
      mode:
        description:
          - Permissions, as for M(ansible.builtin.file) (a quoted octal string such as C("0750"), or a
            symbolic mode). Left as it is when not given.
        type: raw
seealso:
  - module: ansible.builtin.file
"""

EXAMPLES = r"""
- name: Directories of the service
  llmops.vllm.directories:
    paths:
      - {path: /opt/vllm, owner: root, group: root, mode: "0755"}
      - {path: /var/lib/vllm, owner: vllm, group: vllm, mode: "0750"}
      - {path: /var/lib/vllm/models, owner: vllm, group: vllm, mode: "0750"}
"""

RETURN = r"""
paths:
  description: One entry per directory, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    path: {description: The directory., type: str}
    created: {description: Whether it (or a missing parent) was created., type: bool}
    changed: {description: "Whether it was created, or its owner, group or mode changed.", type: bool}
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible_collections.llmops.vllm.plugins.module_utils.fs_batch import (
    absolute_path_errors, entry_spec, exit_batch, fail_unchanged, set_attributes)


def missing_parts(path):
    """The components of path that do not exist yet, outermost first."""
    missing = []
    current = path
    while current and not os.path.lexists(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return list(reversed(missing))


def blocked_errors(paths):
    """Messages for paths where something that is not a directory is in the way."""
    errors = []
    for path in paths:
        probe = path
        while probe and not os.path.lexists(probe):
            probe = os.path.dirname(probe)
        if probe and not os.path.isdir(probe):
            errors.append("%s exists and is not a directory" % probe)
    return errors


def ensure_directory(module, entry):
    """Creates the directory (and missing parents) and sets its attributes; returns (created, changed, diffs)."""
    created = missing_parts(entry["path"])
    diffs = []
    for part in created:
        diff = {"before": {"path": part, "state": "absent"}, "after": {"path": part, "state": "directory"}}
        if not module.check_mode:
            try:
                os.mkdir(to_bytes(part, errors="surrogate_or_strict"))
            except OSError as exc:
                module.fail_json(msg="Cannot create %s: %s" % (part, to_native(exc)), path=part)
            set_attributes(module, entry, part, changed=True, diff=diff)
        diffs.append(diff)
    if created:
        return True, True, diffs
    changed, diff = set_attributes(module, entry, entry["path"])
    return False, changed, [diff] if changed else []


def main():
    module = AnsibleModule(
        argument_spec=dict(paths=entry_spec(path=dict(type="path", required=True))),
        supports_check_mode=True,
    )
    entries = module.params["paths"]
    paths = [e["path"] for e in entries]
    fail_unchanged(module, absolute_path_errors(paths) or blocked_errors(paths))

    results, diffs = [], []
    for entry in entries:
        created, changed, entry_diffs = ensure_directory(module, entry)
        results.append({"path": entry["path"], "created": created, "changed": changed})
        diffs.extend(entry_diffs)
    exit_batch(module, "paths", results, diffs)


if __name__ == "__main__":
    main()
