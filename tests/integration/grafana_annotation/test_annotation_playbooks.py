# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""llmops.vllm.grafana_annotation and the grafana role's `annotate` entry point,
through real ansible-playbook runs against the Grafana test double (fixtures
in tests/integration/conftest.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

HERE = os.path.dirname(os.path.abspath(__file__))


def test_module_create_repeat_check_mode_find_delete(grafana_double, run_playbook):
    run = run_playbook(os.path.join(HERE, 'module.yml'), grafana_url=grafana_double.url,
                       grafana_token=grafana_double.token)
    assert run.rc == 0, run.output[-6000:]
    assert run.recap['failed'] == 0
    status, items = grafana_double.get('/api/annotations')
    assert status == 200 and [a['tags'] for a in items] == [['it', 'it-run-2']]


def entry_point_annotations(grafana_double):
    status, items = grafana_double.get('/api/annotations?tags=it-entry')
    assert status == 200, items
    return items


def test_entry_point_with_a_token(grafana_double, run_playbook):
    run = run_playbook(os.path.join(HERE, 'entry_point.yml'), with_grafana=True, grafana_url=grafana_double.url,
                       grafana_token=grafana_double.token)
    assert run.rc == 0, run.output[-6000:]
    assert 'WARNING] Grafana annotation' not in run.output, run.output[-6000:]
    items = entry_point_annotations(grafana_double)
    assert [(a['text'], a['time'], a['timeEnd']) for a in items] == [('IT load test', 1700000000000, 1700000300000)]
    # Run again: the same annotation, not another one.
    run = run_playbook(os.path.join(HERE, 'entry_point.yml'), with_grafana=True, grafana_url=grafana_double.url,
                       grafana_token=grafana_double.token)
    assert run.rc == 0 and run.recap['changed'] == 0, run.output[-6000:]
    assert len(entry_point_annotations(grafana_double)) == 1


def test_entry_point_with_the_stored_token(grafana_double, run_playbook, tmp_path):
    token_file = tmp_path / 'grafana.token'
    token_file.write_text(grafana_double.token + '\n')
    run = run_playbook(os.path.join(HERE, 'entry_point.yml'), with_grafana=True, grafana_url=grafana_double.url,
                       token_file=str(token_file))
    assert run.rc == 0, run.output[-6000:]
    assert len(entry_point_annotations(grafana_double)) == 1


def test_entry_point_never_fails_the_play(grafana_double, run_playbook, tmp_path):
    # A rejected token: a warning, and the play goes on.
    run = run_playbook(os.path.join(HERE, 'entry_point.yml'), with_grafana=True, grafana_url=grafana_double.url,
                       grafana_token='glsa_wrong_00000000')
    assert run.rc == 0, run.output[-6000:]
    assert run.recap['failed'] == 0 and 'after the annotation' in run.output
    assert '[WARNING] Grafana annotation "IT load test" was not written' in run.output and 'HTTP 401' in run.output
    # No token anywhere.
    run = run_playbook(os.path.join(HERE, 'entry_point.yml'), with_grafana=True, grafana_url=grafana_double.url,
                       token_file=str(tmp_path / 'missing.token'))
    assert run.rc == 0 and 'after the annotation' in run.output, run.output[-6000:]
    assert 'no API token' in run.output
    # Grafana unreachable.
    run = run_playbook(os.path.join(HERE, 'entry_point.yml'), with_grafana=True, grafana_url='http://127.0.0.1:9',
                       grafana_token=grafana_double.token)
    assert run.rc == 0 and 'after the annotation' in run.output, run.output[-6000:]
    assert 'was not written' in run.output
    assert entry_point_annotations(grafana_double) == []


def test_entry_point_without_a_grafana_group(grafana_double, run_playbook):
    run = run_playbook(os.path.join(HERE, 'entry_point.yml'), with_grafana=False, grafana_url=grafana_double.url,
                       grafana_token=grafana_double.token)
    assert run.rc == 0, run.output[-6000:]
    assert run.recap['failed'] == 0 and run.recap['changed'] == 0 and 'after the annotation' in run.output
    assert 'was not written' not in run.output
    assert entry_point_annotations(grafana_double) == []
