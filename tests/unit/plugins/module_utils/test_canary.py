# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The canary analysis: selectors and queries, judging one check, and the
verdicts of whole analyses against a fake Prometheus and a fake clock."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.llmops.vllm.plugins.module_utils import canary

LIMITS = {'max_error_ratio': 0.05, 'error_ratio_margin': 0.01, 'max_latency_ratio': 1.5,
          'max_ttft_p95': 0, 'max_itl_p95': 0}
OPTIONS = dict(LIMITS, window=60, interval=10, min_requests=10, insufficient_traffic='fail', max_extensions=1,
               failure_limit=2, failed_reasons=['error', 'abort'])
GOOD = {'requests': 40.0, 'http_error_ratio': 0.0, 'failed_ratio': 0.0, 'ttft_p95': 0.1, 'itl_p95': 0.02}


def test_selectors_escape_names_and_split_the_fleet():
    sides = canary.selectors(['gpu-1.dc', 'gpu"2'], ['gpu-1.dc_main', 'gpu"2_main'])
    assert sides['canary']['vllm'] == 'job="vllm", host=~"(gpu-1\\\\.dc|gpu\\"2)"'
    assert sides['baseline']['vllm'] == 'job="vllm", host!~"(gpu-1\\\\.dc|gpu\\"2)"'
    assert sides['canary']['gateway'] == 'job="gateway", proxy="vllm", server=~"(gpu-1\\\\.dc_main|gpu\\"2_main)"'
    assert sides['baseline']['gateway'].startswith('job="gateway", proxy="vllm", server!~')


def test_selectors_need_a_canary():
    with pytest.raises(ValueError):
        canary.selectors([], ['x_main'])


def test_queries_cover_every_figure_over_the_window():
    side = canary.selectors(['h'], ['h_main'])['canary']
    q = canary.queries(side, 42.3, ['error', 'abort'])
    assert q['requests'] == 'sum(increase(haproxy_server_http_responses_total{job="gateway", proxy="vllm", server=~"(h_main)"}[43s]))'
    assert 'code=~"4xx|5xx"' in q['http_errors']
    assert 'finished_reason=~"(error|abort)"' in q['failed']
    assert q['ttft_p95'].startswith('histogram_quantile(0.95, sum by (le) (increase(vllm:time_to_first_token_seconds_bucket{')
    assert 'vllm:inter_token_latency_seconds_bucket' in q['itl_p95']


def test_figures_from_raw_values():
    figs = canary.figures({'requests': 20.0, 'http_errors': 5.0, 'finished': 15.0, 'failed': 3.0, 'ttft_p95': None})
    assert figs == {'requests': 20.0, 'http_error_ratio': 0.25, 'failed_ratio': 0.2, 'ttft_p95': None, 'itl_p95': None}
    assert canary.figures({})['http_error_ratio'] == 0.0


@pytest.mark.parametrize('change, reason', [
    ({}, None),
    ({'http_error_ratio': 0.3}, 'HTTP 4xx/5xx ratio 0.300 is above the limit 0.050'),
    ({'http_error_ratio': 0.02}, 'HTTP 4xx/5xx ratio 0.020 is above the baseline 0.000 + 0.010'),
    ({'failed_ratio': 0.02}, 'failed-request ratio 0.020 is above the baseline 0.000 + 0.010'),
    ({'ttft_p95': 0.2}, 'TTFT p95 0.200s is above 1.5 x the baseline 0.100s'),
    ({'itl_p95': 0.04}, 'ITL p95 0.040s is above 1.5 x the baseline 0.020s'),
    ({'ttft_p95': None, 'itl_p95': None}, None),
])
def test_judge_one_check(change, reason):
    reasons = canary.judge(dict(GOOD, **change), GOOD, LIMITS)
    assert reasons == ([reason] if reason else [])


def test_errors_the_baseline_has_too_are_within_the_margin():
    assert canary.judge(dict(GOOD, http_error_ratio=0.03), dict(GOOD, http_error_ratio=0.025), LIMITS) == []


def test_absolute_latency_limit():
    limits = dict(LIMITS, max_ttft_p95=0.05)
    assert canary.judge(GOOD, GOOD, limits) == ['TTFT p95 0.100s is above the limit 0.050s']


