# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from unittest import mock
from urllib.error import URLError

import pytest

from ansible.module_utils import basic

from ansible_collections.llmops.vllm.plugins.modules import vllm_info
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.utils import (
    AnsibleExitJson,
    AnsibleFailJson,
    FakeVllmServer,
    patch_exit_fail,
    run_module,
    set_module_args,
)

OPEN_URL = 'ansible_collections.llmops.vllm.plugins.module_utils.http_util.open_url'
V0_MODEL = 'meta-llama/Llama-3.1-8B-Instruct'


def run(args, fake):
    """Run vllm_info with ``args`` against ``fake`` (FakeVllmServer, or a mock side_effect)."""
    if isinstance(fake, FakeVllmServer):
        patcher = mock.patch(OPEN_URL, new=fake)
    else:
        patcher = mock.patch(OPEN_URL, side_effect=fake)
    with patcher:
        return run_module(vllm_info.main, args)


def ok(result):
    assert isinstance(result, AnsibleExitJson), result.result
    assert result.result['changed'] is False
    assert 'failed' not in result.result
    return result.result


def failed(result):
    assert isinstance(result, AnsibleFailJson), result.result
    return result.result


def refused():
    return URLError(ConnectionRefusedError(111, 'Connection refused'))


def test_v1_server(v1_metrics_text):
    fake = FakeVllmServer(metrics_text=v1_metrics_text)
    result = ok(run({}, fake))
    assert fake.paths == ['/health', '/version', '/v1/models', '/metrics']
    assert all(url.startswith('http://127.0.0.1:8000/') for url, dummy in fake.calls)
    assert result['reachable'] is True
    assert result['healthy'] is True
    assert result['health_status'] == 200
    assert result['version'] == '0.32.0'
    assert result['models'] == ['tiny']
    assert result['metrics_schema'] == 'v1'
    metrics = result['metrics']
    assert metrics['num_requests_running'] == 0.0
    assert metrics['num_requests_waiting'] == 0.0
    assert metrics['kv_cache_usage_perc'] == 0.0
    assert metrics['generation_tokens_total'] == 627.0
    assert metrics['prompt_tokens_total'] == 83.0
    assert metrics['request_success_total'] == {'stop': 1.0, 'length': 20.0, 'abort': 0.0, 'error': 0.0, 'repetition': 0.0}
    assert list(metrics['per_model']) == ['tiny']
    assert metrics['per_model']['tiny']['num_requests_running'] == 0.0
    assert metrics['per_model']['tiny']['generation_tokens_total'] == 627.0
    assert metrics['per_model']['tiny']['request_success_total']['length'] == 20.0
    assert 'msg' not in result


def test_v0_server(v0_metrics_text):
    fake = FakeVllmServer(metrics_text=v0_metrics_text, version='0.6.3', models=(V0_MODEL,))
    result = ok(run({'url': 'http://gpu1:8000/'}, fake))
    assert all(url.startswith('http://gpu1:8000/') for url, dummy in fake.calls)
    assert result['healthy'] is True
    assert result['version'] == '0.6.3'
    assert result['models'] == [V0_MODEL]
    assert result['metrics_schema'] == 'v0'
    metrics = result['metrics']
    assert metrics['num_requests_running'] == 0.0
    assert metrics['num_requests_waiting'] == 0.0
    assert metrics['kv_cache_usage_perc'] == 0.0   # read from vllm:gpu_cache_usage_perc
    assert metrics['generation_tokens_total'] == 0.0
    assert metrics['prompt_tokens_total'] == 0.0
    assert 'request_success_total' not in metrics
    assert list(metrics['per_model']) == [V0_MODEL]


def test_v0_kv_usage_is_read_from_gpu_cache_gauge(v0_metrics_text):
    text = v0_metrics_text.replace(
        'vllm:gpu_cache_usage_perc{model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.0',
        'vllm:gpu_cache_usage_perc{model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.42')
    assert text != v0_metrics_text
    result = ok(run({'gather': ['metrics']}, FakeVllmServer(metrics_text=text)))
    assert result['metrics']['kv_cache_usage_perc'] == 0.42
    assert result['metrics']['per_model'][V0_MODEL]['kv_cache_usage_perc'] == 0.42


def test_unreachable_does_not_fail_by_default():
    with mock.patch(OPEN_URL, side_effect=refused()) as open_url:
        result = ok(run_module(vllm_info.main, {'url': 'http://10.9.8.7:8000'}))
    assert open_url.call_count == 1
    assert result['reachable'] is False
    assert result['healthy'] is False
    assert result['health_status'] is None
    assert result['version'] is None
    assert result['models'] == []
    assert result['metrics'] == {}
    assert result['metrics_schema'] is None
    assert 'http://10.9.8.7:8000/health' in result['msg']
    assert 'Connection refused' in result['msg']


def test_unreachable_fails_when_asked():
    result = failed(run({'url': 'http://10.9.8.7:8000', 'fail_on_unreachable': True}, refused()))
    assert 'http://10.9.8.7:8000' in result['msg']
    assert 'not reachable' in result['msg']
    assert result['reachable'] is False
    assert result['healthy'] is False


