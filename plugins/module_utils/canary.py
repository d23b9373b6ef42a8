# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module util is private to the llmops.vllm collection. It is not a
# public API: its functions may change between releases without notice.
# Use it only from plugins of this collection.

"""Canary analysis: the canary's figures against the baseline's, from Prometheus.

The canary is a set of vLLM hosts serving a new release behind the gateways
with a share of the traffic; the baseline is every other vLLM instance, still
on the old release. Each check measures both sides over the window so far
(since the analysis started):

- ``requests``: answers the gateways got from the side's servers
  (``haproxy_server_http_responses_total``);
- ``http_error_ratio``: the share of those answers that were 4xx or 5xx;
- ``failed_ratio``: the share of vLLM's finished requests whose
  ``finished_reason`` is a failure (``error``, ``abort``): an error after a
  stream has started arrives inside an HTTP 200, so status codes alone miss it;
- ``ttft_p95`` and ``itl_p95``: time to first token and inter-token latency,
  95th percentile from vLLM's histograms (seconds).

A check is judged once the canary has served ``min_requests`` in the window
(before that it is ``waiting``). It fails when an error ratio is above the
absolute limit or above the baseline's by more than the margin, or a latency is
above the baseline's times the allowed ratio (or above an absolute limit). The
analysis fails as soon as ``failure_limit`` checks have failed; it passes at
the end of the window when fewer have; a canary that never reached
``min_requests`` fails, or gets the window again (``insufficient_traffic:
extend``, at most ``max_extensions`` times) and then fails.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re
import time

from ansible_collections.llmops.vllm.plugins.module_utils.prometheus_client import single_value

FIGURES = ('requests', 'http_error_ratio', 'failed_ratio', 'ttft_p95', 'itl_p95')

# Characters RE2 (Prometheus' regular expressions) treats as special.
_RE2_SPECIAL = re.compile(r'([\\.+*?()|\[\]{}^$])')


def promql_string(text):
    """``text`` as a double-quoted PromQL string literal."""
    return '"%s"' % text.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def alternation(values):
    """An anchored RE2 alternation matching exactly ``values``."""
    return '(%s)' % '|'.join(_RE2_SPECIAL.sub(r'\\\1', v) for v in values)


def selectors(canary_hosts, canary_servers, vllm_job='vllm', gateway_job='gateway', gateway_backend='vllm'):
    """Label selectors of each side: {'canary': {'vllm': ..., 'gateway': ...}, 'baseline': {...}}."""
    if not canary_hosts or not canary_servers:
        raise ValueError('a canary needs at least one host and one gateway server')
    hosts = promql_string(alternation(canary_hosts))
    servers = promql_string(alternation(canary_servers))
    vllm = 'job=%s' % promql_string(vllm_job)
    gateway = 'job=%s, proxy=%s' % (promql_string(gateway_job), promql_string(gateway_backend))
    return {
        'canary': {'vllm': '%s, host=~%s' % (vllm, hosts), 'gateway': '%s, server=~%s' % (gateway, servers)},
        'baseline': {'vllm': '%s, host!~%s' % (vllm, hosts), 'gateway': '%s, server!~%s' % (gateway, servers)},
    }


def queries(side, window_s, failed_reasons):
    """PromQL of each raw figure of one side over the last ``window_s`` seconds."""
    w = '%ds' % max(int(math.ceil(window_s)), 1)
    reasons = promql_string(alternation(failed_reasons))
    return {
        'requests': 'sum(increase(haproxy_server_http_responses_total{%s}[%s]))' % (side['gateway'], w),
        'http_errors': 'sum(increase(haproxy_server_http_responses_total{%s, code=~"4xx|5xx"}[%s]))'
                       % (side['gateway'], w),
        'finished': 'sum(increase(vllm:request_success_total{%s}[%s]))' % (side['vllm'], w),
        'failed': 'sum(increase(vllm:request_success_total{%s, finished_reason=~%s}[%s]))'
                  % (side['vllm'], reasons, w),
        'ttft_p95': 'histogram_quantile(0.95, sum by (le) (increase(vllm:time_to_first_token_seconds_bucket{%s}[%s])))'
                    % (side['vllm'], w),
        'itl_p95': 'histogram_quantile(0.95, sum by (le) (increase(vllm:inter_token_latency_seconds_bucket{%s}[%s])))'
                   % (side['vllm'], w),
    }


def _number(value):
    """A finite float, or None (no series, NaN, infinities)."""
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return value


def _ratio(part, whole):
    return (part or 0.0) / whole if whole else 0.0


def figures(raw):
    """The figures of one side from its raw query values (see FIGURES)."""
    requests = raw.get('requests') or 0.0
    return {
        'requests': requests,
        'http_error_ratio': _ratio(raw.get('http_errors'), requests),
        'failed_ratio': _ratio(raw.get('failed'), raw.get('finished')),
        'ttft_p95': raw.get('ttft_p95'),
        'itl_p95': raw.get('itl_p95'),
    }


def judge(canary, baseline, limits):
    """Why one check fails (a list of sentences; empty: it passes)."""
    reasons = []
    for key, label in (('http_error_ratio', 'HTTP 4xx/5xx ratio'), ('failed_ratio', 'failed-request ratio')):
        value, base = canary[key], baseline[key]
        if value > limits['max_error_ratio']:
            reasons.append('%s %.3f is above the limit %.3f' % (label, value, limits['max_error_ratio']))
        elif value > base + limits['error_ratio_margin']:
            reasons.append('%s %.3f is above the baseline %.3f + %.3f' % (label, value, base, limits['error_ratio_margin']))
    for key, label, absolute in (('ttft_p95', 'TTFT p95', 'max_ttft_p95'), ('itl_p95', 'ITL p95', 'max_itl_p95')):
        value, base = canary[key], baseline[key]
        if value is None:
            continue
        if limits.get(absolute) and value > limits[absolute]:
            reasons.append('%s %.3fs is above the limit %.3fs' % (label, value, limits[absolute]))
        elif base and value > base * limits['max_latency_ratio']:
            reasons.append('%s %.3fs is above %.1f x the baseline %.3fs' % (label, value, limits['max_latency_ratio'], base))
    return reasons


def describe(figs):
    """One side's figures in a short line."""
    def seconds(value):
        return '-' if value is None else '%.3fs' % value
    return 'requests %d, HTTP errors %.3f, failed %.3f, TTFT p95 %s, ITL p95 %s' % (
        round(figs['requests']), figs['http_error_ratio'], figs['failed_ratio'],
        seconds(figs['ttft_p95']), seconds(figs['itl_p95']))


