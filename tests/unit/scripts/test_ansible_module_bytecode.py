"""scripts/ansible_module_bytecode.py: the test hosts' bytecode cache for the code
Ansible ships with each task. Each case runs a fresh interpreter, as a module run
does, with the finder installed and its cache in a temporary directory."""

import importlib.machinery
import importlib.util
import json
import marshal
import os
import subprocess
import sys
import textwrap
import zipfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
# By path, under a name of its own: the tool virtualenv's .pth file (scripts/lib.sh)
# has already imported and installed its copy in this interpreter.
_SPEC = importlib.util.spec_from_file_location("ansible_module_bytecode_under_test",
                                               os.path.join(ROOT, "scripts", "ansible_module_bytecode.py"))
ansible_module_bytecode = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(ansible_module_bytecode)

PACKAGE = {
    "ansible_demo/__init__.py": "from . import util\nVALUE = util.answer()\n",
    "ansible_demo/util.py": "def answer():\n    return 42\n",
    "ansible_demo/main.py": "import json, sys\nfrom ansible_demo import VALUE\n"
                            "if __name__ == '__main__':\n    print(json.dumps({'main': VALUE, 'file': __file__}))\n",
    "notansible.py": "VALUE = 1\n",
}

# Imports the names given in a fresh interpreter, with the finder installed as the
# hosts' .pth file does, and prints what each module is and where it came from.
# PYTHONPATH puts scripts/ first, so this file's copy is the one imported.
PROBE = textwrap.dedent("""
    import importlib, json, runpy, sys
    import ansible_module_bytecode as m
    m.CACHE = sys.argv[1]
    sys.meta_path.insert(sys.meta_path.index(importlib.machinery.PathFinder), m.PayloadFinder)
    sys.path.insert(0, sys.argv[2])
    if sys.argv[3] == "runpy":
        runpy.run_module("ansible_demo.main", run_name="__main__", alter_sys=True)
    else:
        out = {}
        for name in sys.argv[3:]:
            mod = importlib.import_module(name)
            out[name] = {"value": getattr(mod, "VALUE", None), "file": mod.__file__,
                         "loader": type(mod.__spec__.loader).__name__}
        print(json.dumps(out))
""")


def make_zip(path, files):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return str(path)


def probe(cache, archive, *args):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "scripts"))
    proc = subprocess.run([sys.executable, "-c", PROBE, str(cache), archive] + list(args),
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def replace_constant(code, old, new):
    consts = tuple(replace_constant(c, old, new) if hasattr(c, "co_code") else (new if c == old else c)
                   for c in code.co_consts)
    return code.replace(co_consts=consts)


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def test_payload_modules_load_from_the_zip_and_their_code_is_kept(tmp_path, cache):
    archive = make_zip(tmp_path / "run1" / "ansible_demo_payload.zip", PACKAGE)
    out = probe(cache, archive, "ansible_demo", "ansible_demo.util")
    assert out["ansible_demo"]["value"] == 42
    assert out["ansible_demo"]["file"] == os.path.join(archive, "ansible_demo", "__init__.py")
    assert out["ansible_demo.util"]["file"] == os.path.join(archive, "ansible_demo", "util.py")
    assert {o["loader"] for o in out.values()} == {"CachingLoader"}
    assert len(os.listdir(cache)) == 2
    assert oct(os.stat(cache).st_mode & 0o777) == "0o700"


def test_the_next_run_reads_the_kept_code_from_another_zip(tmp_path, cache):
    probe(cache, make_zip(tmp_path / "run1" / "ansible_demo_payload.zip", PACKAGE), "ansible_demo")
    # Replace every kept entry with code of our own: a run that reads the cache
    # gets 7, one that compiled the zip's source would get 42.
    for name in os.listdir(cache):
        with open(cache / name, "rb") as f:
            kept = marshal.load(f)
        with open(cache / name, "wb") as f:
            marshal.dump(replace_constant(kept, 42, 7), f)
    out = probe(cache, make_zip(tmp_path / "run2" / "ansible_demo_payload.zip", PACKAGE), "ansible_demo")
    assert out["ansible_demo"]["value"] == 7
    assert len(os.listdir(cache)) == 2


def test_changed_source_is_compiled_again_never_served_stale(tmp_path, cache):
    probe(cache, make_zip(tmp_path / "run1" / "ansible_demo_payload.zip", PACKAGE), "ansible_demo")
    changed = dict(PACKAGE, **{"ansible_demo/util.py": "def answer():\n    return 43\n"})
    out = probe(cache, make_zip(tmp_path / "run2" / "ansible_demo_payload.zip", changed), "ansible_demo")
    assert out["ansible_demo"]["value"] == 43
    assert len(os.listdir(cache)) == 3


def test_a_damaged_entry_is_compiled_again_and_replaced(tmp_path, cache):
    archive = make_zip(tmp_path / "run1" / "ansible_demo_payload.zip", PACKAGE)
    probe(cache, archive, "ansible_demo")
    for name in os.listdir(cache):
        (cache / name).write_bytes(b"not bytecode")
    assert probe(cache, archive, "ansible_demo")["ansible_demo"]["value"] == 42
    for name in os.listdir(cache):
        with open(cache / name, "rb") as f:
            assert hasattr(marshal.load(f), "co_code")


def test_runpy_runs_the_module_as_ansible_does(tmp_path, cache):
    archive = make_zip(tmp_path / "run1" / "ansible_demo_payload.zip", PACKAGE)
    for _ in range(2):  # compiles, then reads the cache
        assert probe(cache, archive, "runpy") == {"main": 42, "file": os.path.join(archive, "ansible_demo", "main.py")}
    assert len(os.listdir(cache)) == 3


def test_other_zips_and_other_names_are_left_to_python(tmp_path, cache):
    out = probe(cache, make_zip(tmp_path / "plain.zip", PACKAGE), "ansible_demo")
    assert out["ansible_demo"]["loader"] == "zipimporter"
    out = probe(cache, make_zip(tmp_path / "run1" / "ansible_demo_payload.zip", PACKAGE), "notansible")
    assert out["notansible"] == {"value": 1, "loader": "zipimporter",
                                 "file": os.path.join(str(tmp_path / "run1" / "ansible_demo_payload.zip"),
                                                      "notansible.py")}
    assert not cache.exists()


@pytest.mark.parametrize("euid, installed", [(0, True), (1000, False)])
def test_installed_for_root_only_before_the_path_finder(monkeypatch, euid, installed):
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    ansible_module_bytecode.install()
    ansible_module_bytecode.install()
    finders = sys.meta_path
    assert finders.count(ansible_module_bytecode.PayloadFinder) == (1 if installed else 0)
    if installed:
        assert finders.index(ansible_module_bytecode.PayloadFinder) + 1 == \
            finders.index(importlib.machinery.PathFinder)
