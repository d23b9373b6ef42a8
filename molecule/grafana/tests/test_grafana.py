"""The grafana role on a systemd host, with the Grafana test double installed
from the local signed apt repository, checked through Grafana's HTTP API."""

import calendar
import json
import os
import re
import stat
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from vllm_checks import own_url, unit_property, wait_for  # noqa: E402

UNIT = "grafana-server.service"
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PLAYBOOK = os.path.join(PROJECT, "playbooks", "grafana.yml")
SA_NAME = "llmops-vllm"
TOKEN_TASK = "Token | Service account with its role, and a token within its lifetime"
DAY = 86400

# Requests run inside the host (no curl there); credentials travel in the
# environment, never in argv.
HTTP = r"""
import base64, json, os, sys, urllib.request, urllib.error
method, url, body = sys.argv[1], sys.argv[2], sys.argv[3]
req = urllib.request.Request(url, method=method, data=body.encode() if body else None)
req.add_header("Content-Type", "application/json")
if os.environ.get("GF_T_TOKEN"):
    req.add_header("Authorization", "Bearer " + os.environ["GF_T_TOKEN"])
elif os.environ.get("GF_T_USER"):
    cred = "%s:%s" % (os.environ["GF_T_USER"], os.environ.get("GF_T_PASS", ""))
    req.add_header("Authorization", "Basic " + base64.b64encode(cred.encode()).decode())
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        print(json.dumps({"status": r.status, "body": r.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": e.read().decode()}))
except OSError as e:
    print(json.dumps({"status": 0, "body": str(e)}))
"""


def api(host, path, token="", user="", password="", body=None, method=None):
    method = method or ("POST" if body is not None else "GET")
    payload = json.dumps(body) if body is not None else ""
    cmd = host.run("GF_T_TOKEN=%s GF_T_USER=%s GF_T_PASS=%s python3 -c %s %s %s %s",
                   token, user, password, HTTP, method, own_url(host, 3000, path), payload)
    assert cmd.rc == 0, cmd.stderr
    out = json.loads(cmd.stdout)
    try:
        return out["status"], json.loads(out["body"])
    except ValueError:
        return out["status"], out["body"]


@pytest.fixture(scope="module")
def admin_password():
    with open(os.path.join(EPHEMERAL, "grafana_admin_password"), encoding="utf-8") as fh:
        return fh.read().split()[0]


@pytest.fixture(scope="module")
def token_file(host):
    return os.path.join(EPHEMERAL, "grafana-%s.token" % host.backend.get_hostname())


@pytest.fixture(scope="module")
def token(token_file):
    with open(token_file, encoding="utf-8") as fh:
        return fh.read().strip()


def healthy(host):
    status, body = api(host, "/api/health")
    return status == 200 and body.get("database") == "ok"


def test_installed_from_signed_repository_pinned_and_held(host):
    pkg = host.package("grafana")
    assert pkg.is_installed and pkg.version == "12.2.0+double"
    assert "hold" in host.check_output("dpkg --get-selections grafana")
    source = host.file("/etc/apt/sources.list.d/grafana.list").content_string
    assert "[signed-by=/etc/apt/keyrings/grafana.asc]" in source and " stable main" in source
    assert host.file("/etc/apt/keyrings/grafana.asc").contains("BEGIN PGP PUBLIC KEY BLOCK")
    # apt verified the repository's signature (InRelease) when it installed the package
    policy = host.check_output("apt-cache policy grafana")
    assert "stable/main" in policy


def test_service_runs_hardened_as_grafana(host):
    assert host.service("grafana-server").is_enabled
    assert unit_property(host, UNIT, "ActiveState") == "active"
    assert unit_property(host, UNIT, "User") == "grafana"
    pid = unit_property(host, UNIT, "MainPID")
    assert pid != "0"
    assert host.check_output("ps -o user= -p %s", pid).strip() == "grafana"
    assert unit_property(host, UNIT, "ProtectSystem") == "strict"
    assert unit_property(host, UNIT, "NoNewPrivileges") == "yes"
    assert unit_property(host, UNIT, "PrivateTmp") == "yes"
    assert unit_property(host, UNIT, "ProtectHome") == "yes"
    assert unit_property(host, UNIT, "CapabilityBoundingSet") == ""
    assert "/var/lib/grafana" in unit_property(host, UNIT, "ReadWritePaths")