class CanaryAnalysis:
    """Runs the checks of one analysis. ``query(promql)`` returns (result_type, result) with typed values."""

    def __init__(self, query, sides, options, clock=None, sleep=None):
        self.query = query
        self.sides = sides
        self.options = options
        self.clock = clock or time.time
        self.sleep = sleep or time.sleep

    def measure(self, window_s):
        """{'canary': figures, 'baseline': figures} over the last ``window_s`` seconds."""
        out = {}
        for name, side in self.sides.items():
            raw = {}
            for key, promql in queries(side, window_s, self.options['failed_reasons']).items():
                result_type, result = self.query(promql)
                raw[key] = _number(single_value(result_type, result))
            out[name] = figures(raw)
        return out

    def run(self):
        opts = self.options
        start = self.clock()
        deadline = start + opts['window']
        extensions = 0
        checks = []
        failed = 0
        number = 0
        while True:
            number += 1
            due = start + number * opts['interval']
            pause = due - self.clock()
            if pause > 0:
                self.sleep(pause)
            now = self.clock()
            figs = self.measure(now - start)
            check = {'number': number, 'elapsed': round(now - start, 1),
                     'canary': figs['canary'], 'baseline': figs['baseline']}
            if figs['canary']['requests'] < opts['min_requests']:
                check['status'], check['reasons'] = 'waiting', [
                    'the canary served %d of the %d requests a verdict needs'
                    % (round(figs['canary']['requests']), opts['min_requests'])]
            else:
                check['reasons'] = judge(figs['canary'], figs['baseline'], opts)
                check['status'] = 'failed' if check['reasons'] else 'passed'
                failed += bool(check['reasons'])
            checks.append(check)
            if failed >= opts['failure_limit']:
                return self._verdict('fail', '%d of %d checks failed (limit %d): %s'
                                     % (failed, number, opts['failure_limit'], '; '.join(check['reasons'])), checks)
            if now < deadline:
                continue
            if figs['canary']['requests'] >= opts['min_requests']:
                return self._verdict('pass', '%d checks, %d failed (limit %d)' % (number, failed, opts['failure_limit']),
                                     checks)
            if opts['insufficient_traffic'] == 'extend' and extensions < opts['max_extensions']:
                extensions += 1
                deadline += opts['window']
                continue
            return self._verdict('fail', 'not enough traffic: the canary served %d requests in %ds, %d needed%s'
                                 % (round(figs['canary']['requests']), round(now - start), opts['min_requests'],
                                    ' (window extended %d times)' % extensions if extensions else ''),
                                 checks, insufficient=True)

    @staticmethod
    def _verdict(verdict, reason, checks, insufficient=False):
        last = checks[-1]
        return {'verdict': verdict, 'reason': reason, 'insufficient_traffic': insufficient, 'checks': checks,
                'canary': last['canary'], 'baseline': last['baseline'],
                'lines': ['check %d at %ss, %s: canary %s | baseline %s%s'
                          % (c['number'], c['elapsed'], c['status'], describe(c['canary']), describe(c['baseline']),
                             (' (%s)' % '; '.join(c['reasons'])) if c['reasons'] else '')
                          for c in checks]}
