# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from unittest import mock
from urllib.error import URLError

import pytest

from ansible_collections.llmops.vllm.plugins.module_utils import vllm_api
from ansible_collections.llmops.vllm.plugins.module_utils.prometheus_text import parse
from ansible_collections.llmops.vllm.plugins.module_utils.vllm_api import (
    VllmApiError,
    VllmAuthError,
    VllmClient,
    VllmUnreachableError,
    collect_info,
    detect_schema,
    summarize_metrics,
)
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.utils import FakeVllmServer

OPEN_URL = 'ansible_collections.llmops.vllm.plugins.module_utils.http_util.open_url'
BASE = 'http://127.0.0.1:8000'


def refused():
    return URLError(ConnectionRefusedError(111, 'Connection refused'))


@pytest.fixture
def server(v1_metrics_text):
    fake = FakeVllmServer(metrics_text=v1_metrics_text)
    with mock.patch(OPEN_URL, new=fake):
        yield fake


# ---------------------------------------------------------------- client

@pytest.mark.parametrize('given, expected', [
    ('http://127.0.0.1:8000', 'http://127.0.0.1:8000'),
    ('http://127.0.0.1:8000/', 'http://127.0.0.1:8000'),
    ('http://127.0.0.1:8000/v1', 'http://127.0.0.1:8000'),
    ('https://gw.example.com/vllm/a/v1/', 'https://gw.example.com/vllm/a'),
])
def test_base_url_normalised(given, expected):
    client = VllmClient(given)
    assert client.base_url == expected
    assert client.url_for('/health') == expected + '/health'


@pytest.mark.parametrize('url', ['127.0.0.1:8000', 'ftp://host', ''])
def test_base_url_needs_http_scheme(url):
    with pytest.raises(ValueError, match='http:// or https://'):
        VllmClient(url)


def test_health_version_models_metrics(server):
    client = VllmClient(BASE, timeout=3, validate_certs=False)
    assert client.health() == 200
    assert client.version() == '0.32.0'
    assert client.models() == ['tiny']
    assert client.models_raw()[0]['owned_by'] == 'vllm'
    families = client.metrics()
    assert families['vllm:num_requests_running']['samples'][0]['value'] == 0.0
    assert client.metrics_text().startswith('# HELP python_gc_objects_collected_total')
    assert server.paths == ['/health', '/version', '/v1/models', '/v1/models', '/metrics', '/metrics']
    for url, kwargs in server.calls:
        assert url.startswith(BASE + '/')
        assert kwargs['timeout'] == 3
        assert kwargs['validate_certs'] is False
        assert kwargs['method'] == 'GET'
        assert 'Authorization' not in kwargs['headers']


def test_api_key_sent_as_bearer(v1_metrics_text):
    fake = FakeVllmServer(metrics_text=v1_metrics_text, api_key='s3cret')
    with mock.patch(OPEN_URL, new=fake):
        assert VllmClient(BASE, api_key='s3cret').models() == ['tiny']
    assert fake.calls[0][1]['headers']['Authorization'] == 'Bearer s3cret'


@pytest.mark.parametrize('api_key', [None, 'wrong'])
def test_models_401_is_auth_error(v1_metrics_text, api_key):
    fake = FakeVllmServer(metrics_text=v1_metrics_text, api_key='s3cret')
    with mock.patch(OPEN_URL, new=fake):
        with pytest.raises(VllmAuthError) as excinfo:
            VllmClient(BASE, api_key=api_key).models()
    err = excinfo.value
    assert isinstance(err, VllmApiError)
    assert err.status == 401
    assert err.url == BASE + '/v1/models'
    assert err.body == '{"error":"Unauthorized"}'
    assert 'API key was missing or wrong' in str(err)
    assert BASE + '/v1/models' in str(err)


@pytest.mark.parametrize('status', [503, 500, 404])
def test_health_returns_any_http_status(status):
    with mock.patch(OPEN_URL, new=FakeVllmServer(routes={'/health': (status, '')})):
        assert VllmClient(BASE).health() == status


