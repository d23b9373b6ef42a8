# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""vllm_instances: which instances of a host restart, and whether the host serves."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.llmops.vllm.plugins.modules import vllm_instances


class Exit(Exception):
    pass


def run(args, is_active_out, rc=0):
    """Runs main() with systemctl stubbed; returns (result, the systemctl command)."""
    calls = []

    def run_command(self, cmd, **kwargs):
        calls.append(cmd)
        return rc, is_active_out, ""

    def exit_json(self, **kwargs):
        raise Exit(kwargs)

    def fail_json(self, **kwargs):
        kwargs["failed"] = True
        raise Exit(kwargs)

    with patch_module_args(args), \
            mock.patch.object(basic.AnsibleModule, "run_command", run_command), \
            mock.patch.object(basic.AnsibleModule, "get_bin_path", lambda self, *a, **k: "/bin/systemctl"), \
            mock.patch.object(basic.AnsibleModule, "exit_json", exit_json), \
            mock.patch.object(basic.AnsibleModule, "fail_json", fail_json):
        with pytest.raises(Exit) as done:
            vllm_instances.main()
    return done.value.args[0], calls


@pytest.fixture
def state_dir(tmp_path):
    (tmp_path / "a").write_text(json.dumps({"fingerprint": "fa", "port": 8000, "unit": "vllm@a.service"}))
    (tmp_path / "b").write_text("fb-legacy")  # bare fingerprint, as older releases wrote it
    return tmp_path


def test_unchanged_active_instances_are_left_alone(state_dir):
    result, calls = run({"state_dir": str(state_dir), "instances": {"a": "fa", "b": "fb-legacy"}}, "active\nactive\n")
    assert calls == [["/bin/systemctl", "is-active", "vllm@a.service", "vllm@b.service"]]
    assert result["restart"] == [] and result["serving"] is True and result["changed"] is False
    assert [i["reason"] for i in result["instances"]] == ["unchanged", "unchanged"]
    assert result["records"]["a"]["port"] == 8000


def test_changed_stopped_and_new_instances_restart(state_dir):
    result, _ = run({"state_dir": str(state_dir), "instances": {"a": "fa2", "b": "fb-legacy", "c": "fc"}}, "active\nfailed\ninactive\n", rc=3)
    assert result["restart"] == ["a", "b", "c"]
    assert [i["reason"] for i in result["instances"]] == [
        "configuration changed", "unit is failed", "never came up on a recorded configuration"]
    assert result["instances"][2]["unit"] == "vllm@c.service"
    assert result["serving"] is True


def test_first_deploy_is_not_serving(tmp_path):
    result, _ = run({"state_dir": str(tmp_path / "missing"), "instances": {"main": "f"}},
                    "inactive\n", rc=3)
    assert result["restart"] == ["main"] and result["serving"] is False


def test_active_without_record_is_not_serving(tmp_path):
    result, _ = run({"state_dir": str(tmp_path), "instances": {"main": "f"}}, "active\n")
    assert result["serving"] is False and result["restart"] == ["main"]


def test_force_restarts_everything(state_dir):
    result, _ = run({"state_dir": str(state_dir), "force": True,
                     "instances": {"a": "fa"}}, "active\n")
    assert result["restart"] == ["a"] and result["instances"][0]["reason"].startswith("forced")


def test_systemctl_answer_of_the_wrong_length_fails(state_dir):
    result, _ = run({"state_dir": str(state_dir), "instances": {"a": "fa"}}, "", rc=1)
    assert result["failed"] and "0 lines for 1 units" in result["msg"]