def test_config_files_hold_no_readable_secret(host, admin_password):
    ini = host.file("/etc/grafana/grafana.ini")
    assert ini.user == "root" and ini.group == "grafana" and ini.mode == 0o640
    assert admin_password not in ini.content_string
    assert "allow_sign_up = false" in ini.content_string
    pw = host.file("/etc/grafana/admin_password")
    assert pw.mode == 0o640 and pw.group == "grafana" and pw.user == "root"
    state = host.file("/var/lib/grafana/grafana-double.json")
    assert state.user == "grafana" and state.mode == 0o600


def test_health(host):
    status, body = api(host, "/api/health")
    assert status == 200 and body["database"] == "ok" and body["version"] == "12.2.0"


def test_admin_login(host, admin_password):
    status, user = api(host, "/api/user", user="admin", password=admin_password)
    assert status == 200 and user["login"] == "admin" and user["isGrafanaAdmin"] is True
    assert api(host, "/api/user", user="admin", password="admin")[0] == 401


def test_signup_and_anonymous_access_are_off(host):
    status, body = api(host, "/api/user/signup", body={"email": "someone@example.com"})
    assert status == 401 and body["message"] == "User signup is disabled"
    assert api(host, "/api/search")[0] == 401


def test_token_file_is_private_and_works(host, token_file, token):
    mode = stat.S_IMODE(os.stat(token_file).st_mode)
    assert mode == 0o600
    assert token.startswith("glsa_")
    status, me = api(host, "/api/user", token=token)
    assert status == 200 and me["login"] == "sa-1-llmops-vllm"
    assert api(host, "/api/search?limit=1", token=token)[0] == 200
    assert api(host, "/api/search", token=token[:-1] + "x")[0] == 401


def test_datasource(host, token):
    status, ds = api(host, "/api/datasources/uid/prometheus", token=token)
    assert status == 200, ds
    assert ds["name"] == "Prometheus" and ds["type"] == "prometheus" and ds["access"] == "proxy"
    assert ds["isDefault"] is True and ds["url"].endswith(":9090")
    assert ds["jsonData"] == {"httpMethod": "POST", "timeInterval": "5s"}


def test_dashboards_in_folder(host, token):
    status, folder = api(host, "/api/folders/vllm", token=token)
    assert status == 200 and folder["title"] == "vLLM"
    status, hits = api(host, "/api/search?type=dash-db&folderUIDs=vllm", token=token)
    assert status == 200
    uids = {h["uid"] for h in hits}
    assert {"vllm-fleet-overview", "vllm-instance-detail", "gpu-dcgm"} <= uids
    status, dash = api(host, "/api/dashboards/uid/vllm-fleet-overview", token=token)
    assert status == 200 and dash["meta"]["folderUid"] == "vllm" and dash["dashboard"]["panels"]


def test_state_survives_restart(host, token):
    before = api(host, "/api/dashboards/uid/vllm-fleet-overview", token=token)[1]["dashboard"]["version"]
    host.run_test("systemctl restart grafana-server")
    wait_for(lambda: healthy(host), 60, 1, "grafana-server to answer /api/health after a restart")
    status, dash = api(host, "/api/dashboards/uid/vllm-fleet-overview", token=token)
    assert status == 200 and dash["dashboard"]["version"] == before
    assert api(host, "/api/datasources/uid/prometheus", token=token)[0] == 200


def run_service_tasks(extra_args=()):
    """The role's service tasks (--tags grafana_run) against grafana-1."""
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY, PLAYBOOK,
           "--tags", "grafana_run"] + list(extra_args)
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="false", ANSIBLE_NOCOLOR="true")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=PROJECT, timeout=600)
    output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    assert proc.returncode == 0, output[-4000:]
    return output


def test_running_state_converges(host):
    """A server that is not on the files it was last seen ready on (as after a
    restart that failed in an earlier run) is restarted by the next run, once;
    the run after that changes nothing."""
    record = "/var/lib/llmops-vllm/applied/grafana-server.service"
    assert len(host.file(record).content_string.split()) == 7
    started = unit_property(host, UNIT, "ExecMainStartTimestampMonotonic")
    host.run_test("echo stale > %s" % record)
    output = run_service_tasks()
    task = output[output.index("Enable, start, restart once"):]
    assert task[:task.index("TASK [")].count("changed: [grafana-1]") == 1, task[:1000]
    assert unit_property(host, UNIT, "ExecMainStartTimestampMonotonic") != started
    assert "stale" not in host.file(record).content_string
    assert healthy(host)
    restarted = unit_property(host, UNIT, "ExecMainStartTimestampMonotonic")
    output = run_service_tasks()
    assert re.search(r"grafana-1\s+: ok=\d+\s+changed=0", output), output[-2000:]
    assert unit_property(host, UNIT, "ExecMainStartTimestampMonotonic") == restarted


