# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.llmops.vllm.plugins.modules import grafana_folder
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.grafana_fake import grafana_runner
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.utils import AnsibleFailJson, ok

run = grafana_runner(grafana_folder.main)


def test_create_then_repeat(fake):
    result = ok(run(fake, uid='vllm', title='vLLM'))
    assert result['changed'] is True
    assert fake.writes == [('POST', '/api/folders')]
    assert fake.folders['vllm']['title'] == 'vLLM'
    assert result['folder']['uid'] == 'vllm'
    assert result['folder']['version'] == 1
    fake.calls[:] = []
    result = ok(run(fake, uid='vllm', title='vLLM'))
    assert result['changed'] is False
    assert fake.writes == []


def test_check_mode_writes_nothing(fake):
    result = ok(run(fake, check=True, diff=True, uid='vllm', title='vLLM'))
    assert result['changed'] is True
    assert fake.writes == []
    assert fake.folders == {}
    assert result['diff'] == {'before': {}, 'after': {'uid': 'vllm', 'title': 'vLLM'}}
    assert result['folder']['title'] == 'vLLM'


def test_rename_sends_version_and_diff(fake):
    ok(run(fake, uid='vllm', title='vLLM'))
    fake.calls[:] = []
    result = ok(run(fake, diff=True, uid='vllm', title='vLLM fleet'))
    assert result['changed'] is True
    assert [(m, p) for m, p, b in fake.calls if m == 'PUT'] == [('PUT', '/api/folders/vllm')]
    put_body = [b for m, p, b in fake.calls if m == 'PUT'][0]
    assert put_body == {'title': 'vLLM fleet', 'version': 1, 'overwrite': False}
    assert result['diff'] == {'before': {'uid': 'vllm', 'title': 'vLLM'}, 'after': {'uid': 'vllm', 'title': 'vLLM fleet'}}
    assert result['folder']['title'] == 'vLLM fleet'
    assert result['folder']['version'] == 2


def test_no_diff_without_diff_mode(fake):
    result = ok(run(fake, uid='vllm', title='vLLM'))
    assert 'diff' not in result


def test_move_to_parent(fake):
    ok(run(fake, uid='top', title='Top'))
    ok(run(fake, uid='child', title='Child'))
    fake.calls[:] = []
    result = ok(run(fake, uid='child', title='Child', parent_uid='top'))
    assert result['changed'] is True
    assert fake.writes == [('POST', '/api/folders/child/move')]
    assert fake.folders['child']['parentUid'] == 'top'
    assert ok(run(fake, uid='child', title='Child', parent_uid='top'))['changed'] is False


def test_delete_and_repeat(fake):
    ok(run(fake, uid='vllm', title='vLLM'))
    result = ok(run(fake, check=True, uid='vllm', state='absent'))
    assert result['changed'] is True and 'vllm' in fake.folders
    result = ok(run(fake, diff=True, uid='vllm', state='absent'))
    assert result['changed'] is True
    assert result['folder'] == {}
    assert result['diff'] == {'before': {'uid': 'vllm', 'title': 'vLLM'}, 'after': {}}
    assert 'vllm' not in fake.folders
    assert ok(run(fake, uid='vllm', state='absent'))['changed'] is False


def test_bad_token(fake):
    result = run(fake, uid='vllm', title='vLLM', token='wrong')
    assert isinstance(result, AnsibleFailJson)
    msg = result.result['msg']
    assert 'http://grafana.test:3000/api/folders/vllm' in msg
    assert 'HTTP 401' in msg and 'Invalid API key' in msg
    assert result.result['status'] == 401
    assert fake.writes == []


def test_basic_auth(fake):
    result = ok(run(fake, uid='vllm', title='vLLM', token=None, url_username='admin', url_password='secret'))
    assert result['changed'] is True


def test_title_required_for_present(fake):
    result = run(fake, uid='vllm')
    assert isinstance(result, AnsibleFailJson)
    assert 'title' in result.result['msg']
