# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a stand-in for ansible-test's pip bootstrap script into its cache.

ansible-test creates a bare virtual environment for each sanity test and
bootstraps pip in it with a script it downloads from
https://ci-files.testing.ansible.com/ansible-test/get-pip-<version>.py and caches
as ~/.ansible/test/cache/get_pip_<version with underscores>.py. Where that host
cannot be reached, the run stops with "does not have pip available". The
stand-in written here does the same job offline-friendly: it installs the pip
bundled with Python (ensurepip), then runs ``pip install`` with the arguments
ansible-test passed (the pinned ``pip==<version>``), minus the get-pip-only
``--no-setuptools`` / ``--no-wheel``, through the pip configuration of the
host (index, mirrors, find-links, CA bundle).

Usage (from the repository root)::

    # the pip version the installed ansible-test pins
    .venv/bin/python scripts/ansible_test_getpip_standin.py
    # given versions
    .venv/bin/python scripts/ansible_test_getpip_standin.py 24.2 25.0
    # overwrite an existing cache file, even a real get-pip script
    .venv/bin/python scripts/ansible_test_getpip_standin.py --force

Run it with the Python that has ansible-test installed (the tool venv) when no
version is given. A real get-pip script already in the cache is kept unless
--force is given.
"""

import argparse
import importlib.util
import os
import re
import sys

DEFAULT_CACHE_DIR = os.path.expanduser('~/.ansible/test/cache')
CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'
MARKER = 'ansible-test get-pip stand-in'

STANDIN = '''\
# {marker} for pip {version}, written by scripts/ansible_test_getpip_standin.py
# (llmops.vllm). ansible-test runs this file in a fresh venv with pip's
# arguments, as it would run get-pip.py. It installs the bundled pip with
# ensurepip, then "pip install"s the requested packages.
import ensurepip
import os
import subprocess
import sys

CA_BUNDLE = {ca_bundle!r}
GET_PIP_ONLY = ('--no-setuptools', '--no-wheel')


def main():
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    ensurepip.bootstrap()
    command = [sys.executable, '-m', 'pip', 'install']
    if os.path.exists(CA_BUNDLE):
        command += ['--cert', CA_BUNDLE]
    subprocess.check_call(command + args)


if __name__ == '__main__':
    main()
'''


def pinned_pip_version():
    """The pip version the installed ansible-test bootstraps, read from its source."""
    spec = importlib.util.find_spec('ansible_test')
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit('ansible_test is not importable by %s; give the pip version as an argument' % sys.executable)
    path = os.path.join(list(spec.submodule_search_locations)[0], '_internal', 'python_requirements.py')
    with open(path, encoding='utf-8') as handle:
        match = re.search(r"""\bpip=['"]([0-9][0-9.]*)['"]""", handle.read())
    if not match:
        raise SystemExit('cannot find the pinned pip version in %s; give it as an argument' % path)
    return match.group(1)


def cache_path(version, cache_dir):
    return os.path.join(cache_dir, 'get_pip_%s.py' % version.replace('.', '_'))


def write_standin(version, cache_dir=DEFAULT_CACHE_DIR, force=False):
    """Write the stand-in for ``version``; returns (path, written)."""
    path = cache_path(version, cache_dir)
    if os.path.exists(path) and not force:
        with open(path, encoding='utf-8', errors='replace') as handle:
            if MARKER not in handle.read(4096):
                return path, False  # a real get-pip script: keep it
    os.makedirs(cache_dir, exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as handle:
        handle.write(STANDIN.format(marker=MARKER, version=version, ca_bundle=CA_BUNDLE))
    os.replace(tmp, path)
    return path, True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
    parser.add_argument('versions', nargs='*', help='pip versions, such as 24.2 (default: the one ansible-test pins)')
    parser.add_argument('--cache-dir', default=DEFAULT_CACHE_DIR, help='default: %(default)s')
    parser.add_argument('--force', action='store_true', help='overwrite a cached real get-pip script too')
    options = parser.parse_args(argv)
    versions = options.versions or [pinned_pip_version()]
    for version in versions:
        if not re.match(r'^[0-9]+(\.[0-9]+)*$', version):
            parser.error('not a pip version: %r' % version)
        path, written = write_standin(version, options.cache_dir, options.force)
        print('%s %s' % ('wrote' if written else 'kept existing', path))
    return 0


if __name__ == '__main__':
    sys.exit(main())
