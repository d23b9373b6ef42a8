"""Shared fixture of the role preflight tests under tests/roles.

``role_preflight(role, variables)`` runs one role of the collection against the
controller itself with only its ``<role>_preflight`` tag (argument_specs
validation runs too), so nothing can be installed here, and returns
(returncode, stdout + stderr).
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
    - role: llmops.vllm.{role}
"""


@pytest.fixture(scope="session")
def fact_cache(tmp_path_factory):
    """One fact cache per test process: the first run gathers this machine's facts,
    the others read them (ansible.cfg gathers smart): about a second less each."""
    return str(tmp_path_factory.mktemp("facts"))


@pytest.fixture
def role_preflight(tmp_path, fact_cache):
    def run(role, variables):
        playbook = tmp_path / "preflight.yml"
        playbook.write_text(PLAYBOOK.format(role=role))
        extra = tmp_path / "vars.json"
        extra.write_text(json.dumps(dict({"ansible_python_interpreter": sys.executable}, **variables)))
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                   ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "collections"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_CACHE_PLUGIN="ansible.builtin.jsonfile", ANSIBLE_CACHE_PLUGIN_CONNECTION=fact_cache)
        bindir = os.path.dirname(sys.executable)
        proc = subprocess.run(
            [os.path.join(bindir, "ansible-playbook"), "-i", "localhost,", str(playbook),
             "--tags", "%s_preflight" % role, "-e", "@" + str(extra)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        return proc.returncode, proc.stdout + proc.stderr

    return run
