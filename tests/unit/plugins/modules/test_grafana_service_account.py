# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import time
from unittest import mock

import pytest
from ansible.module_utils import basic

from ansible_collections.llmops.vllm.plugins.modules import grafana_service_account
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.grafana_fake import grafana_runner
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.utils import failed, ok

run = grafana_runner(grafana_service_account.main)

SA = {'name': 'ansible-dashboards', 'role': 'Editor'}
DAY = 86400
# the role's defaults: 30 days, replaced 7 days before the end
ROTATE = dict(SA, token_name='ansible', token_seconds_to_live=30 * DAY, token_rotate_before=7 * DAY)


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
    assert again['token'] == {'id': token['id'], 'name': 'ansible', 'key': None, 'created': False, 'expiration': None,
                              'reason': None, 'replaced': [], 'key_accepted': None}
    assert token['key'] not in json.dumps(again)


def test_check_mode(fake):
    result = ok(run(fake, check=True, diff=True, token_name='ansible', **SA))
    assert result['changed'] is True and fake.writes == []
    assert result['service_account']['id'] is None
    assert result['token']['created'] is True and result['token']['key'] is None
    assert result['diff'] == {'before': {}, 'after': {'name': 'ansible-dashboards', 'role': 'Editor', 'isDisabled': False,
                                                      'token': {'name': 'ansible', 'expiration': None}}}


def test_role_change_and_missing_token(fake):
    account = fake.add_service_account('ansible-dashboards', role='Viewer')
    result = ok(run(fake, diff=True, token_name='ci', token_seconds_to_live=3600, **SA))
    assert result['changed'] is True
    assert fake.writes == [('PATCH', '/api/serviceaccounts/%d' % account['id']),
                           ('POST', '/api/serviceaccounts/%d/tokens' % account['id'])]
    assert [b for m, p, b in fake.calls if m == 'PATCH'] == [{'role': 'Editor', 'isDisabled': False}]
    assert [b for m, p, b in fake.calls if m == 'POST'] == [{'name': 'ci', 'secondsToLive': 3600}]
    assert result['diff']['before']['role'] == 'Viewer' and result['diff']['after']['role'] == 'Editor'
    assert abs(grafana_service_account.parse_expiration(result['token']['expiration']) - time.time() - 3600) < 5


def test_expired_token_is_replaced(fake):
    account = fake.add_service_account('ansible-dashboards', role='Editor')
    old = fake.add_sa_token(account['id'], 'ansible', hasExpired=True, expiration='2020-01-01T00:00:00Z')
    result = ok(run(fake, token_name='ansible', **SA))
    assert result['changed'] is True
    # the new token first (under a second name, as token names are unique), then the old one goes
    assert fake.writes == [('POST', '/api/serviceaccounts/%d/tokens' % account['id']),
                           ('DELETE', '/api/serviceaccounts/%d/tokens/%d' % (account['id'], old['id']))]
    assert result['token']['key'] and result['token']['id'] != old['id']
    assert result['token']['name'].startswith('ansible-') and result['token']['reason'] == 'expired'
    assert result['token']['replaced'] == ['ansible']


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


# ---- expiry and rotation ------------------------------------------------------

def _account_with_token(fake, expires_in, name='ansible'):
    account = fake.add_service_account('ansible-dashboards', role='Editor')
    return account, fake.add_sa_token(account['id'], name, expiration=expires_in)


def test_new_token_gets_the_lifetime(fake):
    result = ok(run(fake, **ROTATE))
    assert [b for m, p, b in fake.calls if m == 'POST'][-1] == {'name': 'ansible', 'secondsToLive': 30 * DAY}
    expires = grafana_service_account.parse_expiration(result['token']['expiration'])
    assert abs(expires - time.time() - 30 * DAY) < 5


def test_token_outside_the_window_is_kept_and_key_checked(fake):
    account, token = _account_with_token(fake, 20 * DAY)
    result = ok(run(fake, check=True, diff=True, token_key=token['_key'], **ROTATE))
    assert result['changed'] is False and fake.writes == []
    assert result['token']['key_accepted'] is True and result['token']['key'] is None
    assert ('GET', '/api/user', None) in fake.calls
    assert result['diff']['before']['token'] == result['diff']['after']['token'] == {
        'name': 'ansible', 'expiration': token['expiration']}
    assert ok(run(fake, token_key=token['_key'], **ROTATE))['changed'] is False and fake.writes == []


