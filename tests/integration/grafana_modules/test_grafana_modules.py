# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Integration tests of the grafana_* modules against the Grafana test double.

Each test starts nothing but what it needs: one Grafana test double
(tests/grafana_double/grafana_double.py) on a free port of 127.0.0.1 with a
temporary grafana.ini, data and provisioning directory (here with one
read-only data source), a service account token made through the double's
API, and real ``ansible-playbook`` runs of the playbooks in playbooks/
against localhost (connection local); the fixtures are those of
tests/integration/conftest.py. The playbooks assert on the module results and
read the objects back through the API; the tests check the exit codes, the
play recap and the state.

Run: ``pytest tests/integration/grafana_modules`` from the repository root,
with ansible-playbook next to the running Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import functools
import http.server
import json
import os
import threading

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
PLAYBOOKS = os.path.join(HERE, 'playbooks')
DASHBOARDS_DIR = os.path.join(REPO, 'roles', 'grafana', 'files', 'dashboards')


@pytest.fixture
def grafana_provisioning():
    """A provisioned (read-only) data source, which datasource.yml must leave alone."""
    return {'datasources/it.yaml': 'apiVersion: 1\ndatasources:\n'
                                   '  - name: IT provisioned\n    uid: it-provisioned\n    type: prometheus\n'
                                   '    access: proxy\n    url: http://127.0.0.1:9091\n    editable: false\n'}


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


def run(run_playbook, grafana, name, **extra_vars):
    """Run playbooks/<name> against localhost with the double's URL, token and admin password."""
    variables = {'grafana_url': grafana.url, 'grafana_token': grafana.token,
                 'grafana_admin_password': grafana.admin_password}
    variables.update(extra_vars)
    return run_playbook(os.path.join(PLAYBOOKS, name), **variables)


def assert_ok(result):
    assert result.rc == 0, result.output[-6000:]
    counts = result.recap
    assert counts, result.output[-3000:]
    assert counts['failed'] == 0 and counts['unreachable'] == 0, result.output[-6000:]
    return counts


def test_folder(grafana_double, run_playbook):
    assert_ok(run(run_playbook, grafana_double, 'folder.yml'))
    assert grafana_double.get('/api/folders/it-folder')[0] == 404


def test_datasource(grafana_double, run_playbook):
    result = run(run_playbook, grafana_double, 'datasource.yml')
    assert_ok(result)
    assert 'it-secret-password' not in result.output
    assert grafana_double.get('/api/datasources/uid/it-prom')[0] == 404
    status, provisioned = grafana_double.get('/api/datasources/uid/it-provisioned')
    assert status == 200 and provisioned['readOnly'] is True
    assert provisioned['url'] == 'http://127.0.0.1:9091'


def test_dashboard(grafana_double, run_playbook, files_server):
    assert_ok(run(run_playbook, grafana_double, 'dashboard.yml', files_url=files_server))
    assert grafana_double.get('/api/dashboards/uid/it-dash')[0] == 404
    assert grafana_double.get('/api/dashboards/uid/it-bad')[0] == 404
    assert grafana_double.get('/api/dashboards/uid/it-exported-missing')[0] == 404
    status, from_url = grafana_double.get('/api/dashboards/uid/it-from-url')
    assert status == 200 and from_url['dashboard']['title'] == 'IT dashboard'


def test_project_dashboards_idempotent(grafana_double, run_playbook):
    files = sorted(name for name in os.listdir(DASHBOARDS_DIR) if name.endswith('.json')) if os.path.isdir(DASHBOARDS_DIR) else []
    if not files:
        pytest.skip('no dashboards in %s' % DASHBOARDS_DIR)
    extra = {'dashboards_dir': DASHBOARDS_DIR, 'dashboard_files': files}
    result = run(run_playbook, grafana_double, 'project_dashboards.yml', **extra)
    assert assert_ok(result)['changed'] == 3, result.output[-3000:]  # data source, folder, the dashboards loop
    result = run(run_playbook, grafana_double, 'project_dashboards.yml', **extra)
    assert assert_ok(result)['changed'] == 0, result.output[-6000:]
    for name in files:
        with open(os.path.join(DASHBOARDS_DIR, name)) as handle:
            model = json.load(handle)
        status, stored = grafana_double.get('/api/dashboards/uid/%s' % model['uid'])
        assert status == 200, stored
        assert stored['meta']['folderUid'] == 'vllm'
        assert stored['dashboard']['version'] == 1
        assert len(stored['dashboard']['panels']) == len(model['panels'])
    # a restart keeps the state (the double persists under its data path) and the run stays unchanged
    grafana_double.restart()
    result = run(run_playbook, grafana_double, 'project_dashboards.yml', **extra)
    assert assert_ok(result)['changed'] == 0, result.output[-6000:]
