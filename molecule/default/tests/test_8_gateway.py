"""The gateway's security (roles/vllm_gateway, README "Security") against the real
stack: only allow-listed paths reach vLLM, TLS on 8443 with a certificate of the
test CA the converge made (plain HTTP stays on 8080), and gateway-side API keys
(host_vars/stack-mon-1.yml) next to vLLM's own key, stored as sha256 only and
revocable without restarting vLLM.

Read-only, except test_revoked_key_gets_401_without_restarting_vllm, which runs
playbooks/gateway.yml with one key removed and then again as configured.
"""

import hashlib
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys

import pytest
import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from loadgen import container_ip  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
DAY2_INVENTORY = os.path.join(EPHEMERAL, "day2-inventory.yml")  # test_4_rollout.py's edits
CA = os.path.join(EPHEMERAL, "gateway-tls", "ca.crt")  # converge.yml
GATEWAY = "stack-mon-1"
VLLM_HOSTS = ["stack-vllm-1", "stack-vllm-2"]
VLLM_KEY = "test-only-key-9f3c1e7a2b"  # molecule/shared/group_vars/vllm.yml
TEAM_A = "gateway-test-key-team-a-5d1f9b03"  # host_vars/stack-mon-1.yml (plain)
TEAM_B = "gateway-test-key-team-b-8e2c47a1"  # host_vars/stack-mon-1.yml (as its sha256)
COMPLETION = {"model": "tiny", "prompt": "Hello", "max_tokens": 4}
# vLLM serves these without its API key (its key covers /v1, /v2, /inference and
# /cohere only); /metrics is for Prometheus. The gateway must answer them itself.
REFUSED = ["/invocations", "/pooling", "/classify", "/score", "/rerank", "/tokenize", "/detokenize",
           "/pause", "/resume", "/abort_requests", "/update_weights", "/metrics",
           "/v2/rerank", "/v1/../pause", "/v1/%2e%2e/pause", "//pause", "/health/../pause"]
TRANSPORTS = ["http", "https"]


