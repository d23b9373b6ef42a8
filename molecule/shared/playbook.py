"""Runs a playbook of the project against a scenario's hosts, from the verifier.

One place for what every such run needs: the project's ansible.cfg, the
Molecule variables the inventory and group_vars read (the project and ephemeral
directories), no colour in the output it returns, and the ansible-playbook of
the interpreter that runs the tests.
"""

import os
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def ansible_playbook(path, *args, inventories=None, timeout=3600):
    """ansible-playbook <ROOT/path> with the scenario's inventory (and further
    inventory sources) and ``args``; returns (rc, stdout + stderr, seconds)."""
    inventories = inventories or [os.environ["MOLECULE_INVENTORY_FILE"]]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), MOLECULE_PROJECT_DIRECTORY=ROOT,
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook")]
    for inventory in inventories:
        cmd += ["-i", inventory]
    cmd += [os.path.join(ROOT, path)] + list(args)
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start
