# -*- coding: utf-8 -*-
# Copyright: llmops.vllm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the modules that change several paths in one call share (directories, files).

Each entry of their list carries owner, group and mode as ansible.builtin.file
takes them. Every entry is checked before anything changes; a module then sets
each entry's attributes and reports one diff per path that changes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

# The attribute options of an entry; a module adds its own (path or dest, ...).
ATTRIBUTE_OPTIONS = dict(
    owner=dict(type="str"),
    group=dict(type="str"),
    mode=dict(type="raw"),
)


def entry_spec(required_mode=False, required=True, **options):
    """The list option of a batch module: entries with the given options and the attributes."""
    spec = dict(options)
    spec.update(ATTRIBUTE_OPTIONS)
    if required_mode:
        spec["mode"] = dict(type="raw", required=True)
    if required:
        return dict(type="list", elements="dict", required=True, options=spec)
    return dict(type="list", elements="dict", default=[], options=spec)


def absolute_path_errors(paths):
    """Messages for paths that are not absolute."""
    return ["%s is not an absolute path" % path for path in paths if not os.path.isabs(path)]


def fail_unchanged(module, problems):
    """Fails the module when there are problems, saying that nothing was changed."""
    if problems:
        module.fail_json(msg="Nothing was changed: " + "; ".join(problems))


def set_attributes(module, entry, path, changed=False, diff=None):
    """Sets the entry's owner, group and mode on path (only reported in check mode).

    Returns (changed, diff): the diff holds the attributes before and after.
    """
    diff = diff if diff is not None else {"before": {"path": path}, "after": {"path": path}}
    args = module.load_file_common_arguments(dict(entry, path=path))
    changed = module.set_fs_attributes_if_different(args, changed, diff, expand=False)
    return changed, diff


def exit_batch(module, key, results, diffs, **more):
    """Exits with one result per entry under key (and under each key of more), changed when any
    entry changed, and the diffs."""
    result = {"changed": any(r["changed"] for r in results + [r for rs in more.values() for r in rs]), key: results}
    result.update(more)
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)