def host(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


@pytest.fixture(scope="module")
def gateway():
    return host(GATEWAY)


@pytest.fixture(scope="module")
def gateway_ip():
    return container_ip(GATEWAY)


def tls_context():
    ctx = ssl.create_default_context(cafile=CA)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def request(ip, transport, path, key=None, body=None, method=None, ctx=None):
    """(status, body text) of one request from the controller. Over https the
    certificate is checked against the test CA for the name stack-mon-1."""
    if transport == "https":
        ctx = ctx or tls_context()

        class Connection(http.client.HTTPSConnection):
            def connect(self):
                self.sock = ctx.wrap_socket(socket.create_connection((ip, 8443), 30), server_hostname=GATEWAY)

        conn = Connection(ip, 8443, timeout=60, context=ctx)
    else:
        conn = http.client.HTTPConnection(ip, 8080, timeout=60)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + key
    method = method or ("POST" if body is not None else "GET")
    try:
        # The path goes out exactly as written (no client-side normalization).
        conn.putrequest(method, path, skip_accept_encoding=True)
        data = json.dumps(body).encode() if body is not None else b""
        for name, value in dict(headers, **{"Content-Length": str(len(data))}).items():
            conn.putheader(name, value)
        conn.endheaders(data)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


def backend_sessions(gateway):
    """Sessions HAProxy has sent to the vLLM backend (health checks not counted)."""
    script = ("import socket,time;s=socket.socket(socket.AF_UNIX);s.connect('/run/haproxy/admin.sock');"
              "s.sendall(b'show stat\\n');time.sleep(0.3);print(s.recv(1<<20).decode())")
    out = gateway.check_output("python3 -c %s", script)
    header = out.splitlines()[0].lstrip("# ").split(",")
    rows = [dict(zip(header, line.split(","))) for line in out.splitlines()[1:] if line]
    return int(next(r for r in rows if r["pxname"] == "vllm" and r["svname"] == "BACKEND")["stot"])


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("key", [VLLM_KEY, TEAM_A, TEAM_B], ids=["vllm-key", "gateway-key-plain", "gateway-key-sha256"])
def test_completion_with_a_key(gateway_ip, transport, key):
    status, text = request(gateway_ip, transport, "/v1/completions", key=key, body=COMPLETION)
    assert status == 200, text
    assert json.loads(text)["choices"][0]["text"] is not None


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("key", [None, "not-a-key-of-this-gateway-0000"], ids=["no-key", "wrong-key"])
def test_without_a_valid_key_the_gateway_answers_401(gateway, gateway_ip, transport, key):
    before = backend_sessions(gateway)
    status, text = request(gateway_ip, transport, "/v1/completions", key=key, body=COMPLETION)
    assert status == 401, text
    assert "Missing or invalid API key" in text  # HAProxy's answer, not vLLM's
    assert backend_sessions(gateway) == before


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_health_needs_no_key(gateway_ip, transport):
    assert request(gateway_ip, transport, "/health")[0] == 200


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_paths_outside_the_allow_list_never_reach_vllm(gateway, gateway_ip, transport):
    before = backend_sessions(gateway)
    answers = {}
    for path in REFUSED:
        for method in ("GET", "POST"):
            answers[(method, path)] = request(gateway_ip, transport, path, key=VLLM_KEY,
                                              body=COMPLETION if method == "POST" else None, method=method)[0]
    assert {k: v for k, v in answers.items() if v != 403} == {}
    assert backend_sessions(gateway) == before, "a refused request reached vLLM"


def test_tls_certificate_is_the_test_cas(gateway_ip):
    with pytest.raises(ssl.SSLCertVerificationError):
        request(gateway_ip, "https", "/health", ctx=ssl.create_default_context())
    ctx = tls_context()
    with ctx.wrap_socket(socket.create_connection((gateway_ip, 8443), 10), server_hostname=GATEWAY) as sock:
        assert sock.version() in ("TLSv1.2", "TLSv1.3")
        names = [v for k, v in sock.getpeercert()["subjectAltName"] if k == "DNS"]
    assert GATEWAY in names


def test_openai_client_over_tls_with_a_gateway_key():
    """vLLM's OpenAI client (its venv on a vLLM host) through https://stack-mon-1:8443/v1,
    checking the certificate against the test CA."""
    client = host(VLLM_HOSTS[0])
    python = "/opt/vllm/current/bin/python"
    if client.run("%s -c 'import openai'", python).rc != 0:
        pytest.skip("the OpenAI client is not installed in %s's vLLM venv" % VLLM_HOSTS[0])
    script = (
        "import os, ssl, openai\n"
        "ctx = ssl.create_default_context(cadata=os.environ['GW_CA'])\n"
        "c = openai.OpenAI(base_url='https://%s:8443/v1', api_key=os.environ['GW_KEY'],"
        " http_client=openai.DefaultHttpxClient(verify=ctx), max_retries=0)\n"
        "r = c.completions.create(model='tiny', prompt='Hello', max_tokens=4)\n"
        "print(len(r.choices), r.choices[0].text is not None)\n") % GATEWAY
    with open(CA) as f:
        ca = f.read()
    out = client.run("GW_KEY=%s GW_CA=%s %s -c %s", TEAM_A, ca, python, script)
    assert out.rc == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "1 True", out.stdout


def test_keys_are_stored_hashed_and_files_are_private(gateway):
    keys_map = gateway.file("/etc/haproxy/vllm-gateway-keys.map")
    entries = dict(line.split() for line in keys_map.content_string.splitlines() if line and not line.startswith("#"))
    assert entries == {hashlib.sha256(TEAM_A.encode()).hexdigest(): "team-a",
                       hashlib.sha256(TEAM_B.encode()).hexdigest(): "team-b"}
    for path in ("/etc/haproxy/vllm-gateway-keys.map", "/etc/haproxy/vllm-gateway-backend-key.map",
                 "/etc/haproxy/certs/vllm-gateway.pem", "/etc/haproxy/haproxy.cfg"):
        f = gateway.file(path)
        assert (f.user, f.group, f.mode) == ("root", "haproxy", 0o640), path
    # The plain gateway keys are nowhere on the host's HAProxy files; vLLM's key
    # only in its own file; none of the keys in HAProxy's journal.
    etc = gateway.check_output("cat /etc/haproxy/haproxy.cfg /etc/haproxy/vllm-gateway-keys.map")
    for secret in (TEAM_A, TEAM_B, VLLM_KEY):
        assert secret not in etc
    assert VLLM_KEY in gateway.file("/etc/haproxy/vllm-gateway-backend-key.map").content_string
    logs = gateway.check_output("journalctl -q --no-pager -o cat -u haproxy.service; "
                                "journalctl -q --no-pager -o cat SYSLOG_IDENTIFIER=haproxy")
    for secret in (TEAM_A, TEAM_B, VLLM_KEY):
        assert secret not in logs


def vllm_starts():
    """ExecMainStartTimestamp of every vLLM unit (changes on every restart)."""
    starts = {}
    for name in VLLM_HOSTS:
        h = host(name)
        units = h.check_output("systemctl list-units --plain --no-legend --type=service 'vllm@*'").split()
        for unit in [u for u in units if u.startswith("vllm@")]:
            starts[(name, unit)] = h.check_output("systemctl show -p ExecMainStartTimestamp --value %s", unit)
    return starts


def gateway_playbook(extra_vars=None, tmp_path=None):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), MOLECULE_PROJECT_DIRECTORY=ROOT,
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    args = ["ansible-playbook", "-i", INVENTORY]
    if os.path.exists(DAY2_INVENTORY):
        args += ["-i", DAY2_INVENTORY]
    args.append(os.path.join(ROOT, "playbooks", "gateway.yml"))
    if extra_vars is not None:
        path = tmp_path / "gateway-vars.json"
        path.write_text(json.dumps(extra_vars))
        args += ["-e", "@%s" % path]
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_revoked_key_gets_401_without_restarting_vllm(gateway, gateway_ip, tmp_path):
    starts = vllm_starts()
    assert starts, "no vLLM units found"
    haproxy_pid = gateway.check_output("systemctl show -p MainPID --value haproxy.service")
    # team-a removed from the variable (as an operator edits the inventory), role run again.
    only_b = [{"name": "team-b", "sha256": hashlib.sha256(TEAM_B.encode()).hexdigest()}]
    try:
        out = gateway_playbook({"vllm_gateway_api_keys": only_b}, tmp_path)
        assert "RUNNING HANDLER [llmops.vllm.vllm_gateway : Reload haproxy]" in out
        for transport in TRANSPORTS:
            assert request(gateway_ip, transport, "/v1/completions", key=TEAM_A, body=COMPLETION)[0] == 401
            assert request(gateway_ip, transport, "/v1/completions", key=TEAM_B, body=COMPLETION)[0] == 200
            assert request(gateway_ip, transport, "/v1/completions", key=VLLM_KEY, body=COMPLETION)[0] == 200
        assert hashlib.sha256(TEAM_A.encode()).hexdigest() not in gateway.file(
            "/etc/haproxy/vllm-gateway-keys.map").content_string
    finally:
        gateway_playbook()
    assert request(gateway_ip, "https", "/v1/completions", key=TEAM_A, body=COMPLETION)[0] == 200
    # A reload, not a restart, of HAProxy; vLLM untouched.
    assert gateway.check_output("systemctl show -p MainPID --value haproxy.service") == haproxy_pid
    assert vllm_starts() == starts
