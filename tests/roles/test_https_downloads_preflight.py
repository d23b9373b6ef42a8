"""Downloads come over https unless a role's <role>_allow_insecure_mirror allows a
local mirror (issue 13, item 6): the release archives of prometheus, node_exporter,
alertmanager and victoriametrics (and the checksum files beside them), and vLLM's
package indexes and find-links. An http URL fails in preflight with a message that
names the variable and the allow variable; with the allow variable it passes; https,
file:// and a directory on the host pass without it.

Runs each role against the controller itself with only its preflight tag
(tests/roles/conftest.py, role_preflight), so nothing can be installed here.
"""


import pytest

from test_vllm_server_preflight import GOOD as VLLM, run_preflight  # tests/roles is on sys.path (rootdir import mode)

ARCHIVE_ROLES = ["prometheus", "node_exporter", "alertmanager", "victoriametrics"]
HTTP_MIRROR = "http://127.0.0.1:8999/mirror/v1.0.0"


def archive_vars(role, **overrides):
    # The archive method runs on any controller (the package method wants Debian).
    return dict({"%s_install_method" % role: "archive"}, **overrides)


@pytest.mark.parametrize("role", ARCHIVE_ROLES)
def test_http_archive_mirror_is_refused(role_preflight, role):
    rc, out = role_preflight(role, archive_vars(role, **{"%s_archive_base_url" % role: HTTP_MIRROR}))
    assert rc != 0, out
    assert "%s_archive_base_url must be https:// or file://" % role in out, out
    assert "%s_allow_insecure_mirror" % role in out, out
    assert HTTP_MIRROR in out, out
    assert "changed=0" in out or "changed=" not in out


@pytest.mark.parametrize("role", ARCHIVE_ROLES)
def test_http_archive_mirror_is_allowed_when_asked_for(role_preflight, role):
    rc, out = role_preflight(role, archive_vars(role, **{"%s_archive_base_url" % role: HTTP_MIRROR,
                                                         "%s_allow_insecure_mirror" % role: True}))
    assert rc == 0, out


@pytest.mark.parametrize("role", ARCHIVE_ROLES)
def test_https_archive_url_passes(role_preflight, role):
    # The default base URL is the project's https release page.
    rc, out = role_preflight(role, archive_vars(role))
    assert rc == 0, out


def test_file_archive_mirror_passes(role_preflight, tmp_path):
    rc, out = role_preflight("node_exporter", archive_vars("node_exporter", node_exporter_archive_base_url="file://%s" % tmp_path))
    assert rc == 0, out


def test_credentials_in_an_http_mirror_url_are_not_printed(role_preflight):
    rc, out = role_preflight("node_exporter", archive_vars(
        "node_exporter", node_exporter_archive_base_url="http://user:s3cret-mirror-pw@mirror.example/ne"))
    assert rc != 0, out
    assert "node_exporter_archive_base_url must be https://" in out, out
    assert "s3cret-mirror-pw" not in out


# ---- vLLM's package sources --------------------------------------------------------

def run_vllm(role_preflight, overrides):
    # The vLLM preflight tests' good inventory, with one source changed.
    return run_preflight(role_preflight, overrides)


@pytest.mark.parametrize("variable, value", [
    ("vllm_server_pip_index_url", "http://pypi.mirror.example/simple"),
    ("vllm_server_pip_extra_index_urls", ["https://download.pytorch.org/whl/cpu", "http://10.0.0.5/simple"]),
    ("vllm_server_pip_find_links", ["/wheelhouse", "http://10.0.0.5/wheels/"]),
])
def test_http_package_source_is_refused(role_preflight, variable, value):
    rc, out = run_vllm(role_preflight, {variable: value})
    assert rc != 0, out
    assert "Package sources must be https://" in out, out
    assert variable in out, out
    assert "vllm_server_allow_insecure_mirror" in out, out
    assert "changed=0" in out or "changed=" not in out


def test_http_index_option_in_the_lock_is_refused(role_preflight, tmp_path):
    with open(VLLM["vllm_server_requirements_lock"]) as handle:
        lock = handle.read()
    path = tmp_path / "lock.txt"
    path.write_text("--extra-index-url http://10.0.0.5/simple\n" + lock)
    rc, out = run_vllm(role_preflight, {"vllm_server_requirements_lock": str(path)})
    assert rc != 0, out
    assert "vllm_server_requirements_lock (http://10.0.0.5/simple)" in out, out


def test_http_package_sources_are_allowed_when_asked_for(role_preflight):
    rc, out = run_vllm(role_preflight, {"vllm_server_pip_index_url": "http://pypi.mirror.example/simple",
                                        "vllm_server_pip_find_links": ["http://10.0.0.5/wheels/"],
                                        "vllm_server_allow_insecure_mirror": True})
    assert rc == 0, out


def test_https_and_local_package_sources_pass(role_preflight):
    # https indexes, and the molecule scenarios' wheelhouse: a directory on the host, or file://.
    rc, out = run_vllm(role_preflight, {"vllm_server_pip_index_url": "https://pypi.mirror.example/simple",
                                        "vllm_server_pip_extra_index_urls": ["https://download.pytorch.org/whl/cpu"],
                                        "vllm_server_pip_find_links": ["/wheelhouse", "file:///srv/wheels"],
                                        "vllm_server_pip_no_index": True})
    assert rc == 0, out