def test_unreachable_without_health_in_gather():
    result = ok(run({'gather': ['models']}, refused()))
    assert result['reachable'] is False
    assert result['healthy'] is False


def test_health_503(v1_metrics_text):
    fake = FakeVllmServer(metrics_text=v1_metrics_text, routes={'/health': (503, '')})
    result = ok(run({}, fake))
    assert result['reachable'] is True
    assert result['healthy'] is False
    assert result['health_status'] == 503
    # the API server still answers the rest
    assert result['version'] == '0.32.0'
    assert result['models'] == ['tiny']
    assert result['metrics_schema'] == 'v1'


def test_health_503_with_dead_engine_warns_instead_of_failing():
    fake = FakeVllmServer(routes={
        '/health': (503, ''),
        '/v1/models': (500, 'EngineDeadError'),
        '/metrics': (500, 'EngineDeadError'),
    })
    with mock.patch.object(basic.AnsibleModule, 'warn') as warn:
        result = ok(run({}, fake))
    assert result['healthy'] is False
    assert result['health_status'] == 503
    assert result['models'] == []
    assert result['metrics'] == {}
    assert warn.call_count == 2
    assert 'EngineDeadError' in warn.call_args_list[0][0][0]


@pytest.mark.parametrize('args', [{}, {'api_key': 'wrong'}])
def test_401_on_models_fails_naming_the_api_key(v1_metrics_text, args):
    fake = FakeVllmServer(metrics_text=v1_metrics_text, api_key='s3cret')
    result = failed(run(args, fake))
    assert 'API key was missing or wrong' in result['msg']
    assert 'http://127.0.0.1:8000/v1/models' in result['msg']
    assert result['status'] == 401
    assert result['url'] == 'http://127.0.0.1:8000/v1/models'


def test_api_key_is_sent(v1_metrics_text):
    fake = FakeVllmServer(metrics_text=v1_metrics_text, api_key='s3cret')
    result = ok(run({'api_key': 's3cret'}, fake))
    assert result['models'] == ['tiny']
    assert fake.calls[2][1]['headers']['Authorization'] == 'Bearer s3cret'
    assert 's3cret' not in repr(result)


def test_gather_subset_health_only(v1_metrics_text):
    fake = FakeVllmServer(metrics_text=v1_metrics_text)
    result = ok(run({'gather': ['health']}, fake))
    assert fake.paths == ['/health']
    assert result['healthy'] is True
    assert result['reachable'] is True
    assert result['version'] is None
    assert result['models'] == []
    assert result['metrics'] == {}
    assert result['metrics_schema'] is None


def test_gather_subset_models_and_metrics(v1_metrics_text):
    fake = FakeVllmServer(metrics_text=v1_metrics_text)
    result = ok(run({'gather': ['metrics', 'models']}, fake))
    assert fake.paths == ['/v1/models', '/metrics']
    assert result['reachable'] is True
    assert result['healthy'] is None
    assert result['health_status'] is None
    assert result['models'] == ['tiny']
    assert result['metrics']['prompt_tokens_total'] == 83.0


def test_gather_rejects_unknown_and_empty():
    result = failed(run({'gather': ['health', 'bogus']}, FakeVllmServer()))
    assert 'bogus' in result['msg']
    result = failed(run({'gather': []}, FakeVllmServer()))
    assert 'gather must name at least one' in result['msg']


def test_timeout_and_validate_certs_are_passed(v1_metrics_text):
    fake = FakeVllmServer(metrics_text=v1_metrics_text)
    ok(run({'url': 'https://vllm.example.com', 'timeout': 3, 'validate_certs': False}, fake))
    for url, kwargs in fake.calls:
        assert url.startswith('https://vllm.example.com/')
        assert kwargs['timeout'] == 3
        assert kwargs['validate_certs'] is False


def test_http_500_from_healthy_server_fails():
    result = failed(run({}, FakeVllmServer(routes={'/version': (500, 'boom')})))
    assert result['msg'] == 'HTTP 500 from http://127.0.0.1:8000/version: boom'
    assert result['status'] == 500
    assert result['body'] == 'boom'


def test_bad_url_fails():
    result = failed(run({'url': 'localhost:8000'}, FakeVllmServer()))
    assert 'http:// or https://' in result['msg']


def test_check_mode(v1_metrics_text):
    fake = FakeVllmServer(metrics_text=v1_metrics_text)
    result = ok(run({'_ansible_check_mode': True}, fake))
    assert result['healthy'] is True
    assert result['models'] == ['tiny']


def test_set_module_args_by_hand(v1_metrics_text):
    with mock.patch(OPEN_URL, new=FakeVllmServer(metrics_text=v1_metrics_text)):
        with patch_exit_fail(), set_module_args({'gather': ['version']}):
            with pytest.raises(AnsibleExitJson) as excinfo:
                vllm_info.main()
    assert excinfo.value.result['version'] == '0.32.0'
