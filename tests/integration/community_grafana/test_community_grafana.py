# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Outside clients against the Grafana test double, through real ansible-playbook runs.

The modules are community.grafana's and grafana.grafana's, as bundled in the pinned
``ansible`` package; the fixtures (tests/integration/conftest.py) start the double as
its own process on a free port. Each test asserts on the play (its own asserts and the
recap) and on what the double saw and holds afterwards.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))


def requests_seen(double):
    """(method, path, status) of every request the double logged."""
    with open(double.log_path) as handle:
        return re.findall(r'msg="Request Completed" method=(\w+) path=(\S+) status=(\d+)', handle.read())


def test_community_grafana_datasource_folder_dashboard(grafana_double, prometheus_stub, run_playbook):
    run = run_playbook(os.path.join(HERE, 'community_grafana.yml'), grafana_url=grafana_double.url,
                       grafana_token=grafana_double.token, grafana_admin_password=grafana_double.admin_password,
                       prometheus_url=prometheus_stub[0])
    assert run.rc == 0, run.output[-5000:]
    assert run.recap.get('failed') == 0 and run.recap.get('ok', 0) >= 6, run.recap
    seen = requests_seen(grafana_double)
    # the three routes these clients call besides CRUD, answered as Grafana does
    assert ('GET', '/api/user/orgs', '200') in seen
    assert ('POST', '/api/user/using/1', '200') in seen
    assert ('GET', '/api/frontend/settings', '200') in seen
    # one save and one delete of the dashboard: the unchanged run wrote nothing
    assert seen.count(('POST', '/api/dashboards/db', '200')) == 1
    assert seen.count(('DELETE', '/api/dashboards/uid/it-community', '200')) == 1
    assert seen.count(('POST', '/api/folders', '200')) == 1
    # and everything is gone again
    assert grafana_double.get('/api/datasources/uid/it-prom')[0] == 404
    assert grafana_double.get('/api/folders/it-community-folder')[0] == 404
    assert grafana_double.get('/api/dashboards/uid/it-community')[0] == 404


def test_grafana_grafana_folder_relies_on_412(grafana_double, run_playbook):
    run = run_playbook(os.path.join(HERE, 'grafana_grafana_folder.yml'), grafana_url=grafana_double.url,
                       grafana_token=grafana_double.token)
    assert run.rc == 0, run.output[-5000:]
    assert run.recap.get('failed') == 0, run.recap
    seen = requests_seen(grafana_double)
    assert seen.count(('POST', '/api/folders', '412')) == 2
    assert ('PUT', '/api/folders/it-gg-folder', '200') in seen
    assert grafana_double.get('/api/folders/it-gg-folder')[0] == 404


def test_role_checks_the_datasource_through_grafana(grafana_double, prometheus_stub, run_playbook):
    url, prometheus_requests = prometheus_stub
    for uid, target in (('it-up', url), ('it-down', 'http://127.0.0.1:1')):
        status, body = grafana_double.admin('POST', '/api/datasources', {
            'name': uid, 'uid': uid, 'type': 'prometheus', 'access': 'proxy', 'url': target})
        assert status == 200, body
    run = run_playbook(os.path.join(HERE, 'check_datasource.yml'), grafana_url=grafana_double.url,
                       grafana_token=grafana_double.token, prometheus_url=url)
    assert run.rc == 0, run.output[-5000:]
    assert run.recap.get('failed') == 0 and run.recap.get('rescued') == 1, run.recap
    # Grafana (the double) sent the health-check query to the datasource, not the controller
    assert ('POST', '/api/v1/query', 'query=1%2B1&time=4') in prometheus_requests
    seen = requests_seen(grafana_double)
    assert ('GET', '/api/datasources/uid/it-up/health', '200') in seen
    assert ('GET', '/api/datasources/uid/it-down/health', '400') in seen
