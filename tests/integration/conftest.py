# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared fixtures of the integration tests under tests/integration.

``grafana_double``: the Grafana test double (tests/grafana_double) as its own
process on a free port of 127.0.0.1, with an admin password and an Admin
service-account token; it reads the provisioning files of the
``grafana_provisioning`` fixture (none, unless a test module overrides it) and
``restart()`` starts it again on its port and data. ``run_playbook``: runs a
playbook with the project's ansible.cfg against localhost (connection local)
and returns (rc, output, recap). ``prometheus_stub``: a minimal Prometheus HTTP
API answering the query Grafana's health check sends. These never skip: a
missing tool is a failure.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import collections
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOUBLE = os.path.join(REPO, 'tests', 'grafana_double', 'grafana_double.py')
ADMIN_PASSWORD = 'it-admin-Pa55word'
PlaybookRun = collections.namedtuple('PlaybookRun', 'rc output recap')


def http_json(url, method='GET', body=None, token=None, user=None, password=None):
    """(status, parsed JSON or text) of one HTTP call."""
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
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw.strip() else None
    except ValueError:
        return status, raw.decode(errors='replace')


class GrafanaDoubleProcess:
    """The double started like the packaged service: its own process and grafana.ini.

    ``provisioning`` maps paths under the provisioning directory (such as
    ``datasources/it.yaml``) to the text of the files the double reads at start.
    """

    def __init__(self, root, provisioning=None):
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            self.port = sock.getsockname()[1]
        self.url = 'http://127.0.0.1:%d' % self.port
        self.admin_password = ADMIN_PASSWORD
        self.log_path = os.path.join(root, 'grafana.log')
        self.ini = os.path.join(root, 'grafana.ini')
        for relative, text in (provisioning or {}).items():
            path = os.path.join(root, 'provisioning', relative)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'w') as handle:
                handle.write(text)
        with open(self.ini, 'w') as handle:
            handle.write('[server]\nhttp_addr = 127.0.0.1\nhttp_port = %d\n[paths]\ndata = %s\nprovisioning = %s\n'
                         '[security]\nadmin_user = admin\nadmin_password = %s\n'
                         % (self.port, os.path.join(root, 'data'), os.path.join(root, 'provisioning'), ADMIN_PASSWORD))
        self._log = open(self.log_path, 'w')
        self._start()
        status, account = self.admin('POST', '/api/serviceaccounts', {'name': 'it', 'role': 'Admin'})
        assert status == 201, account
        status, token = self.admin('POST', '/api/serviceaccounts/%d/tokens' % account['id'], {'name': 'it'})
        assert status == 200, token
        self.token = token['key']

    def _start(self):
        self.process = subprocess.Popen([sys.executable, DOUBLE, '--config', self.ini], stdout=self._log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, 'the Grafana double exited:\n' + self.read_log()
            try:
                if http_json(self.url + '/api/health')[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, 'the Grafana double did not start:\n' + self.read_log()
            time.sleep(0.1)

    def restart(self):
        """Stop the double and start it again on the same port, grafana.ini and data (its state persists)."""
        self.stop()
        self._log = open(self.log_path, 'a')
        self._start()

    def admin(self, method, path, body=None):
        return http_json(self.url + path, method, body, user='admin', password=ADMIN_PASSWORD)

    def get(self, path):
        return http_json(self.url + path, token=self.token)

    def read_log(self):
        self._log.flush()
        with open(self.log_path) as handle:
            return handle.read()[-4000:]

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture
def grafana_provisioning():
    """{path under the provisioning directory: text} for the double to read at start; a test
    module overrides this fixture to provision data sources or dashboards."""
    return {}


@pytest.fixture
def grafana_double(tmp_path, grafana_provisioning):
    double = GrafanaDoubleProcess(str(tmp_path), grafana_provisioning)
    try:
        yield double
    finally:
        double.stop()


class _PrometheusHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self):
        length = int(self.headers.get('Content-Length') or 0)
        self.server.requests.append((self.command, self.path, self.rfile.read(length).decode()))
        if self.path.startswith('/api/v1/query'):
            payload = {'status': 'success', 'data': {'resultType': 'scalar', 'result': [4, '2']}}
        elif self.path.startswith('/api/v1/status/buildinfo'):
            payload = {'status': 'success', 'data': {'version': '2.42.0', 'features': {}}}
        else:
            self.send_error(404)
            return
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer


@pytest.fixture
def prometheus_stub():
    """A Prometheus API stand-in; yields (url, requests seen)."""
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _PrometheusHandler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield 'http://127.0.0.1:%d' % server.server_address[1], server.requests
    finally:
        server.shutdown()
        server.server_close()


def _ansible_playbook():
    candidate = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    assert os.path.exists(candidate), 'ansible-playbook is not next to %s: install requirements-dev.txt' % sys.executable
    return candidate


@pytest.fixture
def run_playbook(tmp_path):
    """run_playbook(path, **extra_vars) -> PlaybookRun(rc, output, recap), recap being the
    counters of the localhost line of the PLAY RECAP ({} when there is none)."""

    def run(path, **extra_vars):
        extra_vars.setdefault('ansible_python_interpreter', sys.executable)
        vars_file = tmp_path / ('vars-%s.json' % os.path.basename(path))
        vars_file.write_text(json.dumps(extra_vars))
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
                   ANSIBLE_FORCE_COLOR='0', ANSIBLE_LOCAL_TEMP=str(tmp_path / 'ansible-tmp'),
                   ANSIBLE_DEPRECATION_WARNINGS='0')
        for name in ('GRAFANA_URL', 'GRAFANA_TOKEN', 'GRAFANA_API_KEY'):
            env.pop(name, None)
        completed = subprocess.run(
            [_ansible_playbook(), '-i', 'localhost,', '-c', 'local', '-e', '@%s' % vars_file, path],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
            timeout=300)
        match = re.search(r'^localhost\s+:\s+(.*)$', completed.stdout, re.MULTILINE)
        counters = dict((key, int(value)) for key, value in re.findall(r'(\w+)=(\d+)', match.group(1))) \
            if match else {}
        return PlaybookRun(completed.returncode, completed.stdout, counters)

    return run
