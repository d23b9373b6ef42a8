#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.vllm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: files
short_description: Several files from content, validated, in one task
version_added: "0.1.0"
description:
  - Writes each file of O(files) from its content with its owner, group and mode, in one remote
    call for all of them. A loop of M(ansible.builtin.template) or M(ansible.builtin.copy) costs two
    remote calls per file even when nothing changes (a checksum, then the attributes).
  - All or nothing. Every file whose content differs is first written beside its destination and
    validated (O(files[].validate)); only when every one passes do they replace the old files. A
    file that fails its check leaves every destination as it was.
  - Removes the files of O(absent) in the same call, once the new files are in place (files a
    role wrote under another setting).
  - Render templates on the controller with P(ansible.builtin.template#lookup).
author: llmops.vllm maintainers (!UNKNOWN)
extends_documentation_fragment:
  - llmops.vllm.attributes
attributes:
  check_mode:
    support: full
    details:
      - Nothing is written or validated; the result says which files would change.
  diff_mode:
    support: full
    details:
      - One diff per file whose content or attributes change. Set C(no_log) on the task, or turn
        diff off for it, when a file holds secrets.
options:
  files:
    description: The files.
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: Absolute path of the file. Its directory must exist.
        type: path
        required: true
      content:
        description: The whole content of the file.
        type: str
        required: true
      owner:
        description: Owner (name or uid). Left as it is when not given (a new file gets the task's user).
        type: str
      group:
        description: Group (name or gid). Left as it is when not given.
        type: str
      mode:
        description:
          - Permissions, as for M(ansible.builtin.copy) (a quoted octal string such as C("0640")).
          - The new content gets its owner, group and mode before it replaces the file, so a secret is
            never readable by others, not even for a moment.
        type: raw
        required: true
      validate:
        description:
          - Command that checks the new content before it replaces the file; C(%s) is the path of the
            new content. Run without a shell.
        type: str
  absent:
    description:
      - Absolute paths of files to remove (a missing one is fine). A directory there is an error,
        found before anything changes.
    type: list
    elements: path
    default: []
seealso:
  - module: ansible.builtin.template
  - module: ansible.builtin.copy
"""

EXAMPLES = r"""
- name: Rule files, each checked by promtool before any replaces the old ones
  llmops.vllm.files:
    files:
      - dest: /etc/prometheus/rules/vllm-alerts.yml
        content: "{{ lookup('ansible.builtin.template', 'rules/vllm-alerts.yml.j2') }}"
        owner: root
        group: prometheus
        mode: "0640"
        validate: /usr/bin/promtool check rules %s

- name: Web configuration only while TLS is on
  llmops.vllm.files:
    files: "{{ [web_config] if tls_enabled else [] }}"
    absent: "{{ [] if tls_enabled else ['/etc/prometheus/web.yml'] }}"
"""

RETURN = r"""
files:
  description: One entry per file, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    dest: {description: The file., type: str}
    changed: {description: Whether its content or attributes changed (or would)., type: bool}
    content_changed: {description: Whether its content changed (or would)., type: bool}
absent:
  description: One entry per path of O(absent), in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    path: {description: The path., type: str}
    changed: {description: Whether a file was removed (or would be)., type: bool}
"""

import os
import shlex
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text
from ansible_collections.llmops.vllm.plugins.module_utils.fs_batch import (
    absolute_path_errors, entry_spec, exit_batch, fail_unchanged, set_attributes)


def read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except (IOError, OSError):
        return None


def destination_errors(dests):
    """Messages for absolute destinations that cannot be written."""
    errors = []
    for dest in dests:
        if os.path.isdir(dest):
            errors.append("%s is a directory" % dest)
        elif not os.path.isdir(os.path.dirname(dest)):
            errors.append("the directory of %s does not exist" % dest)
    return errors


def absent_errors(paths, dests):
    """Messages for paths to remove that are directories or also files to write."""
    errors = ["%s is a directory" % path for path in paths if os.path.isdir(path)]
    errors += ["%s is both a file to write and one to remove" % path for path in paths if path in dests]
    return errors


def stage(module, entry, content):
    """Writes the new content to a private file beside dest, with the attributes dest will have.

    Returns its path. Owner and group not given are those of the file it replaces.
    """
    dest = entry["dest"]
    fd, path = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".%s." % os.path.basename(dest), suffix=".llmops")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        if os.path.exists(dest):
            held = os.stat(dest)
            os.chown(path, held.st_uid, held.st_gid)
        set_attributes(module, entry, path)
    except BaseException:  # also fail_json's exit (an unknown owner)
        os.unlink(path)
        raise
    return path


def validate(module, entry, path):
    """Runs the entry's check on the staged file; returns an error message or None."""
    command = entry.get("validate")
    if not command:
        return None
    if "%s" not in command:
        return "validate for %s must contain %%s" % entry["dest"]
    rc, out, err = module.run_command([part.replace("%s", path) for part in shlex.split(command)])
    if rc != 0:
        return "%s failed its check (%s, rc=%d): %s" % (entry["dest"], command, rc, (err or out).strip())
    return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=entry_spec(
                required_mode=True,
                required=False,
                dest=dict(type="path", required=True),
                content=dict(type="str", required=True),
                validate=dict(type="str"),
            ),
            absent=dict(type="list", elements="path", default=[]),
        ),
        supports_check_mode=True,
    )
    entries = module.params["files"]
    dests = [e["dest"] for e in entries]
    absent = module.params["absent"]
    fail_unchanged(module, absolute_path_errors(dests + absent) or destination_errors(dests)
                   + absent_errors(absent, dests))

    wanted = [to_bytes(e["content"], errors="surrogate_or_strict") for e in entries]
    held = [read_bytes(e["dest"]) for e in entries]
    differs = [w != h for w, h in zip(wanted, held)]

    # Stage and check every new content before any file is replaced. Staged files
    # left behind by a failure (a check, an unknown owner) are removed on the way out.
    staged = {}
    try:
        if not module.check_mode:
            for i, entry in enumerate(entries):
                if differs[i]:
                    try:
                        staged[i] = stage(module, entry, wanted[i])
                    except (IOError, OSError) as exc:
                        fail_unchanged(module, ["cannot write beside %s: %s" % (entry["dest"], to_native(exc))])
            fail_unchanged(module, [p for p in (validate(module, entries[i], path) for i, path in sorted(staged.items()))
                                    if p])

        results, diffs = [], []
        for i, entry in enumerate(entries):
            dest = entry["dest"]
            if i in staged:
                # Same directory, so the rename is atomic: readers see the old file or the new one.
                os.rename(staged[i], dest)
            attr_changed = False
            if os.path.exists(dest):
                attr_changed, attr_diff = set_attributes(module, entry, dest)
                if attr_changed:
                    diffs.append(attr_diff)
            if differs[i]:
                diffs.append({"before_header": dest, "after_header": dest,
                              "before": to_text(held[i] or b"", errors="surrogate_or_strict"),
                              "after": to_text(wanted[i], errors="surrogate_or_strict")})
            results.append({"dest": dest, "changed": differs[i] or attr_changed, "content_changed": differs[i]})
    finally:
        for path in staged.values():
            if os.path.lexists(path):
                os.unlink(path)

    removed = []
    for path in absent:
        there = os.path.lexists(path)
        if there:
            # As ansible.builtin.file says it: the path and its state, never the content (a secret).
            diffs.append({"before": {"path": path, "state": "file"}, "after": {"path": path, "state": "absent"}})
            if not module.check_mode:
                try:
                    os.unlink(path)
                except (IOError, OSError) as exc:
                    module.fail_json(msg="The files were written, but %s could not be removed: %s"
                                         % (path, to_native(exc)), files=results)
        removed.append({"path": path, "changed": there})

    exit_batch(module, "files", results, diffs, absent=removed)


if __name__ == "__main__":
    main()