@pytest.mark.parametrize('expires_in, reason', [
    (3 * DAY, 'expires within token_rotate_before'),
    (None, 'never expires'),
    (90 * DAY, 'outlives token_seconds_to_live'),
])
def test_token_is_rotated(fake, expires_in, reason):
    account, old = _account_with_token(fake, expires_in)
    tokens = '/api/serviceaccounts/%d/tokens' % account['id']
    preview = ok(run(fake, check=True, diff=True, token_key=old['_key'], **ROTATE))
    assert preview['changed'] is True and fake.writes == []
    assert preview['token']['created'] is True and preview['token']['key'] is None
    assert preview['token']['reason'].startswith(reason) and preview['token']['replaced'] == ['ansible']
    # in check mode the caller learns that its key still works meanwhile
    assert preview['token']['key_accepted'] is True
    assert preview['diff']['before']['token']['name'] == 'ansible'
    assert preview['diff']['after']['token']['name'].startswith('ansible-')

    result = ok(run(fake, token_key=old['_key'], **ROTATE))
    assert result['changed'] is True
    assert fake.writes == [('POST', tokens), ('DELETE', '%s/%d' % (tokens, old['id']))]
    new = result['token']
    assert new['key'].startswith('glsa_') and new['key'] != old['_key'] and new['name'].startswith('ansible-')
    assert [t['name'] for t in fake.sa_tokens[account['id']]] == [new['name']]
    assert failed(run(fake, name='x', token=old['_key']))['status'] == 401
    # the next run keeps the new token (its rotated name is still the task's token)
    fake.calls[:] = []
    again = ok(run(fake, token_key=new['key'], **ROTATE))
    assert again['changed'] is False and fake.writes == [] and again['token']['name'] == new['name']
    # and the rotation after that goes back to the plain name
    fake.sa_tokens[account['id']][0]['expiration'] = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(time.time() + DAY))
    third = ok(run(fake, token_key=new['key'], **ROTATE))
    assert third['changed'] is True and third['token']['name'] == 'ansible'


def test_rejected_or_foreign_key_gets_a_new_token(fake):
    account, token = _account_with_token(fake, 20 * DAY)
    result = ok(run(fake, token_key='glsa_deleted_00000000', **ROTATE))
    assert result['changed'] is True and result['token']['reason'] == 'token_key rejected'
    assert result['token']['key_accepted'] is False and result['token']['key']
    # the caller lost its copy (an empty key): the token it cannot use is replaced, without asking Grafana
    fake.calls[:] = []
    result = ok(run(fake, token_key='', **ROTATE))
    assert result['token']['reason'] == 'token_key is empty (no key held)' and result['token']['key_accepted'] is False
    assert ('GET', '/api/user', None) not in fake.calls
    other = fake.add_service_account('someone-else')
    foreign = fake.add_sa_token(other['id'], 'theirs', expiration=20 * DAY)
    result = ok(run(fake, token_key=foreign['_key'], **ROTATE))
    assert result['token']['reason'] == 'token_key belongs to another account'
    assert [t['name'] for t in fake.sa_tokens[other['id']]] == ['theirs']


def test_revoked_and_duplicate_tokens_are_replaced(fake):
    account, token = _account_with_token(fake, 20 * DAY)
    token['isRevoked'] = True
    assert ok(run(fake, **ROTATE))['token']['reason'] == 'revoked'
    fake.add_sa_token(account['id'], 'ansible', expiration=20 * DAY)
    result = ok(run(fake, **ROTATE))
    assert result['token']['reason'].startswith('several tokens') and len(result['token']['replaced']) == 2
    assert len(fake.sa_tokens[account['id']]) == 1
    # tokens with other names are not the task's
    fake.add_sa_token(account['id'], 'ansible-manual', expiration=20 * DAY)
    assert ok(run(fake, **ROTATE))['changed'] is False


def test_negative_lifetime_fails_before_writing(fake):
    assert 'must be 0 or more' in failed(run(fake, **dict(ROTATE, token_rotate_before=-1)))['msg']
    assert fake.writes == []


def test_window_not_shorter_than_lifetime_warns(fake):
    warnings = []
    with mock.patch.object(basic.AnsibleModule, 'warn', side_effect=warnings.append):
        ok(run(fake, **dict(ROTATE, token_rotate_before=30 * DAY)))
    assert any('every run replaces the token' in w for w in warnings)


@pytest.mark.parametrize('text, epoch', [
    ('2026-12-28T22:31:31Z', 1798497091),
    ('2026-12-28T23:31:31+01:00', 1798497091),
    ('2026-12-28T22:31:31.123456789Z', 1798497091),
    (None, None),
    ('soon', None),
])
def test_parse_expiration(text, epoch):
    assert grafana_service_account.parse_expiration(text) == epoch
