# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Integration tests of the grafana_* modules against the Grafana test double.

Each test starts nothing but what it needs: one Grafana test double
(tests/grafana_double/grafana_double.py) on a free port of 127.0.0.1 with a
temporary grafana.ini, data and provisioning directory, a service account
token made through the double's API, and real ``ansible-playbook`` runs of
the playbooks in playbooks/ against localhost (connection local). The
playbooks assert on the module results and read the objects back through
the API; the tests check the exit codes, the play recap and the state.

Run: ``pytest tests/integration/grafana_modules`` from the repository root,
with ansible-playbook on PATH or next to the running Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import functools
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
PLAYBOOKS = os.path.join(HERE, 'playbooks')
DOUBLE = os.path.join(REPO, 'tests', 'grafana_double', 'grafana_double.py')
DASHBOARDS_DIR = os.path.join(REPO, 'roles', 'grafana', 'files', 'dashboards')
ADMIN_PASSWORD = 'it-admin-Pa55word'


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def ansible_playbook():
    candidate = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    if os.path.exists(candidate):
        return candidate
    found = shutil.which('ansible-playbook')
    if not found:
        pytest.skip('ansible-playbook is not installed')
    return found


def api(url, method='GET', body=None, token=None, user=None, password=None):
    """(status, parsed JSON) of one call to Grafana."""
    headers = {'Accept': 'application/json'}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers['Content-Type'] = 'application/json'
    if token:
        headers['Authorization'] = 'Bearer %s' % token
    elif user:
        headers['Authorization'] = 'Basic %s' % base64.b64encode(('%s:%s' % (user, password)).encode()).decode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, (json.loads(raw) if raw.strip() else None)
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode(errors='replace')


