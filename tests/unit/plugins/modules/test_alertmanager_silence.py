# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
from unittest import mock

import pytest

from ansible_collections.llmops.vllm.plugins.module_utils import alertmanager_client as amc
from ansible_collections.llmops.vllm.plugins.modules import alertmanager_silence
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.alertmanager_fake import RECORDED_SILENCE, FakeAlertmanager
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.utils import OPEN_URL, failed, ok, run_with

URLS = ['http://am1:9093', 'http://am2:9093']
MATCHERS = [{'name': 'instance', 'value': 'gpu-3:8000'}]
TASK = {'urls': URLS, 'matchers': MATCHERS, 'comment': 'Rolling upgrade of vLLM', 'tag': 'rollout-42-batch-1',
        'duration': '30m'}


def run(am, check=False, diff=False, **args):
    return run_with(alertmanager_silence.main, args, am, check=check, diff=diff)


@pytest.fixture
def am():
    return FakeAlertmanager(URLS)


def test_create_then_find(am):
    result = ok(run(am, **TASK))
    assert result['changed'] is True
    assert am.writes == [('http://am1:9093', 'POST', '/api/v2/silences')]
    body = am.calls[-1][3]
    assert body['matchers'] == [{'name': 'instance', 'value': 'gpu-3:8000', 'isRegex': False, 'isEqual': True}]
    assert body['comment'] == 'Rolling upgrade of vLLM [rollout-42-batch-1]'
    assert body['createdBy'] == 'ansible'
    starts, ends = amc.parse_time(body['startsAt']), amc.parse_time(body['endsAt'])
    assert ends - starts == datetime.timedelta(minutes=30)
    assert result['silence_id'] == '00000000-0000-4000-8000-000000000001'
    assert result['silence_ids'] == [result['silence_id']]
    assert result['url'] == 'http://am1:9093'
    # the second run finds it (on any peer) and creates nothing
    am.calls[:] = []
    again = ok(run(am, **dict(TASK, urls=list(reversed(URLS)))))
    assert again['changed'] is False
    assert again['silence_id'] == result['silence_id']
    assert am.writes == []


def test_finds_recorded_silence_by_tag(am):
    am.add()
    result = ok(run(am, **dict(TASK, comment='another text')))
    assert result['changed'] is False
    assert result['silence_id'] == RECORDED_SILENCE['id']
    assert result['silence']['status'] == {'state': 'active'}


def test_matchers_must_all_match(am):
    am.add()
    args = dict(TASK, matchers=MATCHERS + [{'name': 'job', 'value': 'vllm'}])
    assert ok(run(am, **args))['changed'] is True


def test_expired_silence_does_not_count(am):
    am.add(status={'state': 'expired'})
    assert ok(run(am, **TASK))['changed'] is True


def test_comment_is_the_identity_without_tag(am):
    am.add(comment='Rolling upgrade of vLLM')
    args = dict(TASK, tag=None)
    assert ok(run(am, **args))['changed'] is False
    assert ok(run(am, **dict(args, comment='other')))['changed'] is True


def test_check_mode_creates_nothing(am):
    result = ok(run(am, check=True, diff=True, **TASK))
    assert result['changed'] is True
    assert result['silence_id'] is None
    assert am.writes == []
    assert result['diff']['before'] == {}
    assert result['diff']['after']['comment'] == 'Rolling upgrade of vLLM [rollout-42-batch-1]'


def test_first_peer_down_uses_next(am):
    am.down.add('http://am1:9093')
    result = ok(run(am, **TASK))
    assert result['changed'] is True
    assert result['url'] == 'http://am2:9093'
    assert am.writes == [('http://am2:9093', 'POST', '/api/v2/silences')]


def test_all_peers_down_fails(am):
    am.down.update(URLS)
    result = failed(run(am, **TASK))
    assert 'No Alertmanager answered' in result['msg']
    assert 'http://am1:9093/api/v2/silences' in result['msg'] and 'Connection refused' in result['msg']


