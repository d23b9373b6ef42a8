"""ExecStart= command lines quoted as systemd reads them (plugins/filter/systemd.py)."""

import shutil
import subprocess

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.vllm.plugins.filter.systemd import systemd_exec_args


def test_plain_arguments_are_written_as_they_are():
    # Units of existing inputs do not change.
    args = ["/usr/bin/prometheus", "--config.file=/etc/prometheus/prometheus.yml", "--web.listen-address=0.0.0.0:9090"]
    assert systemd_exec_args(args) == " ".join(args)


@pytest.mark.parametrize("arg, written", [
    ("--web.external-url=http://h/a%20b", "--web.external-url=http://h/a%%20b"),
    ("--x=$HOME", "--x=$$HOME"),
    ("--x=a b", '"--x=a b"'),
    ('--x=a"b', '"--x=a\\"b"'),
    ("--x=a\\b", '"--x=a\\\\b"'),
    ("--x=a\nExecStartPre=/bin/sh", '"--x=a\\nExecStartPre=/bin/sh"'),
    ("--x=a\x01", '"--x=a\\x01"'),
    (";", '";"'),
    ("", '""'),
    (9090, "9090"),
])
def test_special_characters_are_quoted_or_escaped(arg, written):
    assert systemd_exec_args(["/bin/x", arg]) == "/bin/x " + written


def test_a_newline_cannot_start_a_directive():
    line = "ExecStart=" + systemd_exec_args(["/bin/x", "--a=b\n[Service]\nUser=root"])
    assert "\n" not in line


@pytest.mark.parametrize("bad", ["--a=b", None, {"a": 1}, ["/bin/x", None], ["/bin/x", "a\x00b"]])
def test_what_is_not_a_list_of_strings_fails(bad):
    with pytest.raises(AnsibleFilterError):
        systemd_exec_args(bad)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_parses_the_quoted_line_without_complaint(tmp_path):
    args = ["/bin/echo", "plain", "a b", 'q"uote', "back\\slash", "pct%i", "dollar$HOME", "semi;colon", "tab\tx", ""]
    unit = tmp_path / "argtest.service"
    unit.write_text("[Service]\nExecStart=%s\n" % systemd_exec_args(args))
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True)
    assert str(unit) not in out.stdout + out.stderr, out.stdout + out.stderr
