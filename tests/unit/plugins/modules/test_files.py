# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""files: several files from content, validated all before any is replaced."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import os
import pwd
import stat
import sys

from ansible_collections.llmops.vllm.plugins.modules import files
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.utils import (
    AnsibleExitJson, AnsibleFailJson, run_module)

OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name
# A real check command: fails when the file holds the word "bad".
CHECK = "%s -c \"import sys; sys.exit('bad' in open(sys.argv[1]).read())\" %%s" % sys.executable


def mode_of(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def run(entries, check_mode=False, diff=False):
    return run_module(files.main, {"files": entries, "_ansible_check_mode": check_mode, "_ansible_diff": diff})


def leftovers(directory):
    return [p.name for p in directory.iterdir() if p.name.endswith(".llmops")]


def test_writes_new_files_with_their_attributes(tmp_path):
    result = run([{"dest": str(tmp_path / "a.yml"), "content": "a: 1\n", "owner": OWNER, "group": GROUP,
                   "mode": "0640", "validate": CHECK},
                  {"dest": str(tmp_path / "secret"), "content": "k=v\n", "mode": "0600"}], diff=True)
    assert isinstance(result, AnsibleExitJson), result.result
    assert result.result["changed"] is True
    assert [f["content_changed"] for f in result.result["files"]] == [True, True]
    assert (tmp_path / "a.yml").read_text() == "a: 1\n"
    assert mode_of(tmp_path / "a.yml") == 0o640 and mode_of(tmp_path / "secret") == 0o600
    assert [d["after_header"] for d in result.result["diff"]] == [str(tmp_path / "a.yml"), str(tmp_path / "secret")]
    assert result.result["diff"][0]["before"] == "" and result.result["diff"][0]["after"] == "a: 1\n"
    assert leftovers(tmp_path) == []


def test_same_content_and_attributes_change_nothing(tmp_path):
    entries = [{"dest": str(tmp_path / "a"), "content": "x\n", "mode": "0644", "validate": CHECK}]
    assert run(entries).result["changed"] is True
    before = os.stat(str(tmp_path / "a")).st_ino
    again = run(entries, diff=True)
    assert again.result["changed"] is False and again.result["diff"] == []
    # Not rewritten: still the same inode.
    assert os.stat(str(tmp_path / "a")).st_ino == before


def test_a_changed_mode_alone_is_fixed_and_reported(tmp_path):
    (tmp_path / "a").write_text("x\n")
    os.chmod(str(tmp_path / "a"), 0o644)
    result = run([{"dest": str(tmp_path / "a"), "content": "x\n", "mode": "0600"}], diff=True)
    assert result.result["changed"] is True
    assert result.result["files"][0]["content_changed"] is False
    assert mode_of(tmp_path / "a") == 0o600
    (diff,) = result.result["diff"]
    assert diff["before"]["mode"] == "0644" and diff["after"]["mode"] == "0600"


def test_a_failed_check_replaces_nothing(tmp_path):
    (tmp_path / "a").write_text("old a\n")
    (tmp_path / "b").write_text("old b\n")
    result = run([{"dest": str(tmp_path / "a"), "content": "new a\n", "mode": "0644", "validate": CHECK},
                  {"dest": str(tmp_path / "b"), "content": "bad b\n", "mode": "0644", "validate": CHECK}])
    assert isinstance(result, AnsibleFailJson)
    assert "Nothing was changed" in result.result["msg"]
    assert "%s failed its check" % (tmp_path / "b") in result.result["msg"]
    # The first file passed its check but was not written either.
    assert (tmp_path / "a").read_text() == "old a\n" and (tmp_path / "b").read_text() == "old b\n"
    assert leftovers(tmp_path) == []


def test_check_mode_reports_without_writing(tmp_path):
    (tmp_path / "a").write_text("old\n")
    result = run([{"dest": str(tmp_path / "a"), "content": "new\n", "mode": "0644", "validate": CHECK},
                  {"dest": str(tmp_path / "b"), "content": "b\n", "mode": "0644"}], check_mode=True, diff=True)
    assert result.result["changed"] is True
    assert [f["changed"] for f in result.result["files"]] == [True, True]
    assert (tmp_path / "a").read_text() == "old\n" and not (tmp_path / "b").exists()
    assert result.result["diff"][0]["before"] == "old\n" and result.result["diff"][0]["after"] == "new\n"


def test_a_missing_directory_fails_before_anything_is_written(tmp_path):
    result = run([{"dest": str(tmp_path / "a"), "content": "a\n", "mode": "0644"},
                  {"dest": str(tmp_path / "missing" / "b"), "content": "b\n", "mode": "0644"}])
    assert isinstance(result, AnsibleFailJson)
    assert "the directory of %s does not exist" % (tmp_path / "missing" / "b") in result.result["msg"]
    assert not (tmp_path / "a").exists()


def test_an_unknown_owner_fails_and_leaves_no_staged_file(tmp_path):
    result = run([{"dest": str(tmp_path / "a"), "content": "a\n", "mode": "0644", "owner": "no-such-user-llmops"}])
    assert isinstance(result, AnsibleFailJson)
    assert not (tmp_path / "a").exists()
    assert leftovers(tmp_path) == []


def test_a_check_without_placeholder_fails(tmp_path):
    result = run([{"dest": str(tmp_path / "a"), "content": "a\n", "mode": "0644", "validate": "true"}])
    assert isinstance(result, AnsibleFailJson)
    assert "must contain %s" in result.result["msg"]
    assert not (tmp_path / "a").exists() and leftovers(tmp_path) == []


def test_absent_files_are_removed_after_the_new_ones_are_written(tmp_path):
    (tmp_path / "web.yml").write_text("secret: s3cret\n")
    result = run_module(files.main, {"files": [{"dest": str(tmp_path / "a"), "content": "x\n", "mode": "0644"}],
                                     "absent": [str(tmp_path / "web.yml"), str(tmp_path / "never-there")],
                                     "_ansible_diff": True})
    assert isinstance(result, AnsibleExitJson), result.result
    assert result.result["changed"] is True
    assert result.result["absent"] == [{"path": str(tmp_path / "web.yml"), "changed": True},
                                       {"path": str(tmp_path / "never-there"), "changed": False}]
    assert not (tmp_path / "web.yml").exists() and (tmp_path / "a").read_text() == "x\n"
    # The diff names the removed file, never its content.
    assert {"path": str(tmp_path / "web.yml"), "state": "absent"} in [d.get("after") for d in result.result["diff"]]
    assert "s3cret" not in repr(result.result)


def test_nothing_to_remove_changes_nothing(tmp_path):
    result = run_module(files.main, {"absent": [str(tmp_path / "gone")]})
    assert isinstance(result, AnsibleExitJson), result.result
    assert result.result["changed"] is False and result.result["files"] == []


def test_check_mode_reports_a_removal_without_removing(tmp_path):
    (tmp_path / "old").write_text("x")
    result = run_module(files.main, {"absent": [str(tmp_path / "old")], "_ansible_check_mode": True})
    assert result.result["changed"] is True
    assert (tmp_path / "old").exists()


def test_a_bad_path_to_remove_fails_before_anything_is_written(tmp_path):
    (tmp_path / "adir").mkdir()
    for absent in ([str(tmp_path / "adir")], ["relative/path"], [str(tmp_path / "a")]):
        result = run_module(files.main, {"files": [{"dest": str(tmp_path / "a"), "content": "x\n", "mode": "0644"}],
                                         "absent": absent})
        assert isinstance(result, AnsibleFailJson), result.result
        assert result.result["msg"].startswith("Nothing was changed: ")
        assert not (tmp_path / "a").exists()