class Fleet:
    """A fake Prometheus and clock: each side's raw values as a function of the elapsed time."""

    def __init__(self, canary_values, baseline_values):
        self.now = 1000.0
        self.values = {'canary': canary_values, 'baseline': baseline_values}
        self.queries = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds

    def query(self, promql):
        self.queries.append(promql)
        side = 'canary' if 'host=~' in promql or 'server=~' in promql else 'baseline'
        key = next(k for k, v in canary.queries(SIDES[side], self.elapsed(promql), ['error', 'abort']).items()
                   if v == promql)
        value = self.values[side](self.now - 1000.0).get(key)
        if value is None:
            return 'vector', []
        return 'vector', [{'metric': {}, 'value': value, 'time': self.now}]

    @staticmethod
    def elapsed(promql):
        return int(promql.rsplit('[', 1)[1].split('s]', 1)[0])

    def run(self, **options):
        return canary.CanaryAnalysis(self.query, SIDES, dict(OPTIONS, **options), clock=self.clock,
                                     sleep=self.sleep).run()


SIDES = canary.selectors(['gpu-1'], ['gpu-1_main'])


def traffic(rate, error_ratio=0.0, ttft=0.1):
    def values(elapsed):
        requests = rate * elapsed
        return {'requests': requests, 'http_errors': requests * error_ratio, 'finished': requests,
                'failed': 0.0, 'ttft_p95': ttft, 'itl_p95': 0.02}
    return values


def test_a_good_canary_passes_at_the_end_of_the_window():
    result = Fleet(traffic(0.5), traffic(3.0)).run()
    assert result['verdict'] == 'pass'
    assert [c['status'] for c in result['checks']] == ['waiting', 'passed', 'passed', 'passed', 'passed', 'passed']
    assert result['checks'][-1]['elapsed'] == 60
    assert result['canary']['requests'] == 30 and result['baseline']['requests'] == 180
    assert len(result['lines']) == 6 and 'canary requests 30' in result['lines'][-1]


def test_a_canary_that_fails_requests_fails_at_the_failure_limit():
    result = Fleet(traffic(0.5, error_ratio=0.4), traffic(3.0)).run()
    assert result['verdict'] == 'fail' and not result['insufficient_traffic']
    assert [c['status'] for c in result['checks']] == ['waiting', 'failed', 'failed']
    assert result['reason'].startswith('2 of 3 checks failed (limit 2): HTTP 4xx/5xx ratio 0.400 is above the limit')


def test_a_slower_canary_fails_on_latency():
    result = Fleet(traffic(1.0, ttft=0.5), traffic(3.0, ttft=0.1)).run()
    assert result['verdict'] == 'fail'
    assert 'TTFT p95 0.500s is above 1.5 x the baseline 0.100s' in result['reason']


def test_one_failed_check_under_the_limit_still_passes():
    def flaky(elapsed):
        return traffic(1.0, ttft=0.5 if elapsed == 30 else 0.1)(elapsed)
    result = Fleet(flaky, traffic(3.0)).run()
    assert result['verdict'] == 'pass'
    assert [c['status'] for c in result['checks']].count('failed') == 1


def test_too_little_traffic_fails_and_says_why():
    result = Fleet(traffic(0.05), traffic(3.0)).run()
    assert result['verdict'] == 'fail' and result['insufficient_traffic']
    assert result['reason'] == 'not enough traffic: the canary served 3 requests in 60s, 10 needed'
    assert all(c['status'] == 'waiting' for c in result['checks'])


def test_too_little_traffic_can_extend_the_window_then_fail():
    result = Fleet(traffic(0.05), traffic(3.0)).run(insufficient_traffic='extend', max_extensions=1)
    assert result['verdict'] == 'fail'
    assert result['reason'] == 'not enough traffic: the canary served 6 requests in 120s, 10 needed (window extended 1 times)'
    assert len(result['checks']) == 12


def test_an_extension_lets_a_slow_canary_reach_a_verdict():
    result = Fleet(traffic(0.1), traffic(3.0)).run(insufficient_traffic='extend', max_extensions=2)
    assert result['verdict'] == 'pass' and result['checks'][-1]['elapsed'] == 120


def test_no_series_count_as_no_requests():
    result = Fleet(lambda elapsed: {}, traffic(3.0)).run()
    assert result['verdict'] == 'fail' and result['insufficient_traffic']
    assert result['canary'] == {'requests': 0.0, 'http_error_ratio': 0.0, 'failed_ratio': 0.0,
                                'ttft_p95': None, 'itl_p95': None}
