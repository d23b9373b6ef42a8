"""Test and demo hosts only: keep the bytecode of the code Ansible sends with each task.

Every module run gets a fresh zip (/tmp/ansible_<module>_payload_*/
ansible_<module>_payload.zip) holding the module and the module_utils it
imports. Python keeps no bytecode for modules in a zip, and its zip importer
compiles each one twice (once to name the file while finding it, once to load
it), so every task compiled ansible.module_utils.basic and the rest from source
again: importing it took 0.19 s on these hosts, 0.085 s with this cache.

This finder takes the imports that come from such a zip and hands them to a
loader that compiles each source text once and keeps the code in a directory
only root can read, keyed by the interpreter, the path inside the zip and the
full source text. The code that runs is the same; only the compile step is
skipped. Other users, other zips and every other import are left to Python.
scripts/lib.sh (ensure_image) copies it into the hosts' image with a .pth file
that calls install(); vLLM's virtualenvs do not read that directory.
benchmarks/module_bytecode.sh measures a whole playbook with and without it.
"""

import importlib.machinery
import importlib.util
import marshal
import os
import sys
import zipimport

CACHE = "/var/cache/ansible-module-bytecode"
PAYLOAD = "_payload.zip"
# Bytecode is only valid for the interpreter that made it.
_INTERPRETER = "%s %r" % (sys.version, importlib.util.MAGIC_NUMBER)


class CachingLoader:
    """Loads one module of a payload zip; anything but its code goes to the zip importer."""

    def __init__(self, importer, origin):
        self._importer = importer
        self._origin = origin

    def __getattr__(self, name):
        return getattr(self._importer, name)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(self.get_code(module.__spec__.name), module.__dict__)  # noqa: S102 - this is an import

    def get_code(self, fullname):
        # runpy (how Ansible starts the module itself) asks for the code directly.
        import hashlib

        source = self._importer.get_source(fullname)
        if source is None:  # bytecode only in the zip: nothing to compile
            return self._importer.get_code(fullname)
        inside = self._origin.partition(PAYLOAD + os.sep)[2]
        key = hashlib.sha256("\0".join((_INTERPRETER, inside, source)).encode("utf-8", "surrogateescape"))
        path = os.path.join(CACHE, key.hexdigest())
        try:
            with open(path, "rb") as f:
                return marshal.load(f)
        except (OSError, EOFError, ValueError, TypeError):
            pass
        code = compile(source, self._origin, "exec", dont_inherit=True)
        try:
            os.makedirs(CACHE, mode=0o700, exist_ok=True)
            partial = "%s.%d" % (path, os.getpid())
            with open(partial, "wb") as f:
                marshal.dump(code, f)
            os.replace(partial, path)
        except OSError:
            pass
        return code


class PayloadFinder:
    """Finds modules named ansible* in a payload zip on the path, without compiling them."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if not fullname.startswith("ansible"):
            return None
        for entry in sys.path if path is None else path:
            if PAYLOAD not in entry:
                continue
            importer = sys.path_importer_cache.get(entry)
            if importer is None:
                try:
                    importer = sys.path_importer_cache[entry] = zipimport.zipimporter(entry)
                except zipimport.ZipImportError:
                    continue
            if not isinstance(importer, zipimport.zipimporter):
                continue
            try:
                package = importer.is_package(fullname)
            except zipimport.ZipImportError:  # not in this zip
                continue
            base = os.path.join(importer.archive, importer.prefix, fullname.rpartition(".")[2])
            origin = os.path.join(base, "__init__.py") if package else base + ".py"
            spec = importlib.machinery.ModuleSpec(fullname, CachingLoader(importer, origin), origin=origin,
                                                  is_package=package)
            spec.has_location = True
            if package:
                spec.submodule_search_locations = [base]
            return spec
        return None

    @staticmethod
    def invalidate_caches():
        pass


def install():
    """Puts the finder before Python's own path finder, for root only."""
    if os.geteuid() == 0 and PayloadFinder not in sys.meta_path:
        sys.meta_path.insert(sys.meta_path.index(importlib.machinery.PathFinder), PayloadFinder)