def test_absent_expires_everywhere(am):
    am = FakeAlertmanager(URLS, gossip=False)
    am.add('http://am1:9093')
    am.add('http://am2:9093')
    result = ok(run(am, check=True, state='absent', **TASK))
    assert result['changed'] is True and am.writes == []
    result = ok(run(am, diff=True, state='absent', **TASK))
    assert result['changed'] is True
    assert result['silence_ids'] == [RECORDED_SILENCE['id']]
    assert am.writes == [('http://am1:9093', 'DELETE', '/api/v2/silence/' + RECORDED_SILENCE['id']),
                         ('http://am2:9093', 'DELETE', '/api/v2/silence/' + RECORDED_SILENCE['id'])]
    assert result['diff'] == {'before': {'silence_ids': [RECORDED_SILENCE['id']]}, 'after': {'silence_ids': []}}
    assert ok(run(am, state='absent', **TASK))['changed'] is False


def test_absent_by_id_with_a_peer_down(am):
    am.add()
    am.down.add('http://am2:9093')
    result = ok(run(am, urls=URLS, silence_id=RECORDED_SILENCE['id'], state='absent'))
    assert result['changed'] is True
    assert result['silence_id'] == RECORDED_SILENCE['id']
    assert am.stores['http://am1:9093'][RECORDED_SILENCE['id']]['status']['state'] == 'expired'


def test_expire_unknown_id_is_gone(am):
    client = amc.AlertmanagerClient('http://am1:9093', {'timeout': 5})
    with mock.patch(OPEN_URL, new=am):
        assert client.expire_silence('nope') is False


def test_ends_at_updates_existing(am):
    am.add()
    args = dict(TASK, ends_at='2099-02-01T00:00:00Z')
    result = ok(run(am, diff=True, **args))
    assert result['changed'] is True
    body = am.calls[-1][3]
    assert body['id'] == RECORDED_SILENCE['id'] and body['endsAt'] == '2099-02-01T00:00:00.000Z'
    assert result['diff'] == {'before': {'endsAt': RECORDED_SILENCE['endsAt']}, 'after': {'endsAt': '2099-02-01T00:00:00.000Z'}}
    assert ok(run(am, **dict(args, ends_at='2099-02-01T01:00:00+01:00')))['changed'] is False


def test_server_error_is_reported(am):
    result = failed(run(am, **dict(TASK, comment='', tag=None)))
    assert 'HTTP 422' in result['msg'] and 'comment in body is required' in result['msg']
    assert 'POST http://am1:9093/api/v2/silences' in result['msg']
    assert result['status'] == 422


def test_basic_auth():
    am = FakeAlertmanager(URLS, user='ops', password='pw')
    assert ok(run(am, url_username='ops', url_password='pw', **TASK))['changed'] is True
    result = failed(run(am, url_username='ops', url_password='bad', **TASK))
    assert 'HTTP 401' in result['msg']


def test_bad_duration_and_past_end(am):
    assert 'not a duration' in failed(run(am, **dict(TASK, duration='soon')))['msg']
    assert 'before it starts' in failed(run(am, **dict(TASK, ends_at='2001-01-01T00:00:00Z')))['msg']


def test_silence_id_only_for_absent(am):
    assert 'state=absent' in failed(run(am, silence_id='x', **TASK))['msg']


@pytest.mark.parametrize('text, seconds', [('30m', 1800), ('1h30m', 5400), ('90', 90), ('2d', 172800), ('500ms', 0.5)])
def test_parse_duration(text, seconds):
    assert amc.parse_duration(text) == seconds


def test_parse_time_precisions():
    assert amc.parse_time('2025-01-31T17:00:00.123456789Z') == amc.parse_time('2025-01-31T18:00:00.123456+01:00')
    assert amc.format_time(amc.parse_time('2025-01-31T17:00:00.5Z')) == '2025-01-31T17:00:00.500Z'
    with pytest.raises(ValueError):
        amc.parse_time('yesterday')
