# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""prometheus_query against recorded answers of Prometheus' query API.

The bodies have the shapes of the Prometheus 2.x HTTP API documentation
(https://prometheus.io/docs/prometheus/latest/querying/api/): a success
envelope with resultType and result (sample values as strings), and error
bodies with status "error", errorType and error.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import json
import math
from urllib.error import HTTPError, URLError
from urllib.parse import parse_qs, urlsplit

from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.llmops.vllm.plugins.modules import prometheus_query
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.utils import FakeResponse, failed, ok, run_with

URL = 'http://prometheus:9090'

VECTOR = {"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {"__name__": "up", "instance": "gpu-1:8000", "job": "vllm"}, "value": [1738342800.123, "1"]},
    {"metric": {"__name__": "up", "instance": "gpu-2:8000", "job": "vllm"}, "value": [1738342800.123, "0"]}]}}
ONE = {"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {}, "value": [1738342800.123, "0.0042"]}]}}
EMPTY = {"status": "success", "data": {"resultType": "vector", "result": []}}
SCALAR = {"status": "success", "data": {"resultType": "scalar", "result": [1738342800.5, "2"]}}
NAN = {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1738342800, "NaN"]}]}}
MATRIX = {"status": "success", "data": {"resultType": "matrix", "result": [
    {"metric": {"instance": "gpu-1:8000"}, "values": [[1738339200, "0.1"], [1738339500, "+Inf"]]}]}}
WARN = {"status": "success", "warnings": ["PromQL info: metric might not be a counter"],
        "data": {"resultType": "vector", "result": []}}
BAD_DATA = {"status": "error", "errorType": "bad_data",
            "error": "invalid parameter \"query\": 1:5: parse error: unexpected right parenthesis ')'"}
TIMEOUT = {"status": "error", "errorType": "timeout", "error": "query timed out in expression evaluation"}


class FakePrometheus:
    def __init__(self, status=200, body=None, exc=None, user=None, password=None):
        self.status = status
        self.body = body
        self.exc = exc
        self.user = user
        self.password = password
        self.calls = []

    def __call__(self, url, data=None, headers=None, method=None, **kwargs):
        parts = urlsplit(url)
        fields = parse_qs(data if data else parts.query)
        self.calls.append({'path': parts.path, 'method': method, 'fields': dict((k, v[0]) for k, v in fields.items()),
                           'kwargs': kwargs, 'headers': headers})
        if self.exc:
            raise self.exc
        if self.user and (kwargs.get('url_username'), kwargs.get('url_password')) != (self.user, self.password):
            raise HTTPError(url, 401, 'Unauthorized', {}, io.BytesIO(b'Unauthorized\n'))
        if self.status >= 400:
            raise HTTPError(url, self.status, 'error', {}, io.BytesIO(to_bytes(json.dumps(self.body))))
        return FakeResponse(url, self.status, json.dumps(self.body))


def run(fake, **args):
    return run_with(prometheus_query.main, dict({'url': URL}, **args), fake)


def test_vector():
    fake = FakePrometheus(body=VECTOR)
    result = ok(run(fake, query='up{job="vllm"}'))
    assert result['changed'] is False
    assert result['result_type'] == 'vector'
    assert result['result'] == [
        {'metric': {'__name__': 'up', 'instance': 'gpu-1:8000', 'job': 'vllm'}, 'value': 1.0, 'time': 1738342800.123},
        {'metric': {'__name__': 'up', 'instance': 'gpu-2:8000', 'job': 'vllm'}, 'value': 0.0, 'time': 1738342800.123}]
    assert result['value'] is None and result['series'] == 2
    assert result['url'] == URL + '/api/v1/query'
    call = fake.calls[0]
    assert call['path'] == '/api/v1/query' and call['method'] == 'GET'
    assert call['fields'] == {'query': 'up{job="vllm"}'}


def test_single_value_and_time():
    fake = FakePrometheus(body=ONE)
    result = ok(run(fake, expr='sum(rate(x[5m]))', time='2025-01-31T17:00:00Z'))
    assert result['value'] == 0.0042
    assert fake.calls[0]['fields']['time'] == '2025-01-31T17:00:00Z'


def test_scalar():
    result = ok(run(FakePrometheus(body=SCALAR), query='scalar(1+1)'))
    assert result['result'] == {'time': 1738342800.5, 'value': 2.0}
    assert result['value'] == 2.0 and result['series'] == 1


def test_nan_and_inf_are_floats():
    assert math.isnan(ok(run(FakePrometheus(body=NAN), query='0/0'))['value'])
    result = ok(run(FakePrometheus(body=MATRIX), query='x', start='1738339200', end='1738339500', step='5m'))
    assert result['result'] == [{'metric': {'instance': 'gpu-1:8000'}, 'values': [[1738339200.0, 0.1], [1738339500.0, float('inf')]]}]


def test_range_query_post():
    fake = FakePrometheus(body=MATRIX)
    result = ok(run(fake, query='rate(x[5m])', start='2025-01-31T16:00:00Z', step='60', method='POST'))
    call = fake.calls[0]
    assert call['path'] == '/api/v1/query_range' and call['method'] == 'POST'
    assert call['headers']['Content-Type'] == 'application/x-www-form-urlencoded'
    assert call['fields']['start'] == '2025-01-31T16:00:00Z' and call['fields']['step'] == '60'
    assert float(call['fields']['end']) > 1.7e9
    assert result['result_type'] == 'matrix' and result['series'] == 1


def test_empty_and_fail_on_empty():
    result = ok(run(FakePrometheus(body=EMPTY), query='absent_metric'))
    assert result['result'] == [] and result['value'] is None and result['series'] == 0
    result = failed(run(FakePrometheus(body=EMPTY), query='absent_metric', fail_on_empty=True))
    assert 'no series' in result['msg'] and 'absent_metric' in result['msg']


def test_bad_query_is_clear():
    result = failed(run(FakePrometheus(status=400, body=BAD_DATA), query='up)'))
    assert result['msg'].startswith('Prometheus rejected the query: GET http://prometheus:9090/api/v1/query returned HTTP 400 (bad_data)')
    assert 'parse error: unexpected right parenthesis' in result['msg']
    assert result['status'] == 400 and result['error_type'] == 'bad_data'


def test_timeout_error_type():
    result = failed(run(FakePrometheus(status=503, body=TIMEOUT), query='up'))
    assert 'HTTP 503 (timeout)' in result['msg'] and 'query timed out' in result['msg']


def test_unreachable():
    result = failed(run(FakePrometheus(exc=URLError(ConnectionRefusedError(111, 'Connection refused'))), query='up'))
    assert 'not reachable' in result['msg'] and 'Connection refused' in result['msg']
    assert 'http://prometheus:9090/api/v1/query' in result['msg']
    assert result['status'] is None


def test_not_prometheus():
    fake = FakePrometheus(body={'hello': 'world'})
    assert 'did not answer like the Prometheus query API' in failed(run(fake, query='up'))['msg']


def test_warnings_and_basic_auth():
    fake = FakePrometheus(body=WARN, user='u', password='p')
    ok(run(fake, query='rate(x[5m])', url_username='u', url_password='p', validate_certs=False, timeout=5))
    kwargs = fake.calls[0]['kwargs']
    assert kwargs['force_basic_auth'] is True and kwargs['validate_certs'] is False and kwargs['timeout'] == 5
    assert 'HTTP 401' in failed(run(fake, query='up', url_username='u', url_password='x'))['msg']


def test_bad_time_option():
    assert 'RFC 3339' in failed(run(FakePrometheus(body=ONE), query='up', time='yesterday'))['msg']