def test_connection_refused_is_unreachable():
    with mock.patch(OPEN_URL, side_effect=refused()):
        with pytest.raises(VllmUnreachableError) as excinfo:
            VllmClient('http://10.1.2.3:8000').health()
    assert excinfo.value.url == 'http://10.1.2.3:8000/health'
    assert excinfo.value.status is None
    assert 'http://10.1.2.3:8000/health' in str(excinfo.value)
    assert 'not reachable' in str(excinfo.value)
    assert 'Connection refused' in str(excinfo.value)


@pytest.mark.parametrize('exc', [
    socket.timeout('timed out'),
    URLError(socket.timeout('timed out')),
])
def test_timeout_is_unreachable(exc):
    with mock.patch(OPEN_URL, side_effect=exc):
        with pytest.raises(VllmUnreachableError, match=r'http://h:8000/version did not answer within 2 seconds'):
            VllmClient('http://h:8000', timeout=2).version()


def test_dns_failure_and_reset_are_unreachable():
    with mock.patch(OPEN_URL, side_effect=URLError(socket.gaierror(-2, 'Name or service not known'))):
        with pytest.raises(VllmUnreachableError, match='Name or service not known'):
            VllmClient('http://nohost:8000').health()
    with mock.patch(OPEN_URL, side_effect=ConnectionResetError(104, 'Connection reset by peer')):
        with pytest.raises(VllmUnreachableError, match='reset'):
            VllmClient('http://h:8000').health()


def test_tls_failure_is_an_error_not_unreachable():
    exc = URLError(ssl.SSLCertVerificationError(1, 'certificate verify failed'))
    with mock.patch(OPEN_URL, side_effect=exc):
        with pytest.raises(VllmApiError) as excinfo:
            VllmClient('https://h:8000').health()
    assert not isinstance(excinfo.value, VllmUnreachableError)
    assert 'validate_certs' in str(excinfo.value)
    assert 'https://h:8000/health' in str(excinfo.value)


def test_http_error_carries_url_status_body():
    with mock.patch(OPEN_URL, new=FakeVllmServer(routes={'/version': (500, 'Internal Server Error')})):
        with pytest.raises(VllmApiError) as excinfo:
            VllmClient(BASE).version()
    err = excinfo.value
    assert (err.url, err.status, err.body) == (BASE + '/version', 500, 'Internal Server Error')
    assert str(err) == 'HTTP 500 from %s/version: Internal Server Error' % BASE
    assert err.to_dict() == {'url': BASE + '/version', 'status': 500, 'body': 'Internal Server Error'}


@pytest.mark.parametrize('path, body, call', [
    ('/version', 'not json', 'version'),
    ('/version', '{"v": 1}', 'version'),
    ('/v1/models', '[]', 'models'),
    ('/metrics', 'm{a="1" 2\n', 'metrics'),
])
def test_unusable_answers(path, body, call):
    with mock.patch(OPEN_URL, new=FakeVllmServer(routes={path: (200, body)})):
        with pytest.raises(VllmApiError) as excinfo:
            getattr(VllmClient(BASE), call)()
    assert excinfo.value.status == 200
    assert excinfo.value.url == BASE + path
    assert excinfo.value.body


def test_metrics_parse_error_names_line():
    with mock.patch(OPEN_URL, new=FakeVllmServer(routes={'/metrics': (200, 'ok 1\nbad value\n')})):
        with pytest.raises(VllmApiError, match=r'cannot parse the metrics from http://127.0.0.1:8000/metrics: line 2: '):
            VllmClient(BASE).metrics()


# ---------------------------------------------------------------- metrics summary

def test_summarize_v1_sample(v1_metrics_text):
    schema, summary = summarize_metrics(parse(v1_metrics_text))
    assert schema == 'v1'
    expected_model = {
        'num_requests_running': 0.0,
        'num_requests_waiting': 0.0,
        'kv_cache_usage_perc': 0.0,
        'generation_tokens_total': 627.0,
        'prompt_tokens_total': 83.0,
        'request_success_total': {'stop': 1.0, 'length': 20.0, 'abort': 0.0, 'error': 0.0, 'repetition': 0.0},
    }
    assert summary['per_model'] == {'tiny': expected_model}
    assert dict((k, v) for k, v in summary.items() if k != 'per_model') == expected_model


