"""grafana preflight: package sources must be https unless a local mirror is allowed,
and the apt signing-key fingerprints must be 40 hex digits (tests/roles/conftest.py)."""

GOOD = {"grafana_admin_password": "Xy7-long-pass-123"}


def test_http_repository_fails_and_names_the_variable(role_preflight):
    rc, out = role_preflight("grafana", dict(GOOD, grafana_apt_repo_url="http://mirror.invalid"))
    assert rc != 0, out[-2000:]
    assert "grafana_allow_insecure_mirror" in out and "http://mirror.invalid" in out, out[-2000:]


def test_http_repository_passes_when_a_local_mirror_is_allowed(role_preflight):
    rc, out = role_preflight("grafana", dict(GOOD, grafana_apt_repo_url="http://mirror.invalid",
                                             grafana_apt_key_url="http://mirror.invalid/gpg.key",
                                             grafana_allow_insecure_mirror=True))
    assert "grafana_allow_insecure_mirror to true" not in out, out[-2000:]


def test_a_malformed_fingerprint_fails(role_preflight):
    rc, out = role_preflight("grafana", dict(GOOD, grafana_apt_key_fingerprints=["963FA27710458545"]))
    assert rc != 0, out[-2000:]
    assert "grafana_apt_key_fingerprints must list" in out, out[-2000:]
