# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fs_batch: the option spec and checks shared by the directories and files modules."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.llmops.vllm.plugins.module_utils import fs_batch


def test_entry_spec_adds_the_attributes_to_the_module_options():
    spec = fs_batch.entry_spec(dest=dict(type="path", required=True))
    assert spec["type"] == "list" and spec["elements"] == "dict" and spec["required"] is True
    assert sorted(spec["options"]) == ["dest", "group", "mode", "owner"]
    assert "required" not in spec["options"]["mode"]


def test_entry_spec_can_require_a_mode_without_changing_the_shared_options():
    spec = fs_batch.entry_spec(required_mode=True, dest=dict(type="path"))
    assert spec["options"]["mode"] == {"type": "raw", "required": True}
    assert fs_batch.ATTRIBUTE_OPTIONS["mode"] == {"type": "raw"}


def test_relative_paths_are_named():
    assert fs_batch.absolute_path_errors(["/etc/a", "etc/b", "./c"]) == [
        "etc/b is not an absolute path", "./c is not an absolute path"]


class Module:
    def __init__(self):
        self.failed = None

    def fail_json(self, **kwargs):
        self.failed = kwargs
        raise SystemExit(1)


def test_fail_unchanged_fails_only_with_problems():
    module = Module()
    fs_batch.fail_unchanged(module, [])
    assert module.failed is None
    try:
        fs_batch.fail_unchanged(module, ["a is wrong", "b is wrong"])
    except SystemExit:
        pass
    assert module.failed == {"msg": "Nothing was changed: a is wrong; b is wrong"}
