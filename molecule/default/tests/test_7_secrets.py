"""Secrets scan of the whole stack, after the converge, the load test, the
day-2 rollouts and the Prometheus runs before it: the vLLM API key, the Grafana
admin password and the Grafana token appear in no process's command line, in
no process's environment except the service that needs it, in no journal and in
no file others can read; and Ansible's -vvv output of runs that handle them
holds none of them."""

import json
import os
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
HOSTS = ["stack-vllm-1", "stack-vllm-2", "stack-mon-1"]
API_KEY = "test-only-key-9f3c1e7a2b"  # molecule/shared/group_vars/vllm.yml

# Which systemd units may hold a secret in their processes' environment: the
# vLLM servers get the API key from /etc/vllm/secrets.env; nothing else may.
ALLOWED_IN_ENVIRONMENT = {"vLLM API key": ("vllm@",)}

# Reads every process's command line, environment and cgroup (the unit it runs in).
PROCESS_SCAN = r"""
import json, os
found = []
for pid in os.listdir('/proc'):
    if not pid.isdigit() or int(pid) == os.getpid():
        continue
    try:
        with open('/proc/%s/cmdline' % pid, 'rb') as f:
            cmdline = f.read().replace(b'\0', b' ').decode('utf-8', 'replace')
        with open('/proc/%s/environ' % pid, 'rb') as f:
            environ = f.read().replace(b'\0', b'\n').decode('utf-8', 'replace')
        with open('/proc/%s/cgroup' % pid) as f:
            cgroup = f.read().strip()
    except OSError:
        continue
    found.append({'pid': int(pid), 'cmdline': cmdline, 'environ': environ, 'cgroup': cgroup})
print(json.dumps(found))
"""

# Regular files readable by others, outside the virtualenvs and caches (large,
# and written by package installers, not by the roles).
READABLE_FILES = ("find /etc /var /tmp /run /root /home /srv /opt /usr/local -xdev "
                  "\\( -path /opt/vllm/venvs -o -path /var/cache -o -path /var/lib/vllm/models "
                  "-o -path /var/lib/docker \\) -prune -o -type f -perm -o=r -size -20M -print0 2>/dev/null")


def read_secret(name):
    with open(os.path.join(EPHEMERAL, name)) as f:
        return f.read().strip()


@pytest.fixture(scope="module")
def secrets():
    found = {"vLLM API key": API_KEY,
             "Grafana admin password": read_secret("grafana_admin_password"),
             "Grafana token": read_secret("grafana-stack-mon-1.token")}
    assert all(len(v) >= 16 for v in found.values()), "a secret too short to scan for"
    return found


def docker(host, *cmd, stdin=None):
    return subprocess.run(["docker", "exec", "-i", host] + list(cmd), input=stdin, capture_output=True,
                          text=True, check=True, timeout=600).stdout


def leaks(text, secrets):
    return sorted(name for name, value in secrets.items() if value in text)


@pytest.mark.parametrize("host", HOSTS)
def test_no_secret_on_a_command_line_or_in_a_foreign_environment(host, secrets):
    processes = json.loads(docker(host, "python3", "-c", PROCESS_SCAN))
    assert len(processes) > 5
    problems = []
    for proc in processes:
        for name in leaks(proc["cmdline"], secrets):
            problems.append("%s on the command line of pid %d (%s)" % (name, proc["pid"], proc["cmdline"][:80]))
        for name in leaks(proc["environ"], secrets):
            if not any(unit in proc["cgroup"] for unit in ALLOWED_IN_ENVIRONMENT.get(name, ())):
                problems.append("%s in the environment of pid %d (%s, %s)"
                                % (name, proc["pid"], proc["cmdline"][:80], proc["cgroup"]))
    assert problems == []
    if host.startswith("stack-vllm"):
        # The scan sees the key where it must be: the check above can find it.
        holders = [p for p in processes if API_KEY in p["environ"]]
        assert holders and all("vllm@" in p["cgroup"] for p in holders)


@pytest.mark.parametrize("host", HOSTS)
def test_no_secret_in_the_journal(host, secrets):
    journal = docker(host, "journalctl", "--no-pager", "-q", "-o", "cat")
    assert journal.strip(), "empty journal on %s" % host
    assert leaks(journal, secrets) == []


@pytest.mark.parametrize("host", HOSTS)
def test_no_secret_in_a_file_others_can_read(host, secrets):
    patterns = "\n".join(secrets.values()) + "\n"
    docker(host, "sh", "-c", "cat > /root/.secret-patterns && chmod 600 /root/.secret-patterns", stdin=patterns)
    try:
        out = docker(host, "sh", "-c", READABLE_FILES + " | xargs -0 -r grep -lF -f /root/.secret-patterns || true")
    finally:
        docker(host, "rm", "-f", "/root/.secret-patterns")
    assert out.split() == []


def test_controller_copies_are_private():
    for name in ("grafana_admin_password", "grafana-stack-mon-1.token"):
        mode = os.stat(os.path.join(EPHEMERAL, name)).st_mode & 0o777
        assert mode & 0o077 == 0, "%s has mode %o" % (name, mode)


@pytest.mark.parametrize("run", [
    # The load test handles the API key and the Grafana token (its annotations).
    ["playbooks/loadtest.yml", "-e", "loadtest_num_prompts=3", "-e", "loadtest_dataset=random"],
    # Grafana's provisioning handles the admin password and the token.
    ["playbooks/grafana.yml", "--tags", "grafana_provision"],
], ids=["loadtest", "grafana"])
def test_verbose_output_holds_no_secret(run, secrets):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), MOLECULE_PROJECT_DIRECTORY=ROOT,
               ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(["ansible-playbook", "-vvv", "-i", INVENTORY, os.path.join(ROOT, run[0])] + run[1:],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    # -vvv prints each module's arguments and results: the secrets were handled,
    # and only as Ansible's censored placeholders.
    assert "NOT_LOGGING_PARAMETER" in proc.stdout or "censored" in proc.stdout
    assert leaks(proc.stdout + proc.stderr, secrets) == []