def test_summarize_v0_sample(v0_metrics_text):
    families = parse(v0_metrics_text)
    assert detect_schema(families) == 'v0'
    schema, summary = summarize_metrics(families)
    assert schema == 'v0'
    model = 'meta-llama/Llama-3.1-8B-Instruct'
    assert summary['num_requests_running'] == 0.0
    assert summary['num_requests_waiting'] == 0.0
    assert summary['kv_cache_usage_perc'] == 0.0   # from vllm:gpu_cache_usage_perc
    assert summary['generation_tokens_total'] == 0.0
    assert summary['prompt_tokens_total'] == 0.0
    assert 'request_success_total' not in summary  # the V0 sample has none
    assert list(summary['per_model']) == [model]
    assert summary['per_model'][model]['kv_cache_usage_perc'] == 0.0


MULTI_ENGINE = """\
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="a"} 3.0
vllm:num_requests_running{engine="1",model_name="a"} 2.0
vllm:num_requests_running{engine="0",model_name="b"} 1.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="a"} 4.0
vllm:num_requests_waiting{engine="1",model_name="a"} 0.0
vllm:num_requests_waiting{engine="0",model_name="b"} 7.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="a"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="a"} 0.75
vllm:kv_cache_usage_perc{engine="0",model_name="b"} 0.5
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="a"} 10.0
vllm:generation_tokens_total{engine="1",model_name="a"} 20.0
vllm:generation_tokens_total{engine="0",model_name="b"} 5.0
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="a"} 1.0
vllm:request_success_total{engine="1",finished_reason="stop",model_name="a"} 2.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="b"} 4.0
"""


def test_summarize_sums_engines_per_model():
    schema, summary = summarize_metrics(parse(MULTI_ENGINE))
    assert schema == 'v1'
    assert summary['per_model']['a']['num_requests_running'] == 5.0
    assert summary['per_model']['a']['num_requests_waiting'] == 4.0
    assert summary['per_model']['a']['kv_cache_usage_perc'] == 0.75   # highest engine
    assert summary['per_model']['a']['generation_tokens_total'] == 30.0
    assert summary['per_model']['a']['prompt_tokens_total'] is None
    assert summary['per_model']['a']['request_success_total'] == {'stop': 3.0}
    assert summary['per_model']['b']['request_success_total'] == {'length': 4.0}
    assert summary['num_requests_running'] == 6.0
    assert summary['num_requests_waiting'] == 11.0
    assert summary['kv_cache_usage_perc'] == 0.75
    assert summary['generation_tokens_total'] == 35.0
    assert summary['prompt_tokens_total'] is None
    assert summary['request_success_total'] == {'stop': 3.0, 'length': 4.0}


def test_schema_detection_edge_cases():
    # early V1 releases still called the KV gauge gpu_cache_usage_perc, with an engine label
    early_v1 = parse('vllm:gpu_cache_usage_perc{engine="0",model_name="m"} 0.5\n')
    assert detect_schema(early_v1) == 'v1'
    schema, summary = summarize_metrics(early_v1)
    assert (schema, summary['kv_cache_usage_perc']) == ('v1', 0.5)
    assert detect_schema(parse('process_open_fds 3\n')) is None
    schema, summary = summarize_metrics(parse('process_open_fds 3\n'))
    assert schema is None
    assert summary['num_requests_running'] is None
    assert summary['per_model'] == {}


# ---------------------------------------------------------------- collect_info

def test_collect_info_all(server):
    info, unreachable, warnings = collect_info(VllmClient(BASE))
    assert unreachable is None
    assert warnings == []
    assert info['reachable'] is True
    assert info['healthy'] is True
    assert info['health_status'] == 200
    assert info['version'] == '0.32.0'
    assert info['models'] == ['tiny']
    assert info['metrics_schema'] == 'v1'
    assert info['metrics']['num_requests_running'] == 0.0


def test_collect_info_subset(server):
    info, unreachable, dummy = collect_info(VllmClient(BASE), ['version'])
    assert unreachable is None
    assert server.paths == ['/version']
    assert info == dict(vllm_api.empty_info(), reachable=True, healthy=None, version='0.32.0')


