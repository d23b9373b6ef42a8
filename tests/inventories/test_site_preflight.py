"""site.yml's first play checks every host before any host changes.

Runs playbooks/preflight.yml (the play site.yml and rolling_upgrade.yml start
with) against an inventory of the controller itself under two names
(ansible_connection=local), so nothing can be changed here: the rules that
span roles fail with a message that names the variables, also under --tags
that select other tasks.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

HOST_VARS = {
    "ansible_connection": "local",
    "ansible_python_interpreter": sys.executable,
    "vllm_server_model": "Qwen/Qwen3-0.6B",
    "vllm_server_api_key": "k" * 24,
    "vllm_server_requirements_lock": os.path.join(ROOT, "locks", "vllm-0.32.0-py311-x86_64.txt"),
    "vllm_server_pip_no_deps": True,
}


def preflight(tmp_path, gpu_node_vars, *args, gw_vars=None, vllm_hosts=("gpu-node",)):
    inventory = {"all": {
        "hosts": {"gpu-node": dict(HOST_VARS, **gpu_node_vars), "gw": dict(HOST_VARS, **(gw_vars or {}))},
        "children": {"vllm": {"hosts": {h: {} for h in vllm_hosts}}, "gateway": {"hosts": {"gw": {}}}},
    }}
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps(inventory))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(path),
                           os.path.join(ROOT, "playbooks", "preflight.yml")] + list(args),
                          cwd=ROOT, env=env, capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr


def test_a_good_fleet_passes(tmp_path):
    rc, out = preflight(tmp_path, {"vllm_server_instances": [{"name": "main", "port": 8000}]})
    assert rc == 0, out[-3000:]
    assert "changed=0" in out


@pytest.mark.parametrize("tags", [[], ["--tags", "vllm_gateway_configure"]])
def test_a_vllm_instance_on_the_node_exporter_port_fails_before_any_change(tmp_path, tags):
    rc, out = preflight(tmp_path, {"vllm_server_instances": [{"name": "main", "port": 9100}]}, *tags)
    assert rc != 0
    assert "gpu-node: port 9100 is wanted by node_exporter and vllm_server" in out, out[-3000:]
    assert "vllm_server_instances, node_exporter_port" in out


def test_a_gateway_on_the_port_of_a_vllm_instance_of_its_host_fails(tmp_path):
    rc, out = preflight(tmp_path, {}, gw_vars={"vllm_gateway_port": 8000}, vllm_hosts=("gpu-node", "gw"))
    assert rc != 0
    assert "gw: port 8000 is wanted by vllm_gateway and vllm_server" in out, out[-3000:]
    # gpu-node is fine and is not reported
    assert "gpu-node: port" not in out