class Grafana:
    """One running test double."""

    def __init__(self, root):
        self.root = root
        self.port = free_port()
        self.url = 'http://127.0.0.1:%d' % self.port
        self.ini = os.path.join(root, 'grafana.ini')
        provisioning = os.path.join(root, 'provisioning')
        os.makedirs(os.path.join(provisioning, 'datasources'))
        os.makedirs(os.path.join(provisioning, 'dashboards'))
        with open(os.path.join(provisioning, 'datasources', 'it.yaml'), 'w') as handle:
            handle.write('apiVersion: 1\ndatasources:\n'
                         '  - name: IT provisioned\n    uid: it-provisioned\n    type: prometheus\n'
                         '    access: proxy\n    url: http://127.0.0.1:9091\n    editable: false\n')
        with open(self.ini, 'w') as handle:
            handle.write('[server]\nhttp_addr = 127.0.0.1\nhttp_port = %d\n\n'
                         '[paths]\ndata = %s\nprovisioning = %s\n\n'
                         '[security]\nadmin_user = admin\nadmin_password = %s\n'
                         % (self.port, os.path.join(root, 'data'), provisioning, ADMIN_PASSWORD))
        self.log = open(os.path.join(root, 'grafana.log'), 'w')
        self.process = subprocess.Popen([sys.executable, DOUBLE, '--config', self.ini],
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_healthy()
        self.token = self.make_token()

    def wait_healthy(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError('the Grafana double exited with %s:\n%s' % (self.process.returncode, self.read_log()))
            try:
                if api(self.url + '/api/health')[0] == 200:
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        raise RuntimeError('the Grafana double did not become healthy:\n%s' % self.read_log())

    def make_token(self):
        status, account = api(self.url + '/api/serviceaccounts', 'POST', {'name': 'ansible-it', 'role': 'Admin'},
                              user='admin', password=ADMIN_PASSWORD)
        assert status == 201, account
        status, token = api(self.url + '/api/serviceaccounts/%d/tokens' % account['id'], 'POST', {'name': 'it'},
                            user='admin', password=ADMIN_PASSWORD)
        assert status == 200, token
        return token['key']

    def get(self, path):
        return api(self.url + path, token=self.token)

    def read_log(self):
        self.log.flush()
        with open(os.path.join(self.root, 'grafana.log')) as handle:
            return handle.read()[-4000:]

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture
def grafana(tmp_path):
    if not os.path.exists(DOUBLE):
        pytest.skip('the Grafana test double is not there: %s' % DOUBLE)
    double = Grafana(str(tmp_path))
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture
def files_server():
    """Serves playbooks/files over HTTP on 127.0.0.1, for dashboard_url."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=os.path.join(PLAYBOOKS, 'files'))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield 'http://127.0.0.1:%d' % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def run_playbook(grafana, name, tmp_path, **extra_vars):
    """Run playbooks/<name> against localhost; return (returncode, output)."""
    variables = {'grafana_url': grafana.url, 'grafana_token': grafana.token,
                 'grafana_admin_password': ADMIN_PASSWORD, 'ansible_python_interpreter': sys.executable}
    variables.update(extra_vars)
    vars_file = tmp_path / ('vars-%s.json' % name)
    vars_file.write_text(json.dumps(variables))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0', ANSIBLE_RETRY_FILES_ENABLED='0', ANSIBLE_LOCAL_TEMP=str(tmp_path / 'ansible-tmp'))
    env.pop('GRAFANA_URL', None)
    env.pop('GRAFANA_TOKEN', None)
    completed = subprocess.run(
        [ansible_playbook(), '-i', 'localhost,', '-c', 'local', '-e', '@%s' % vars_file, os.path.join(PLAYBOOKS, name)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=600)
    return completed.returncode, completed.stdout


def recap(output):
    """The counters of the localhost line of the PLAY RECAP."""
    match = re.search(r'^localhost\s+:\s+(.*)$', output, re.MULTILINE)
    assert match, output[-3000:]
    return dict((key, int(value)) for key, value in re.findall(r'(\w+)=(\d+)', match.group(1)))


def assert_ok(rc, output):
    assert rc == 0, output[-6000:]
    counts = recap(output)
    assert counts['failed'] == 0 and counts['unreachable'] == 0, output[-6000:]
    return counts


def test_folder(grafana, tmp_path):
    rc, output = run_playbook(grafana, 'folder.yml', tmp_path)
    assert_ok(rc, output)
    assert grafana.get('/api/folders/it-folder')[0] == 404


def test_datasource(grafana, tmp_path):
    rc, output = run_playbook(grafana, 'datasource.yml', tmp_path)
    assert_ok(rc, output)
    assert 'it-secret-password' not in output
    assert grafana.get('/api/datasources/uid/it-prom')[0] == 404
    status, provisioned = grafana.get('/api/datasources/uid/it-provisioned')
    assert status == 200 and provisioned['readOnly'] is True
    assert provisioned['url'] == 'http://127.0.0.1:9091'


def test_dashboard(grafana, tmp_path, files_server):
    rc, output = run_playbook(grafana, 'dashboard.yml', tmp_path, files_url=files_server)
    assert_ok(rc, output)
    assert grafana.get('/api/dashboards/uid/it-dash')[0] == 404
    assert grafana.get('/api/dashboards/uid/it-bad')[0] == 404
    assert grafana.get('/api/dashboards/uid/it-exported-missing')[0] == 404
    status, from_url = grafana.get('/api/dashboards/uid/it-from-url')
    assert status == 200 and from_url['dashboard']['title'] == 'IT dashboard'


def test_project_dashboards_idempotent(grafana, tmp_path):
    files = sorted(name for name in os.listdir(DASHBOARDS_DIR) if name.endswith('.json')) if os.path.isdir(DASHBOARDS_DIR) else []
    if not files:
        pytest.skip('no dashboards in %s' % DASHBOARDS_DIR)
    extra = {'dashboards_dir': DASHBOARDS_DIR, 'dashboard_files': files}
    rc, output = run_playbook(grafana, 'project_dashboards.yml', tmp_path, **extra)
    first = assert_ok(rc, output)
    assert first['changed'] == 3, output[-3000:]  # data source, folder, the dashboards loop
    rc, output = run_playbook(grafana, 'project_dashboards.yml', tmp_path, **extra)
    second = assert_ok(rc, output)
    assert second['changed'] == 0, output[-6000:]
    for name in files:
        with open(os.path.join(DASHBOARDS_DIR, name)) as handle:
            model = json.load(handle)
        status, stored = grafana.get('/api/dashboards/uid/%s' % model['uid'])
        assert status == 200, stored
        assert stored['meta']['folderUid'] == 'vllm'
        assert stored['dashboard']['version'] == 1
        assert len(stored['dashboard']['panels']) == len(model['panels'])
    # a restart keeps the state (the double persists under its data path) and the run stays unchanged
    grafana.stop()
    restarted = Grafana.__new__(Grafana)
    restarted.__dict__.update(grafana.__dict__)
    restarted.log = open(os.path.join(grafana.root, 'grafana.log'), 'a')
    restarted.process = subprocess.Popen([sys.executable, DOUBLE, '--config', grafana.ini],
                                         stdout=restarted.log, stderr=subprocess.STDOUT)
    restarted.wait_healthy()
    grafana.process, grafana.log = restarted.process, restarted.log
    rc, output = run_playbook(grafana, 'project_dashboards.yml', tmp_path, **extra)
    assert assert_ok(rc, output)['changed'] == 0, output[-6000:]