# ---- The token: least role, expiry, rotation (these run last: they replace the token) ----------

def run_token_tasks(tmp_path, extra=None, check=False):
    """The role's token tasks (--tags grafana_token) against grafana-1, verbose and with --diff."""
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY, PLAYBOOK,
           "--tags", "grafana_token", "--diff", "-v"]
    if extra:
        path = tmp_path / "extra.json"
        path.write_text(json.dumps(extra))
        cmd += ["-e", "@" + str(path)]
    if check:
        cmd += ["--check"]
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="false", ANSIBLE_NOCOLOR="true")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=PROJECT, timeout=600)
    output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    assert proc.returncode == 0, output[-4000:]
    return output


def task_status(output, task):
    """ok / changed / skipping ... of the first host result after the task's header."""
    start = output.index("TASK [llmops.vllm.grafana : %s]" % task)
    found = re.compile(r"^(ok|changed|skipping|failed|fatal): \[grafana-1\]", re.M).search(output, start)
    return found.group(1)


def no_secret_in(output, *secrets):
    for secret in secrets:
        assert secret and secret not in output, "a token or password appears in the playbook output"


def read(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read().strip()


def sa_tokens(host, admin_password):
    status, found = api(host, "/api/serviceaccounts/search?query=" + SA_NAME, user="admin", password=admin_password)
    assert status == 200, found
    account = next(a for a in found["serviceAccounts"] if a["name"] == SA_NAME)
    status, tokens = api(host, "/api/serviceaccounts/%d/tokens" % account["id"], user="admin", password=admin_password)
    assert status == 200, tokens
    return account, tokens


def expires_in(token):
    return calendar.timegm(time.strptime(token["expiration"], "%Y-%m-%dT%H:%M:%SZ")) - time.time()


def test_token_has_the_least_role_and_an_expiry(host, admin_password):
    account, tokens = sa_tokens(host, admin_password)
    # grafana_provisioning_method is "modules": the token creates the datasource, which needs Admin
    assert account["role"] == "Admin"
    assert len(tokens) == 1, tokens
    token = tokens[0]
    # grafana_token_seconds_to_live: 30 days from the converge
    assert 29 * DAY < expires_in(token) <= 30 * DAY
    assert token["hasExpired"] is False and token["secondsUntilExpiration"] == 0


def test_second_run_keeps_the_token(host, tmp_path, token_file, token, admin_password):
    output = run_token_tasks(tmp_path)
    assert task_status(output, TOKEN_TASK) == "ok"
    assert read(token_file) == token
    assert api(host, "/api/search?limit=1", token=token)[0] == 200
    no_secret_in(output, token, admin_password)


def test_token_within_the_rotation_window_is_rotated(host, tmp_path, token_file, admin_password):
    old = read(token_file)
    _, (before,) = sa_tokens(host, admin_password)
    # a window longer than the 30-day lifetime puts the current token inside it
    window = {"grafana_token_rotate_before": 31 * DAY}
    preview = run_token_tasks(tmp_path, window, check=True)
    assert task_status(preview, TOKEN_TASK) == "changed"
    assert read(token_file) == old and sa_tokens(host, admin_password)[1] == [before]
    assert api(host, "/api/search?limit=1", token=old)[0] == 200
    no_secret_in(preview, old, admin_password)

    output = run_token_tasks(tmp_path, window)
    assert task_status(output, TOKEN_TASK) == "changed"
    new = read(token_file)
    assert new != old and new.startswith("glsa_")
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    status, body = api(host, "/api/search?limit=1", token=old)
    assert status == 401 and body["messageId"] == "api-key.invalid", body
    assert api(host, "/api/search?limit=1", token=new)[0] == 200
    assert api(host, "/api/datasources/uid/prometheus", token=new)[0] == 200
    _, tokens = sa_tokens(host, admin_password)
    assert len(tokens) == 1 and tokens[0]["id"] != before["id"] and 29 * DAY < expires_in(tokens[0])
    no_secret_in(output, old, new, admin_password)

    # back to the 7-day window: the new token is kept
    again = run_token_tasks(tmp_path)
    assert task_status(again, TOKEN_TASK) == "ok" and read(token_file) == new
