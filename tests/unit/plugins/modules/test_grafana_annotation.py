# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from urllib.parse import parse_qs

from ansible_collections.llmops.vllm.plugins.module_utils.grafana_client import GrafanaClient
from ansible_collections.llmops.vllm.plugins.modules import grafana_annotation
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.grafana_fake import grafana_runner
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.utils import failed, ok

run = grafana_runner(grafana_annotation.main)

MARK = {'tags': ['vllm', 'rollout-42'], 'text': 'vLLM 0.32.0 rollout started'}


def test_create_then_repeat(fake):
    result = ok(run(fake, **dict(MARK, time=1738342800000)))
    assert result['changed'] is True
    assert fake.writes == [('POST', '/api/annotations')]
    body = [b for m, p, b in fake.calls if m == 'POST'][0]
    assert body == {'text': 'vLLM 0.32.0 rollout started', 'tags': ['rollout-42', 'vllm'], 'time': 1738342800000}
    get = [p for m, p, b in fake.calls if m == 'GET'][0]
    assert get == '/api/annotations'
    annotation = result['annotation']
    assert annotation['id'] and annotation['tags'] == ['rollout-42', 'vllm'] and annotation['timeEnd'] == 1738342800000
    assert result['annotation_ids'] == [annotation['id']]
    fake.calls[:] = []
    again = ok(run(fake, **dict(MARK, tags=['rollout-42', 'vllm', 'vllm'], time=1738342800000)))
    assert again['changed'] is False and fake.writes == []
    assert again['annotation']['id'] == annotation['id']


def test_query_repeats_tags():
    client = GrafanaClient({'url': 'http://g', 'token': 't'})
    url = client.url_for('api/annotations', [('tags', 'a'), ('tags', 'b'), ('type', 'annotation')])
    assert parse_qs(url.split('?')[1]) == {'tags': ['a', 'b'], 'type': ['annotation']}


def test_other_tags_or_text_do_not_match(fake):
    fake.add_annotation(text='vLLM 0.32.0 rollout started', tags=['vllm', 'rollout-42', 'extra'])
    fake.add_annotation(text='other text', tags=['vllm', 'rollout-42'])
    result = ok(run(fake, **MARK))
    assert result['changed'] is True
    assert len(fake.annotations) == 3


def test_check_mode_and_diff(fake):
    result = ok(run(fake, check=True, diff=True, **dict(MARK, dashboard_uid='d1', panel_id=2)))
    assert result['changed'] is True and fake.writes == [] and fake.annotations == {}
    assert result['annotation']['id'] is None and result['annotation']['dashboardUID'] == 'd1'
    assert result['diff'] == {'before': {}, 'after': {'text': MARK['text'], 'tags': ['rollout-42', 'vllm']}}


def test_time_change_patches(fake):
    existing = fake.add_annotation(text=MARK['text'], tags=['vllm', 'rollout-42'], time=1000, timeEnd=1000)
    result = ok(run(fake, diff=True, **dict(MARK, time=1000, time_end=5000)))
    assert result['changed'] is True
    assert fake.writes == [('PATCH', '/api/annotations/%d' % existing['id'])]
    assert [b for m, p, b in fake.calls if m == 'PATCH'] == [{'time': 1000, 'timeEnd': 5000}]
    assert result['annotation']['timeEnd'] == 5000
    assert result['diff']['before']['timeEnd'] == 1000 and result['diff']['after']['timeEnd'] == 5000
    assert ok(run(fake, **dict(MARK, time=1000, time_end=5000)))['changed'] is False


def test_absent_deletes_every_match(fake):
    one = fake.add_annotation(text='a', tags=['maintenance', 'fra1'])
    two = fake.add_annotation(text='b', tags=['fra1', 'maintenance'])
    keep = fake.add_annotation(text='c', tags=['maintenance'])
    result = ok(run(fake, check=True, tags=['maintenance', 'fra1'], state='absent'))
    assert result['changed'] is True and fake.writes == []
    result = ok(run(fake, tags=['maintenance', 'fra1'], state='absent'))
    assert result['changed'] is True and result['annotation'] == {}
    assert sorted(result['annotation_ids']) == sorted([one['id'], two['id']])
    assert list(fake.annotations) == [keep['id']]
    assert ok(run(fake, tags=['maintenance', 'fra1'], state='absent'))['changed'] is False


def test_absent_with_text_only_that_one(fake):
    fake.add_annotation(text='a', tags=['t'])
    fake.add_annotation(text='b', tags=['t'])
    ok(run(fake, tags=['t'], text='a', state='absent'))
    assert [a['text'] for a in fake.annotations.values()] == ['b']


def test_errors(fake):
    assert 'text' in failed(run(fake, tags=['t']))['msg']
    assert 'at least one tag' in failed(run(fake, tags=[''], text='x'))['msg']
    result = failed(run(fake, token='bad', **MARK))
    assert 'HTTP 401' in result['msg'] and 'GET http://grafana.test:3000/api/annotations?' in result['msg']
