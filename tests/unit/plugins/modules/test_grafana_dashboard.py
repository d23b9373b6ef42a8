# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
from unittest import mock

from ansible_collections.llmops.vllm.plugins.modules import grafana_dashboard
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.grafana_fake import grafana_runner
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.utils import failed, ok


MODEL = {
    'uid': 'vllm-test',
    'title': 'vLLM test ',
    'id': 42,
    'version': 7,
    'schemaVersion': 39,
    'panels': [{'id': 1, 'type': 'timeseries', 'title': 'Requests',
                'datasource': {'type': 'prometheus', 'uid': '${datasource}'},
                'targets': [{'expr': 'sum(rate(vllm:request_success_total[5m]))', 'refId': 'A'}]}],
}

EXPORTED = {
    '__inputs': [{'name': 'DS_PROMETHEUS', 'label': 'Prometheus', 'type': 'datasource', 'pluginId': 'prometheus'},
                 {'name': 'VAR_JOB', 'type': 'constant', 'value': 'vllm'}],
    '__requires': [{'type': 'datasource', 'id': 'prometheus', 'name': 'Prometheus', 'version': '1.0.0'}],
    'uid': 'exported',
    'title': 'Exported',
    'panels': [{'id': 1, 'title': 'x', 'datasource': {'type': 'prometheus', 'uid': '${DS_PROMETHEUS}'},
                'targets': [{'expr': 'up{job="${VAR_JOB}"}', 'refId': 'A'}]}],
}

run = grafana_runner(grafana_dashboard.main)


def test_create_then_repeat(fake):
    result = ok(run(fake, dashboard=MODEL))
    assert result['changed'] is True
    assert fake.writes == [('POST', '/api/dashboards/db')]
    body = fake.calls[-2][2]
    assert body['dashboard']['id'] is None
    assert 'version' not in body['dashboard']
    assert body['dashboard']['title'] == 'vLLM test'
    assert body['folderUid'] == '' and body['overwrite'] is False
    assert result['dashboard']['uid'] == 'vllm-test'
    assert result['dashboard']['version'] == 1
    assert result['dashboard']['url'].startswith('/d/vllm-test/')
    fake.calls[:] = []
    result = ok(run(fake, dashboard=MODEL))
    assert result['changed'] is False
    assert fake.writes == []
    assert fake.dashboards['vllm-test']['dashboard']['version'] == 1


def test_content_and_check_mode(fake):
    result = ok(run(fake, check=True, diff=True, content=json.dumps(MODEL)))
    assert result['changed'] is True
    assert fake.writes == [] and fake.dashboards == {}
    assert result['diff']['before'] == {}
    assert result['diff']['after']['dashboard']['title'] == 'vLLM test'
    assert 'id' not in result['diff']['after']['dashboard']
    assert result['dashboard']['version'] is None


def test_update_sends_current_version_and_diff(fake):
    ok(run(fake, dashboard=MODEL))
    fake.dashboards['vllm-test']['dashboard']['version'] = 5  # edited in the UI meanwhile
    changed = copy.deepcopy(MODEL)
    changed['panels'][0]['title'] = 'Request rate'
    fake.calls[:] = []
    result = ok(run(fake, check=True, diff=True, dashboard=changed))
    assert result['changed'] is True and fake.writes == []
    assert result['diff']['before']['dashboard']['panels'][0]['title'] == 'Requests'
    assert result['diff']['after']['dashboard']['panels'][0]['title'] == 'Request rate'
    fake.calls[:] = []
    result = ok(run(fake, dashboard=changed, commit_message='rename panel'))
    assert result['changed'] is True
    body = [b for m, p, b in fake.calls if m == 'POST'][0]
    assert body['dashboard']['version'] == 5
    assert body['message'] == 'rename panel'
    assert result['dashboard']['version'] == 6
    assert ok(run(fake, dashboard=changed))['changed'] is False


def test_folder_by_uid_and_title(fake):
    fake.folders['vllm'] = {'id': 5, 'uid': 'vllm', 'title': 'vLLM', 'version': 1}
    ok(run(fake, dashboard=MODEL))
    result = ok(run(fake, dashboard=MODEL, folder_uid='vllm'))
    assert result['changed'] is True and result['dashboard']['folder_uid'] == 'vllm'
    assert ok(run(fake, dashboard=MODEL, folder_title='vLLM'))['changed'] is False
    result = ok(run(fake, dashboard=MODEL, folder_title='General'))
    assert result['changed'] is True and result['dashboard']['folder_uid'] == ''
    result = failed(run(fake, dashboard=MODEL, folder_title='Nope'))
    assert 'No folder titled' in result['msg']


