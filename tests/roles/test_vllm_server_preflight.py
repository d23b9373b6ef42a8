"""Bad input to the vllm_server role fails in preflight, before any task that
changes a host, with a message that names what to fix.

Runs the role against the controller itself with only its preflight tag
(argument_specs validation runs too), so nothing can be installed here.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: true
  roles:
    - role: llmops.vllm.vllm_server
"""

GOOD = {
    "vllm_server_model": "Qwen/Qwen3-0.6B",
    "vllm_server_api_key": "k" * 24,
    "vllm_server_instances": [{"name": "main", "port": 8000}],
}


def run_preflight(tmp_path, overrides):
    playbook = tmp_path / "preflight.yml"
    playbook.write_text(PLAYBOOK)
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps(dict(GOOD, ansible_python_interpreter=sys.executable, **overrides)))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "collections"), ANSIBLE_NOCOLOR="1")
    bindir = os.path.dirname(sys.executable)
    proc = subprocess.run(
        [os.path.join(bindir, "ansible-playbook"), "-i", "localhost,", str(playbook),
         "--tags", "vllm_server_preflight", "-e", "@" + str(extra)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def test_good_input_passes(tmp_path):
    rc, out = run_preflight(tmp_path, {})
    assert rc == 0, out
    assert "changed=0" in out


@pytest.mark.parametrize("overrides, expected", [
    ({"vllm_server_model": ""}, "Set vllm_server_model"),
    ({"vllm_server_api_key": ""}, "vllm_server_api_key is empty"),
    ({"vllm_server_api_key": "short"}, "shorter than 16 characters"),
    ({"vllm_server_instances": [{"name": "main", "port": 70000}]}, "port from 1 to 65535"),
    ({"vllm_server_instances": [{"name": "Main!", "port": 8000}]}, "instance name 'Main!' must match"),
    ({"vllm_server_instances": [{"name": "main", "port": 8000, "gpu_memory_utilization": 0}]}, "gpu_memory_utilization must be in (0, 1]"),
    ({"vllm_server_venvs_keep": 0}, "vllm_server_venvs_keep >= 1"),
    ({"vllm_server_env": {"bad-key": "x"}}, "environment variable name 'bad-key'"),
    ({"vllm_server_served_model_name": "x\nLD_PRELOAD=/tmp/evil.so"}, "without whitespace"),
    ({"vllm_server_env": {"A": "x\nLD_PRELOAD=/tmp/evil.so"}}, "line break"),
    ({"vllm_server_instances": [{"name": "main", "port": 8000, "gpus": 2}]}, "gpus"),
    ({"vllm_server_instances": [{"name": "a", "port": 8000}, {"name": "b", "port": 8000}]}, "its own port"),
    ({"vllm_server_instances": []}, "vllm_server_instances"),
    ({"vllm_server_gpu_memory_utilization": 1.5}, "vllm_server_gpu_memory_utilization must be in"),
    ({"vllm_server_extra_args": ["--max-num-seqs 8"]}, "without whitespace"),
    ({"vllm_server_installer": "conda"}, "vllm_server_installer"),
    ({"vllm_server_model_source": "controller", "vllm_server_model": "/nonexistent/model"}, "is not a directory on the controller"),
    ({"vllm_server_requirements_lock": "/nonexistent.lock"}, "not a file on the controller"),
])
def test_bad_input_fails_in_preflight(tmp_path, overrides, expected):
    rc, out = run_preflight(tmp_path, overrides)
    assert rc != 0, out
    assert expected in out, out
    assert "changed=0" in out or "changed=" not in out
