# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""vllm_canary_analysis against recorded answers of Prometheus' query API
(success envelopes with string sample values, an empty vector, NaN from
histogram_quantile over no data, and a bad_data error)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import json
import time
from urllib.error import HTTPError
from urllib.parse import parse_qs, urlsplit

from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.llmops.vllm.plugins.modules import vllm_canary_analysis
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.utils import FakeResponse, failed, ok, run_with

URL = 'http://prometheus:9090'


def vector(value):
    if value is None:
        return {"status": "success", "data": {"resultType": "vector", "result": []}}
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {}, "value": [1738342800.1, value]}]}}


class FakePrometheus:
    """Answers each query from a table keyed by (side, figure)."""

    def __init__(self, answers, error=None):
        self.answers = answers
        self.error = error
        self.queries = []
        self.auth = []

    def __call__(self, url, data=None, headers=None, method=None, **kwargs):
        promql = parse_qs(urlsplit(url).query)['query'][0]
        self.queries.append(promql)
        self.auth.append((kwargs.get('url_username'), kwargs.get('url_password')))
        if self.error:
            raise HTTPError(url, 400, 'Bad Request', {}, io.BytesIO(to_bytes(json.dumps(self.error))))
        side = 'canary' if ('host=~' in promql or 'server=~' in promql) else 'baseline'
        if 'code=~' in promql:
            figure = 'http_errors'
        elif 'finished_reason' in promql:
            figure = 'failed'
        elif 'request_success_total' in promql:
            figure = 'finished'
        elif 'time_to_first_token' in promql:
            figure = 'ttft_p95'
        elif 'inter_token' in promql:
            figure = 'itl_p95'
        else:
            figure = 'requests'
        return FakeResponse(url, 200, json.dumps(vector(self.answers.get((side, figure)))))


BASELINE = {('baseline', 'requests'): '120', ('baseline', 'http_errors'): '0', ('baseline', 'finished'): '120',
            ('baseline', 'failed'): '0', ('baseline', 'ttft_p95'): '0.09', ('baseline', 'itl_p95'): '0.02'}
def with_canary(answers):
    out = dict(BASELINE)
    out.update(answers)
    return out


ARGS = {'url': URL, 'canary_hosts': ['gpu-1'], 'canary_servers': ['gpu-1_main'], 'window': 1, 'interval': 1,
        'min_requests': 10}


def run(fake, monkeypatch, **args):
    # A clock that moves only when the analysis sleeps: one check per interval.
    now = [time.time()]
    monkeypatch.setattr(time, 'time', lambda: now[0])
    monkeypatch.setattr(time, 'sleep', lambda seconds: now.__setitem__(0, now[0] + seconds))
    return run_with(vllm_canary_analysis.main, dict(ARGS, **args), fake)


def test_a_canary_like_the_baseline_passes(monkeypatch):
    fake = FakePrometheus(with_canary({('canary', 'requests'): '40', ('canary', 'http_errors'): '0',
                                            ('canary', 'finished'): '40', ('canary', 'failed'): '0',
                                            ('canary', 'ttft_p95'): '0.1', ('canary', 'itl_p95'): '0.021'}))
    result = ok(run(fake, monkeypatch, url_username='prom', url_password='secret'))
    assert result['changed'] is False
    assert result['verdict'] == 'pass'
    assert result['canary']['requests'] == 40 and result['baseline']['requests'] == 120
    assert len(fake.queries) == 12 and set(fake.auth) == {('prom', 'secret')}
    assert result['lines'][0].startswith('check 1 at ')


def test_client_errors_the_old_release_did_not_produce_fail_the_canary(monkeypatch):
    fake = FakePrometheus(with_canary({('canary', 'requests'): '40', ('canary', 'http_errors'): '12',
                                            ('canary', 'finished'): '28', ('canary', 'ttft_p95'): 'NaN'}))
    result = ok(run(fake, monkeypatch, failure_limit=1))
    assert result['verdict'] == 'fail'
    assert 'HTTP 4xx/5xx ratio 0.300 is above the limit 0.050' in result['reason']
    assert result['canary']['ttft_p95'] is None


def test_errors_inside_200s_fail_the_canary(monkeypatch):
    fake = FakePrometheus(with_canary({('canary', 'requests'): '40', ('canary', 'http_errors'): '0',
                                            ('canary', 'finished'): '40', ('canary', 'failed'): '4'}))
    result = ok(run(fake, monkeypatch, failure_limit=1))
    assert result['verdict'] == 'fail'
    assert 'failed-request ratio 0.100 is above the limit 0.050' in result['reason']
    assert any('finished_reason=~"(error|abort)"' in q for q in fake.queries)


def test_no_canary_traffic_fails_as_insufficient(monkeypatch):
    result = ok(run(FakePrometheus(BASELINE), monkeypatch))
    assert result['verdict'] == 'fail' and result['insufficient_traffic'] is True
    assert result['reason'].startswith('not enough traffic: the canary served 0 requests')


def test_a_bad_query_fails_with_prometheus_error(monkeypatch):
    error = {"status": "error", "errorType": "bad_data", "error": "1:5: parse error: unexpected character"}
    result = failed(run(FakePrometheus({}, error=error), monkeypatch))
    assert result['status'] == 400 and result['error_type'] == 'bad_data'
    assert 'Prometheus rejected the query' in result['msg']


def test_settings_are_checked(monkeypatch):
    result = failed(run(FakePrometheus(BASELINE), monkeypatch, window=0, min_requests=-1))
    assert result['msg'] == 'window, min_requests must be positive'
    result = failed(run(FakePrometheus(BASELINE), monkeypatch, canary_servers=[]))
    assert 'a canary needs at least one host and one gateway server' in result['msg']
