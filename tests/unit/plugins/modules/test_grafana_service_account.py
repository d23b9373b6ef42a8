# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.llmops.vllm.plugins.modules import grafana_service_account
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.grafana_fake import grafana_runner
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.utils import failed, ok

run = grafana_runner(grafana_service_account.main)

SA = {'name': 'ansible-dashboards', 'role': 'Editor'}


def test_create_with_token_then_repeat(fake):
    result = ok(run(fake, token_name='ansible', **SA))
    assert result['changed'] is True
    assert fake.writes == [('POST', '/api/serviceaccounts'), ('POST', '/api/serviceaccounts/2/tokens')]
    assert [b for m, p, b in fake.calls if m == 'POST'] == [{'name': 'ansible-dashboards', 'role': 'Editor', 'isDisabled': False},
                                                            {'name': 'ansible'}]
    account = result['service_account']
    assert account['id'] == 2 and account['role'] == 'Editor' and account['login'] == 'sa-1-ansible-dashboards'
    token = result['token']
    assert token['created'] is True and token['key'].startswith('glsa_') and token['name'] == 'ansible'
    fake.calls[:] = []
    again = ok(run(fake, token_name='ansible', **SA))
    assert again['changed'] is False and fake.writes == []
    assert again['token'] == {'id': token['id'], 'name': 'ansible', 'key': None, 'created': False, 'expiration': None}
    assert token['key'] not in json.dumps(again)


def test_check_mode(fake):
    result = ok(run(fake, check=True, diff=True, token_name='ansible', **SA))
    assert result['changed'] is True and fake.writes == []
    assert result['service_account']['id'] is None
    assert result['token']['created'] is True and result['token']['key'] is None
    assert result['diff'] == {'before': {}, 'after': {'name': 'ansible-dashboards', 'role': 'Editor', 'isDisabled': False,
                                                      'token': 'ansible'}}


def test_role_change_and_missing_token(fake):
    account = fake.add_service_account('ansible-dashboards', role='Viewer')
    result = ok(run(fake, diff=True, token_name='ci', token_seconds_to_live=3600, **SA))
    assert result['changed'] is True
    assert fake.writes == [('PATCH', '/api/serviceaccounts/%d' % account['id']),
                           ('POST', '/api/serviceaccounts/%d/tokens' % account['id'])]
    assert [b for m, p, b in fake.calls if m == 'PATCH'] == [{'role': 'Editor', 'isDisabled': False}]
    assert [b for m, p, b in fake.calls if m == 'POST'] == [{'name': 'ci', 'secondsToLive': 3600}]
    assert result['diff']['before']['role'] == 'Viewer' and result['diff']['after']['role'] == 'Editor'
    assert result['token']['expiration'] == '2099-01-01T00:00:00Z'


def test_expired_token_is_replaced(fake):
    account = fake.add_service_account('ansible-dashboards', role='Editor')
    old = fake.add_sa_token(account['id'], 'ansible', hasExpired=True, expiration='2020-01-01T00:00:00Z')
    result = ok(run(fake, token_name='ansible', **SA))
    assert result['changed'] is True
    assert fake.writes == [('DELETE', '/api/serviceaccounts/%d/tokens/%d' % (account['id'], old['id'])),
                           ('POST', '/api/serviceaccounts/%d/tokens' % account['id'])]
    assert result['token']['key'] and result['token']['id'] != old['id']


def test_absent(fake):
    account = fake.add_service_account('ansible-dashboards')
    assert ok(run(fake, check=True, name='ansible-dashboards', state='absent'))['changed'] is True
    assert fake.writes == []
    result = ok(run(fake, name='ansible-dashboards', state='absent'))
    assert result['changed'] is True and result['service_account'] == {}
    assert fake.writes == [('DELETE', '/api/serviceaccounts/%d' % account['id'])]
    assert ok(run(fake, name='ansible-dashboards', state='absent'))['changed'] is False


def test_name_must_match_exactly(fake):
    fake.add_service_account('ansible-dashboards-old')
    result = ok(run(fake, **SA))
    assert result['changed'] is True and len(fake.service_accounts) == 2


def test_errors_name_status_and_message(fake):
    result = failed(run(fake, token='wrong', **SA))
    assert 'HTTP 401' in result['msg'] and 'api/serviceaccounts/search' in result['msg']
