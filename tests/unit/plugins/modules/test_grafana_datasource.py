# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.llmops.vllm.plugins.modules import grafana_datasource
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.grafana_fake import grafana_runner
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.utils import failed, ok

PROM = {'uid': 'prometheus', 'name': 'Prometheus', 'type': 'prometheus', 'datasource_url': 'http://127.0.0.1:9090',
        'json_data': {'httpMethod': 'POST', 'timeInterval': '15s'}}

run = grafana_runner(grafana_datasource.main)


def test_create_then_repeat(fake):
    result = ok(run(fake, **PROM))
    assert result['changed'] is True
    assert fake.writes == [('POST', '/api/datasources')]
    body = fake.calls[-1][2]
    assert body == {'uid': 'prometheus', 'name': 'Prometheus', 'type': 'prometheus', 'url': 'http://127.0.0.1:9090',
                    'access': 'proxy', 'jsonData': {'httpMethod': 'POST', 'timeInterval': '15s'}, 'database': '',
                    'user': '', 'basicAuth': False, 'basicAuthUser': '', 'withCredentials': False}
    ds = result['datasource']
    assert ds['uid'] == 'prometheus' and ds['id'] and ds['version'] == 1
    assert ds['isDefault'] is True  # Grafana makes the first data source the default
    fake.calls[:] = []
    result = ok(run(fake, **PROM))
    assert result['changed'] is False
    assert fake.writes == []


def test_check_mode_create_writes_nothing(fake):
    result = ok(run(fake, check=True, diff=True, **PROM))
    assert result['changed'] is True
    assert fake.writes == []
    assert fake.datasources == {}
    assert result['diff']['before'] == {}
    assert result['diff']['after']['url'] == 'http://127.0.0.1:9090'
    assert result['datasource']['name'] == 'Prometheus'


def test_update_and_diff(fake):
    ok(run(fake, **PROM))
    fake.calls[:] = []
    args = dict(PROM, datasource_url='http://prom:9090', json_data={'httpMethod': 'GET'})
    result = ok(run(fake, check=True, diff=True, **args))
    assert result['changed'] is True and fake.writes == []
    assert result['diff']['before']['url'] == 'http://127.0.0.1:9090'
    assert result['diff']['after']['url'] == 'http://prom:9090'
    assert result['diff']['after']['jsonData'] == {'httpMethod': 'GET'}
    assert 'id' not in result['diff']['before'] and 'version' not in result['diff']['before']
    result = ok(run(fake, **args))
    assert result['changed'] is True
    assert fake.writes == [('PUT', '/api/datasources/uid/prometheus')]
    put_body = fake.calls[-1][2]
    assert put_body['version'] == 1
    assert put_body['isDefault'] is True  # kept as Grafana has it, since is_default is not managed
    assert result['datasource']['url'] == 'http://prom:9090'
    assert result['datasource']['version'] == 2
    assert ok(run(fake, **args))['changed'] is False


def test_server_owned_fields_are_ignored(fake):
    fake.add_datasource(uid='prometheus', name='Prometheus', type='prometheus', url='http://127.0.0.1:9090',
                        jsonData={'httpMethod': 'POST', 'timeInterval': '15s'}, version=17, id=99,
                        typeLogoUrl='public/app/plugins/datasource/prometheus/img/prometheus_logo.svg')
    assert ok(run(fake, **PROM))['changed'] is False


def test_secure_json_data_on_create(fake):
    args = dict(PROM, basic_auth=True, basic_auth_user='grafana', basic_auth_password='pw1',
                secure_json_data={'httpHeaderValue1': 'tenant'})
    result = ok(run(fake, diff=True, **args))
    assert result['changed'] is True
    assert fake.datasources['prometheus']['_secrets'] == {'basicAuthPassword': 'pw1', 'httpHeaderValue1': 'tenant'}
    assert result['datasource']['secureJsonFields'] == {'basicAuthPassword': True, 'httpHeaderValue1': True}
    assert 'pw1' not in json.dumps(result) and 'tenant' not in json.dumps(result)
    assert result['diff']['after']['secureJsonData'] == {'basicAuthPassword': '********', 'httpHeaderValue1': '********'}
    # a new secret value is not detected with on_create (Grafana never returns secrets)
    fake.calls[:] = []
    result = ok(run(fake, **dict(args, basic_auth_password='pw2')))
    assert result['changed'] is False and fake.writes == []
    assert fake.datasources['prometheus']['_secrets']['basicAuthPassword'] == 'pw1'
    # a key Grafana does not have yet is sent
    result = ok(run(fake, **dict(args, secure_json_data={'httpHeaderValue1': 'x', 'httpHeaderValue2': 'new'})))
    assert result['changed'] is True
    assert [b for m, p, b in fake.calls if m == 'PUT'][-1]['secureJsonData'] == {'httpHeaderValue2': 'new'}
    assert fake.datasources['prometheus']['_secrets']['httpHeaderValue1'] == 'tenant'


def test_secure_json_data_always(fake):
    args = dict(PROM, secure_json_data={'httpHeaderValue1': 'a'}, update_secure_json_data='always')
    ok(run(fake, **args))
    result = ok(run(fake, **dict(args, secure_json_data={'httpHeaderValue1': 'b'})))
    assert result['changed'] is True
    assert fake.datasources['prometheus']['_secrets']['httpHeaderValue1'] == 'b'


def test_read_only_datasource(fake):
    fake.add_datasource(uid='prometheus', name='Prometheus', type='prometheus', url='http://old:9090', readOnly=True)
    result = failed(run(fake, **PROM))
    assert 'provisioned' in result['msg'] and 'readOnly' in result['msg']
    assert fake.writes == []
    result = failed(run(fake, check=True, uid='prometheus', state='absent'))
    assert 'delete' in result['msg']
    # matching the provisioned one is fine
    fake.datasources['prometheus'].update(url='http://127.0.0.1:9090', jsonData=PROM['json_data'])
    assert ok(run(fake, **PROM))['changed'] is False


def test_delete(fake):
    ok(run(fake, **PROM))
    assert ok(run(fake, check=True, uid='prometheus', state='absent'))['changed'] is True
    assert 'prometheus' in fake.datasources
    result = ok(run(fake, diff=True, uid='prometheus', state='absent'))
    assert result['changed'] is True and result['datasource'] == {}
    assert result['diff']['after'] == {} and result['diff']['before']['name'] == 'Prometheus'
    assert fake.datasources == {}
    assert ok(run(fake, uid='prometheus', state='absent'))['changed'] is False


def test_name_conflict_is_reported(fake):
    fake.add_datasource(uid='other', name='Prometheus', type='prometheus')
    result = failed(run(fake, **PROM))
    assert 'HTTP 409' in result['msg'] and 'same name already exists' in result['msg']
    assert 'POST http://grafana.test:3000/api/datasources' in result['msg']


def test_bad_token(fake):
    result = failed(run(fake, **dict(PROM, token='nope')))
    assert 'HTTP 401' in result['msg'] and 'Invalid API key' in result['msg']
    assert '/api/datasources/uid/prometheus' in result['msg']
    assert fake.datasources == {}


def test_is_default_moves(fake):
    ok(run(fake, **PROM))
    ok(run(fake, uid='loki', name='Loki', type='loki', is_default=True))
    assert fake.datasources['loki']['isDefault'] is True
    assert fake.datasources['prometheus']['isDefault'] is False
    assert ok(run(fake, **dict(PROM, is_default=True)))['changed'] is True
    assert ok(run(fake, **PROM))['changed'] is False