def test_collect_info_unreachable_stops_at_first_request():
    with mock.patch(OPEN_URL, side_effect=refused()) as open_url:
        info, unreachable, dummy = collect_info(VllmClient(BASE))
    assert open_url.call_count == 1
    assert isinstance(unreachable, VllmUnreachableError)
    assert info == vllm_api.empty_info()


def test_collect_info_unhealthy_turns_errors_into_warnings(v1_metrics_text):
    fake = FakeVllmServer(metrics_text=v1_metrics_text, routes={
        '/health': (503, ''),
        '/v1/models': (500, 'engine dead'),
    })
    with mock.patch(OPEN_URL, new=fake):
        info, unreachable, warnings = collect_info(VllmClient(BASE))
    assert unreachable is None
    assert info['reachable'] is True
    assert info['healthy'] is False
    assert info['health_status'] == 503
    assert info['version'] == '0.32.0'
    assert info['models'] == []
    assert info['metrics_schema'] == 'v1'
    assert len(warnings) == 1
    assert 'HTTP 503' in warnings[0] and 'engine dead' in warnings[0]


def test_collect_info_unhealthy_still_raises_auth_errors(v1_metrics_text):
    fake = FakeVllmServer(metrics_text=v1_metrics_text, api_key='k', routes={'/health': (503, '')})
    with mock.patch(OPEN_URL, new=fake):
        with pytest.raises(VllmAuthError):
            collect_info(VllmClient(BASE))


def test_collect_info_healthy_raises_other_errors():
    with mock.patch(OPEN_URL, new=FakeVllmServer(routes={'/version': (500, 'boom')})):
        with pytest.raises(VllmApiError, match='HTTP 500'):
            collect_info(VllmClient(BASE))


# ---------------------------------------------------------------- real sockets, real open_url

@pytest.fixture
def live_server(v1_metrics_text, monkeypatch):
    """A tiny HTTP server on 127.0.0.1 answering like vLLM (with --api-key k)."""
    for var in ('http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY'):
        monkeypatch.delenv(var, raising=False)
    routes = {
        '/health': (200, 'text/plain', ''),
        '/version': (200, 'application/json', '{"version": "0.32.0"}'),
        '/v1/models': (200, 'application/json', '{"object": "list", "data": [{"id": "tiny", "object": "model"}]}'),
        '/metrics': (200, 'text/plain; version=0.0.4; charset=utf-8', v1_metrics_text),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # pylint: disable=invalid-name
            status, ctype, body = routes.get(self.path, (404, 'application/json', '{"detail":"Not Found"}'))
            if self.path.startswith('/v1/') and self.headers.get('Authorization') != 'Bearer k':
                status, ctype, body = 401, 'application/json', '{"error":"Unauthorized"}'
            data = body.encode('utf-8')
            self.send_response(status)
            self.send_header('Content-Type', ctype)
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # pylint: disable=arguments-differ
            pass

    httpd = HTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield 'http://127.0.0.1:%d' % httpd.server_address[1], routes
    finally:
        httpd.shutdown()
        httpd.server_close()


def free_port():
    """A local port that nothing listens on (just released)."""
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_live_server_through_open_url(live_server):
    url, routes = live_server
    info, unreachable, warnings = collect_info(VllmClient(url, api_key='k', timeout=5))
    assert (unreachable, warnings) == (None, [])
    assert info['healthy'] is True
    assert info['version'] == '0.32.0'
    assert info['models'] == ['tiny']
    assert info['metrics_schema'] == 'v1'
    assert info['metrics']['generation_tokens_total'] == 627.0

    with pytest.raises(VllmAuthError, match='API key was missing or wrong'):
        VllmClient(url, timeout=5).models()
    routes['/health'] = (503, 'text/plain', '')
    assert VllmClient(url, timeout=5).health() == 503


def test_live_connection_refused(monkeypatch):
    for var in ('http_proxy', 'HTTP_PROXY', 'all_proxy', 'ALL_PROXY'):
        monkeypatch.delenv(var, raising=False)
    url = 'http://127.0.0.1:%d' % free_port()
    with pytest.raises(VllmUnreachableError) as excinfo:
        VllmClient(url, timeout=5).health()
    assert url + '/health' in str(excinfo.value)
    assert 'refused' in str(excinfo.value).lower()