def test_missing_folder_uid_is_grafanas_error(fake):
    result = failed(run(fake, dashboard=MODEL, folder_uid='missing'))
    assert 'HTTP 400' in result['msg'] and 'folder not found' in result['msg']
    assert fake.dashboards == {}


def test_inputs_are_substituted(fake):
    result = ok(run(fake, dashboard=EXPORTED, inputs={'DS_PROMETHEUS': 'prom-uid'}))
    assert result['changed'] is True
    stored = fake.dashboards['exported']['dashboard']
    assert stored['panels'][0]['datasource']['uid'] == 'prom-uid'
    assert stored['panels'][0]['targets'][0]['expr'] == 'up{job="vllm"}'
    assert '__inputs' not in stored and '__requires' not in stored
    assert ok(run(fake, dashboard=EXPORTED, inputs={'DS_PROMETHEUS': 'prom-uid'}))['changed'] is False
    assert ok(run(fake, dashboard=EXPORTED, inputs={'DS_PROMETHEUS': 'other'}))['changed'] is True


def test_missing_input_fails_before_writing(fake):
    result = failed(run(fake, dashboard=EXPORTED))
    assert 'DS_PROMETHEUS' in result['msg'] and 'inputs' in result['msg']
    assert fake.calls == []


def test_malformed_json_content(fake):
    result = failed(run(fake, content='{"title": "x", "panels": [', path='/ctl/files/bad.json'))
    assert 'malformed' in result['msg'] and '/ctl/files/bad.json' in result['msg']
    assert 'line 1' in result['msg']
    assert fake.calls == []


def test_malformed_json_remote_file(fake, tmp_path):
    bad = tmp_path / 'bad.json'
    bad.write_text('{"title": "x",\n "panels": [}\n')
    result = failed(run(fake, path=str(bad), remote_src=True))
    assert 'malformed' in result['msg'] and str(bad) in result['msg'] and 'line 2' in result['msg']
    assert fake.calls == []
    good = tmp_path / 'good.json'
    good.write_text(json.dumps({'dashboard': MODEL, 'meta': {'slug': 'x'}}))  # the API form is unwrapped
    assert ok(run(fake, path=str(good), remote_src=True))['dashboard']['uid'] == 'vllm-test'


def test_no_title_or_uid(fake):
    assert 'no title' in failed(run(fake, dashboard={'uid': 'a', 'title': '  '}))['msg']
    assert 'no uid' in failed(run(fake, dashboard={'title': 'a'}))['msg']
    result = ok(run(fake, dashboard={'title': 'a'}, uid='given'))
    assert result['dashboard']['uid'] == 'given'


def test_dashboard_url(fake):
    fake.external['https://dash.example.test/d.json'] = json.dumps(MODEL)
    result = ok(run(fake, dashboard_url='https://dash.example.test/d.json'))
    assert result['changed'] is True and 'vllm-test' in fake.dashboards


def test_delete(fake):
    ok(run(fake, dashboard=MODEL))
    assert ok(run(fake, check=True, uid='vllm-test', state='absent'))['changed'] is True
    assert 'vllm-test' in fake.dashboards
    result = ok(run(fake, diff=True, uid='vllm-test', state='absent'))
    assert result['changed'] is True and result['dashboard'] == {}
    assert result['diff']['after'] == {}
    assert fake.dashboards == {}
    assert ok(run(fake, uid='vllm-test', state='absent'))['changed'] is False
    # the uid can come from the content too
    ok(run(fake, dashboard=MODEL))
    assert ok(run(fake, dashboard=MODEL, state='absent'))['changed'] is True


def test_bad_token(fake):
    result = failed(run(fake, dashboard=MODEL, token='bad'))
    assert 'HTTP 401' in result['msg'] and 'Invalid API key' in result['msg']
    assert 'http://grafana.test:3000/api/dashboards/uid/vllm-test' in result['msg']
    assert fake.dashboards == {}


def test_retry_then_success(fake):
    from urllib.error import URLError
    fake.raise_before.append(URLError(ConnectionRefusedError(111, 'Connection refused')))
    with mock.patch('time.sleep') as slept:
        result = ok(run(fake, dashboard=MODEL, retry_delay=0.25))
    assert result['changed'] is True
    slept.assert_called_once_with(0.25)
