"""Bad input to the vllm_gateway role fails in preflight, before any task that
changes a host, with a message that names the variable to fix (and never prints
a key).

Runs the role against the controller itself with only its preflight tag
(argument_specs validation runs too), so nothing can be installed here
(tests/roles/conftest.py, role_preflight).
"""

import hashlib

import pytest

GOOD = {
    "vllm_gateway_backends": [{"name": "a_main", "address": "10.0.0.1", "port": 8000}],
    "vllm_gateway_backend_api_key": "backend-key-0123456789",
    "vllm_gateway_api_keys": [
        {"name": "alice", "key": "alice-secret-0123456789"},
        {"name": "bob", "sha256": hashlib.sha256(b"bob-secret-0123456789").hexdigest()},
    ],
}


@pytest.fixture
def tls_files(tmp_path):
    cert, key = tmp_path / "gw.crt", tmp_path / "gw.key"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    return str(cert), str(key)


def run_preflight(role_preflight, overrides):
    return role_preflight("vllm_gateway", dict(GOOD, **overrides))


def test_good_input_passes(role_preflight, tls_files):
    rc, out = run_preflight(role_preflight, {"vllm_gateway_tls_enabled": True, "vllm_gateway_tls_cert": tls_files[0],
                                             "vllm_gateway_tls_key": tls_files[1]})
    assert rc == 0, out
    assert "changed=0" in out
    assert "alice-secret" not in out


def test_defaults_pass_without_keys_or_tls(role_preflight):
    rc, out = role_preflight("vllm_gateway", {"vllm_gateway_backends": GOOD["vllm_gateway_backends"]})
    assert rc == 0, out


@pytest.mark.parametrize("overrides, expected", [
    ({"vllm_gateway_allowed_paths": ["v1/"]}, "vllm_gateway_allowed_paths"),
    ({"vllm_gateway_allowed_paths": ["/v1/ /pause"]}, '"/v1/ /pause"'),
    ({"vllm_gateway_allowed_paths": []}, "(vllm_gateway_allowed_paths is empty)"),
    ({"vllm_gateway_public_paths": ["health"]}, "vllm_gateway_public_paths"),
    ({"vllm_gateway_api_keys": [{"name": "alice", "key": "too-short"}]}, "Key shorter than 16 characters or with whitespace: alice"),
    ({"vllm_gateway_api_keys": [{"name": "alice", "key": "has whitespace 0123456789"}]}, "with whitespace: alice"),
    ({"vllm_gateway_api_keys": [{"name": "alice"}]}, "Give key or sha256 (not both) for: alice"),
    ({"vllm_gateway_api_keys": [{"name": "alice", "key": "k" * 20, "sha256": "a" * 64}]}, "Give key or sha256 (not both) for: alice"),
    ({"vllm_gateway_api_keys": [{"name": "alice", "sha256": "xyz"}]}, "sha256 is not 64 hex digits: alice"),
    ({"vllm_gateway_api_keys": [{"name": "a", "key": "k" * 20}, {"name": "a", "key": "j" * 20}]}, "every entry needs a unique name"),
    ({"vllm_gateway_api_keys": [{"name": "bad name", "key": "k" * 20}]}, "every entry needs a unique name"),
    ({"vllm_gateway_api_keys": [{"name": "a", "key": "k" * 20}, {"name": "b", "key": "k" * 20}]}, "two entries hold the same key"),
    ({"vllm_gateway_backend_api_key": ""}, "set vllm_gateway_backend_api_key"),
    ({"vllm_gateway_tls_enabled": True, "vllm_gateway_tls_cert": "/nonexistent/gw.crt", "vllm_gateway_tls_key": "/nonexistent/gw.key"},
     "vllm_gateway_tls_cert: '/nonexistent/gw.crt' is not a file"),
    ({"vllm_gateway_tls_enabled": True, "vllm_gateway_tls_cert": "/nonexistent/gw.crt"}, "set vllm_gateway_tls_cert and vllm_gateway_tls_key"),
])
def test_bad_input_fails_in_preflight(role_preflight, overrides, expected):
    rc, out = run_preflight(role_preflight, overrides)
    assert rc != 0, out
    assert expected in out, out
    assert "changed=0" in out or "changed=" not in out
    for secret in ("too-short", "has whitespace", "alice-secret", "backend-key-0123"):
        assert secret not in out


def test_tls_on_without_key_names_the_variable(role_preflight, tls_files):
    rc, out = run_preflight(role_preflight, {"vllm_gateway_tls_enabled": True, "vllm_gateway_tls_cert": tls_files[0]})
    assert rc != 0, out
    assert "vllm_gateway_tls_key: '' is not a file" in out, out
