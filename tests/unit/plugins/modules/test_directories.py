# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""directories: several directories with owner, group and mode in one call."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import os
import pwd
import stat

import pytest

from ansible_collections.llmops.vllm.plugins.modules import directories
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.utils import (
    AnsibleExitJson, AnsibleFailJson, run_module)

OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


def mode_of(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def run(paths, check_mode=False, diff=False):
    args = {"paths": paths}
    if check_mode:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    return run_module(directories.main, args)


def test_creates_missing_directories_and_parents(tmp_path):
    leaf = tmp_path / "a" / "b"
    result = run([{"path": str(leaf), "owner": OWNER, "group": GROUP, "mode": "0750"},
                  {"path": str(tmp_path / "c"), "mode": "0700"}], diff=True)
    assert isinstance(result, AnsibleExitJson)
    assert result.result["changed"] is True
    assert [(p["created"], p["changed"]) for p in result.result["paths"]] == [(True, True), (True, True)]
    # The parent made for the entry gets that entry's mode, as ansible.builtin.file does.
    assert mode_of(tmp_path / "a") == 0o750 and mode_of(leaf) == 0o750 and mode_of(tmp_path / "c") == 0o700
    assert [d["after"]["path"] for d in result.result["diff"]] == [str(tmp_path / "a"), str(leaf), str(tmp_path / "c")]
    assert all(d["before"]["state"] == "absent" for d in result.result["diff"])


def test_second_run_changes_nothing(tmp_path):
    paths = [{"path": str(tmp_path / "x"), "owner": OWNER, "group": GROUP, "mode": "0755"},
             {"path": str(tmp_path / "x" / "y"), "mode": "0700"}]
    assert run(paths).result["changed"] is True
    again = run(paths, diff=True)
    assert again.result["changed"] is False
    assert again.result["diff"] == []
    assert [p["changed"] for p in again.result["paths"]] == [False, False]


def test_changes_the_mode_of_an_existing_directory_with_a_diff(tmp_path):
    target = tmp_path / "d"
    target.mkdir(mode=0o755)
    os.chmod(str(target), 0o755)
    result = run([{"path": str(target), "mode": "0700"}], diff=True)
    assert result.result["changed"] is True
    assert result.result["paths"] == [{"path": str(target), "created": False, "changed": True}]
    assert mode_of(target) == 0o700
    (diff,) = result.result["diff"]
    assert diff["before"]["mode"] == "0755" and diff["after"]["mode"] == "0700"


def test_check_mode_reports_without_changing(tmp_path):
    existing = tmp_path / "e"
    existing.mkdir()
    os.chmod(str(existing), 0o755)
    result = run([{"path": str(tmp_path / "new" / "leaf"), "mode": "0750"},
                  {"path": str(existing), "mode": "0700"}], check_mode=True, diff=True)
    assert result.result["changed"] is True
    assert [(p["created"], p["changed"]) for p in result.result["paths"]] == [(True, True), (False, True)]
    assert not (tmp_path / "new").exists()
    assert mode_of(existing) == 0o755
    assert len(result.result["diff"]) == 3


def test_unmanaged_attributes_are_left_alone(tmp_path):
    target = tmp_path / "keep"
    target.mkdir()
    os.chmod(str(target), 0o711)
    result = run([{"path": str(target)}])
    assert result.result["changed"] is False
    assert mode_of(target) == 0o711


@pytest.mark.parametrize("blocker", ["file", "parent-file"])
def test_a_file_in_the_way_fails_before_anything_changes(tmp_path, blocker):
    (tmp_path / "f").write_text("not a directory")
    bad = tmp_path / "f" if blocker == "file" else tmp_path / "f" / "below"
    result = run([{"path": str(tmp_path / "made-first"), "mode": "0755"}, {"path": str(bad), "mode": "0755"}])
    assert isinstance(result, AnsibleFailJson)
    assert "Nothing was changed" in result.result["msg"]
    assert "%s exists and is not a directory" % (tmp_path / "f") in result.result["msg"]
    assert not (tmp_path / "made-first").exists()


def test_a_relative_path_fails(tmp_path):
    result = run([{"path": "relative/dir"}])
    assert isinstance(result, AnsibleFailJson)
    assert "relative/dir is not an absolute path" in result.result["msg"]
