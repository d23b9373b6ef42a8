# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release hygiene: the built collection holds the collection and nothing else,
declares the collections it calls, and claims only the ansible-core versions the
project tests.

The build runs on a copy of the working tree in which the debris of a used checkout
is planted (caches, virtualenvs, artifacts, Python bytecode), so the check does not
depend on how clean the checkout running it is."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml
from ansible.module_utils.compat.version import LooseVersion
from ansible.release import __version__ as ansible_core_version

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Not copied (large or not part of any tree a build could see); planted small instead.
SKIP_COPY = {'.git', '.venv', '.cache', 'artifacts', '.pytest_cache', '.ansible'}
DEBRIS = ['.cache/wheelhouse/x.whl', '.venv/bin/python', '.pytest_cache/v/cache/nodeids',
          '.ansible/collections/x', 'artifacts/loadtest/run.json', 'plugins/modules/__pycache__/x.cpython-311.pyc',
          'plugins/modules/stray.pyc', 'llmops-vllm-0.0.1.tar.gz', 'roles/grafana/molecule/default/molecule.yml',
          'roles/grafana/tests/test.yml']
# What a collection consists of (top-level entries of the tarball).
ALLOWED_TOP = {'MANIFEST.json', 'FILES.json', 'README.md', 'CHANGELOG.md', 'LICENSE', 'COPYING', 'meta',
               'plugins', 'roles', 'playbooks', 'docs', 'changelogs'}
FORBIDDEN = ['tests', 'tests/*', '*/tests', '*/tests/*', '*molecule*', '.*', '*/.*', '*__pycache__*', '*.pyc',
             '*.tar.gz', 'collections*', 'artifacts*', 'locks*', 'inventory*', 'scripts*', 'benchmarks*',
             '*.ini', '*.cfg', 'tox.ini', 'playbooks/local_hosts.yml', 'requirements*.txt', 'requirements.yml']
BUILTIN_NAMESPACES = ('ansible.builtin.', 'ansible.legacy.', 'llmops.vllm.')


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    """(file names in the tarball, the tarball's MANIFEST.json, the copy's root)."""
    root = tmp_path_factory.mktemp('build')
    tree = root / 'tree'
    shutil.copytree(REPO, str(tree), symlinks=True,
                    ignore=lambda directory, names: [n for n in names if directory == REPO and n in SKIP_COPY])
    for rel in DEBRIS:
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('debris\n')
    galaxy = os.path.join(os.path.dirname(sys.executable), 'ansible-galaxy')
    assert os.path.exists(galaxy), 'ansible-galaxy is not next to %s' % sys.executable
    out = root / 'out'
    completed = subprocess.run([galaxy, 'collection', 'build', '--output-path', str(out), str(tree)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                               timeout=120)
    assert completed.returncode == 0, completed.stdout
    tarballs = list(out.glob('llmops-vllm-*.tar.gz'))
    assert len(tarballs) == 1, completed.stdout
    with tarfile.open(str(tarballs[0])) as tar:
        names = [m.name.rstrip('/') for m in tar.getmembers()]
        manifest = json.load(tar.extractfile('MANIFEST.json'))
        contents = dict((m.name, tar.extractfile(m).read().decode('utf-8', 'replace'))
                        for m in tar.getmembers() if m.isfile() and m.name.endswith(('.yml', '.yaml', '.j2', '.py')))
    return names, manifest, contents


def test_tarball_holds_only_the_collection(built):
    names = built[0]
    unexpected = sorted(set(n.split('/')[0] for n in names) - ALLOWED_TOP)
    assert not unexpected, 'top-level entries that are not part of a collection: %s' % unexpected
    leaked = sorted(n for n in names if any(fnmatch.fnmatch(n, pattern) for pattern in FORBIDDEN))
    assert not leaked, 'build_ignore in galaxy.yml misses: %s' % leaked


def test_tarball_holds_the_roles_and_modules(built):
    names = set(built[0])
    roles = sorted(n for n in os.listdir(os.path.join(REPO, 'roles')) if os.path.isdir(os.path.join(REPO, 'roles', n)))
    for role in roles:
        assert 'roles/%s/meta/argument_specs.yml' % role in names, role
    assert 'meta/runtime.yml' in names
    assert any(n.startswith('plugins/modules/grafana_') for n in names)


def test_every_collection_the_content_calls_is_a_dependency(built):
    _, manifest, contents = built
    declared = set(manifest['collection_info']['dependencies'])
    with open(os.path.join(REPO, 'galaxy.yml')) as handle:
        assert set((yaml.safe_load(handle).get('dependencies') or {})) == declared
    used = {}
    pattern = re.compile(r'^\s*-?\s*([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+:', re.MULTILINE)
    for name, text in contents.items():
        if not name.startswith(('roles/', 'playbooks/')) or not name.endswith(('.yml', '.yaml')):
            continue
        for collection in pattern.findall(text):
            if collection + '.' not in BUILTIN_NAMESPACES and collection not in ('ansible.builtin', 'llmops.vllm'):
                used.setdefault(collection, []).append(name)
    missing = dict((c, files) for c, files in used.items() if c not in declared)
    assert not missing, 'collections used but not in galaxy.yml dependencies: %s' % missing


def _requires_ansible():
    with open(os.path.join(REPO, 'meta', 'runtime.yml')) as handle:
        return yaml.safe_load(handle)['requires_ansible']


def _satisfies(version, spec):
    ops = {'>=': lambda a, b: a >= b, '>': lambda a, b: a > b, '<=': lambda a, b: a <= b,
           '<': lambda a, b: a < b, '==': lambda a, b: a == b, '!=': lambda a, b: a != b}
    for clause in spec.split(','):
        match = re.match(r'\s*(>=|<=|==|!=|>|<)\s*([0-9][0-9a-z.]*)\s*$', clause)
        assert match, 'cannot read requires_ansible clause %r' % clause
        if not ops[match.group(1)](LooseVersion(version), LooseVersion(match.group(2))):
            return False
    return True


def test_requires_ansible_is_bounded_by_what_is_tested():
    spec = _requires_ansible()
    assert '<' in spec, 'requires_ansible %r has no upper bound' % spec
    with open(os.path.join(REPO, 'requirements-dev.txt')) as handle:
        pinned = re.search(r'^ansible-core==(\S+)', handle.read(), re.MULTILINE).group(1)
    for version in (pinned, ansible_core_version):
        assert _satisfies(version, spec), 'the tested ansible-core %s is outside requires_ansible %r' % (version, spec)
    major, minor = [int(x) for x in pinned.split('.')[:2]]
    untested = '%d.%d.0' % (major, minor + 1)
    assert not _satisfies(untested, spec), 'requires_ansible %r admits the untested %s' % (spec, untested)
