#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (not a test): the fleet dashboard's queries against upstream-style raw queries.

1. Writes synthetic vLLM metrics of INSTANCES instances (4 models) as OpenMetrics:
   the counters, gauges and histograms the fleet reads, plus `up`, every 30 s
   over the last MINUTES minutes.
2. Loads them with `promtool tsdb create-blocks-from openmetrics`.
3. Renders the prometheus role's recording rules (tests/promtool/render_rules.yml)
   and backfills them with `promtool tsdb create-blocks-from rules` against a
   Prometheus on that data, one dependency level at a time (rules reading other
   recorded series need those loaded first).
4. Times, against the same Prometheus, every query of vllm-fleet-overview (range
   targets as query_range over the last 30 min at a 15 s step, instant targets
   and variables as instant queries, Grafana's "All" as .*) and a set of eight
   raw fleet queries in the style of vLLM's examples/observability dashboards
   (sum(rate(...)) and histogram_quantile over every instance's buckets), RUNS
   times each; reports the sum of per-query medians.

Goal: the whole fleet dashboard costs at most 0.1x the raw set.

Usage: .venv/bin/python benchmarks/dashboard_queries.py [--instances 1000] [--runs 5]
Needs prometheus and promtool (PROMETHEUS_BIN / .cache/promtool/usr/bin) and
ansible-playbook (the project's virtualenv). Output: benchmarks/dashboard_queries.out.txt
"""

import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, 'tests', 'dashboards'))
import check_queries  # noqa: E402  pylint: disable=wrong-import-position

SCRAPE = 30          # seconds between synthetic samples
RANGE = 30 * 60      # dashboard time range
STEP = 15            # Grafana's step for a 30 min range on a wide panel
RATE = '2m'          # Grafana's $__rate_interval for a 30 s scrape interval
MODELS = ['llama-8b', 'qwen-32b', 'mistral-7b', 'gemma-27b']
TTFT = [0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0]
ITL = [0.01, 0.025, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0]
E2E = [0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 480.0]
QUEUE = E2E
REASONS = ['stop', 'length', 'abort', 'error', 'repetition']

RAW = [  # upstream style: vLLM examples/observability (Overview) queries over every instance
    'sum(rate(vllm:request_success_total{job=~".*", model_name=~".*"}[%s]))' % RATE,
    'sum(rate(vllm:prompt_tokens_total{job=~".*", model_name=~".*"}[%s]))' % RATE,
    'sum(rate(vllm:generation_tokens_total{job=~".*", model_name=~".*"}[%s]))' % RATE,
    'histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{job=~".*", model_name=~".*"}[%s])))' % RATE,
    'histogram_quantile(0.95, sum by (le) (rate(vllm:inter_token_latency_seconds_bucket{job=~".*", model_name=~".*"}[%s])))' % RATE,
    'histogram_quantile(0.95, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket{job=~".*", model_name=~".*"}[%s])))' % RATE,
    'sum(vllm:num_requests_running{job=~".*", model_name=~".*"})',
    'max(vllm:kv_cache_usage_perc{job=~".*", model_name=~".*"})',
]


def tool(name):
    for candidate in (os.environ.get(name.upper() + '_BIN'), shutil.which(name),
                      os.path.join(REPO, '.cache', 'promtool', 'usr', 'bin', name),
                      os.path.join(os.path.dirname(sys.executable), name)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    sys.exit('%s not found' % name)


def write_openmetrics(path, instances, start, end):
    rnd = random.Random(42)
    times = list(range(start, end + 1, SCRAPE))
    targets = []
    for i in range(instances):
        model = MODELS[i % len(MODELS)]
        labels = 'job="vllm",instance="10.%d.%d.%d:8000",host="gpu%04d",vllm_instance="main",vllm_model="%s"' % (
            i // 65536, (i // 256) % 256, i % 256, i, model)
        targets.append((labels, model, rnd.uniform(0.5, 2.0)))
    series = 0
    with open(path, 'w', encoding='utf-8') as out:
        def family(name, kind, rows):
            """rows: [(labels, fn(step index) -> value)]"""
            nonlocal series
            out.write('# TYPE %s %s\n' % (name, kind))
            for labels, value in rows:
                series += 1
                out.write(''.join('%s%s{%s} %s %d\n' % (name, suffix, labels, repr(float(v)), t)
                                  for suffix, (t, v) in ((s, tv) for s, tv in value)))

        def counter_rows(base, per_step, extra=''):
            return [('%s,model_name="%s",engine="0"%s' % (lab, model, extra),
                     [('', (t, round(per_step * load * n, 3))) for n, t in enumerate(times)]) for lab, model, load in targets]

        def write_counter(name, per_step, extra=''):
            out.write('# TYPE %s counter\n' % name)
            nonlocal series
            for labels, samples in counter_rows(None, per_step, extra):
                series += 1
                out.write(''.join('%s_total{%s} %r %d\n' % (name, labels, v, t) for dummy, (t, v) in samples))

        def write_gauge(name, fn):
            out.write('# TYPE %s gauge\n' % name)
            nonlocal series
            for lab, model, load in targets:
                series += 1
                labels = '%s,model_name="%s",engine="0"' % (lab, model)
                out.write(''.join('%s{%s} %r %d\n' % (name, labels, float(fn(load, n)), t) for n, t in enumerate(times)))

        def write_histogram(name, bounds, mean):
            out.write('# TYPE %s histogram\n' % name)
            nonlocal series
            for lab, model, load in targets:
                labels = '%s,model_name="%s",engine="0"' % (lab, model)
                per_step = 3 * load
                shares = [min(1.0, (b / (mean * load)) ** 1.5 / 2) for b in bounds] + [1.0]
                for bound, share in zip([repr(float(b)) for b in bounds] + ['+Inf'], shares):
                    series += 1
                    out.write(''.join('%s_bucket{%s,le="%s"} %r %d\n' % (name, labels, bound, round(per_step * n * share, 3), t)
                                      for n, t in enumerate(times)))
                series += 2
                out.write(''.join('%s_count{%s} %r %d\n' % (name, labels, round(per_step * n, 3), t) for n, t in enumerate(times)))
                out.write(''.join('%s_sum{%s} %r %d\n' % (name, labels, round(per_step * n * mean * load, 3), t) for n, t in enumerate(times)))

        out.write('# TYPE up gauge\n')
        for lab, model, load in targets:
            series += 1
            out.write(''.join('up{%s} 1.0 %d\n' % (lab, t) for t in times))
        out.write('# TYPE vllm:request_success counter\n')
        for reason, share in zip(REASONS, (0.6, 0.37, 0.02, 0.01, 0.0)):
            for lab, model, load in targets:
                series += 1
                labels = '%s,model_name="%s",engine="0",finished_reason="%s"' % (lab, model, reason)
                out.write(''.join('vllm:request_success_total{%s} %r %d\n' % (labels, round(3 * load * share * n, 3), t)
                                  for n, t in enumerate(times)))
        write_counter('vllm:prompt_tokens', 900)
        write_counter('vllm:generation_tokens', 600)
        write_counter('vllm:num_preemptions', 0.1)
        write_counter('vllm:prefix_cache_queries', 900)
        write_counter('vllm:prefix_cache_hits', 300)
        write_gauge('vllm:num_requests_running', lambda load, n: round(8 * load))
        write_gauge('vllm:num_requests_waiting', lambda load, n: round(2 * load) if n % 7 else 0)
        write_gauge('vllm:kv_cache_usage_perc', lambda load, n: round(min(1.0, 0.4 * load), 3))
        write_histogram('vllm:time_to_first_token_seconds', TTFT, 0.3)
        write_histogram('vllm:inter_token_latency_seconds', ITL, 0.04)
        write_histogram('vllm:e2e_request_latency_seconds', E2E, 8.0)
        write_histogram('vllm:request_queue_time_seconds', QUEUE, 0.8)
        out.write('# EOF\n')
    return series, len(times)


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class LocalServer:
    """A server process on a free port of 127.0.0.1, ready once ``ready_path`` answers 200."""

    name = 'server'
    ready_path = '/'

    def __init__(self):
        self.port = free_port()
        self.url = 'http://127.0.0.1:%d' % self.port
        self.log = self.process = None

    def start(self, argv, log, timeout):
        self.log = open(log, 'a', encoding='utf-8')
        self.process = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                sys.exit('%s did not start, see %s' % (self.name, log))
            time.sleep(0.5)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)
        self.log.close()


class Server(LocalServer):
    """Prometheus on a data directory, scraping nothing."""

    name = 'Prometheus'
    ready_path = '/-/ready'

    def __init__(self, binary, data, log):
        super().__init__()
        config = os.path.join(os.path.dirname(data), 'prometheus.yml')
        with open(config, 'w', encoding='utf-8') as handle:
            handle.write('global: {scrape_interval: 30s}\n')
        self.start([binary, '--config.file=' + config, '--storage.tsdb.path=' + data,
                    '--storage.tsdb.retention.time=10y', '--web.listen-address=127.0.0.1:%d' % self.port,
                    '--query.max-samples=200000000'], log, 180)


def query(url, expr, end, is_range):
    if is_range:
        params = {'query': expr, 'start': str(end - RANGE), 'end': str(end), 'step': str(STEP)}
        path = '/api/v1/query_range'
    else:
        params = {'query': expr, 'time': str(end)}
        path = '/api/v1/query'
    started = time.perf_counter()
    with urllib.request.urlopen(url + path + '?' + urllib.parse.urlencode(params), timeout=300) as response:
        body = json.loads(response.read().decode())
    elapsed = time.perf_counter() - started
    if body.get('status') != 'success':
        raise RuntimeError('%s: %s' % (expr, body))
    return elapsed, len(body['data']['result'])


def rule_levels(rules_path):
    """Rule files per dependency level: level 0 reads raw series only."""
    import yaml  # pylint: disable=import-outside-toplevel
    with open(rules_path, encoding='utf-8') as handle:
        groups = yaml.safe_load(handle)['groups']
    rules = [rule for group in groups for rule in group['rules'] if 'record' in rule]
    recorded = set(rule['record'] for rule in rules)
    level = {}
    while len(level) < len(rules):
        for index, rule in enumerate(rules):
            if index in level:
                continue
            deps = [r for r in recorded if re.search(r'(?<![A-Za-z0-9_:])%s(?![A-Za-z0-9_:])' % re.escape(r), rule['expr'])]
            dep_levels = [max(level[i] for i, x in enumerate(rules) if x['record'] == r and i in level)
                          if all(i in level for i, x in enumerate(rules) if x['record'] == r) else None for r in deps]
            if None not in dep_levels:
                level[index] = 1 + max(dep_levels) if dep_levels else 0
    return [[rule for index, rule in enumerate(rules) if level[index] == n] for n in range(max(level.values()) + 1)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--instances', type=int, default=1000)
    parser.add_argument('--minutes', type=int, default=36)
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--output', default=os.path.join(HERE, 'dashboard_queries.out.txt'))
    parser.add_argument('--keep', action='store_true', help='keep the work directory')
    args = parser.parse_args()
    prometheus, promtool, playbook = tool('prometheus'), tool('promtool'), tool('ansible-playbook')
    import yaml  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    work = tempfile.mkdtemp(prefix='dashboard-bench-')
    data, log = os.path.join(work, 'data'), os.path.join(work, 'prometheus.log')
    os.makedirs(data)
    report = []

    def say(line):
        print(line, flush=True)
        report.append(line)

    end = int(time.time()) // SCRAPE * SCRAPE - 60
    start = end - args.minutes * 60
    started = time.monotonic()
    series, samples = write_openmetrics(os.path.join(work, 'metrics.om'), args.instances, start, end)
    say('synthetic data: %d instances, %d series, %d samples each (every %d s over %d min), %.0f MB of OpenMetrics, written in %.1f s' % (
        args.instances, series, samples, SCRAPE, args.minutes, os.path.getsize(os.path.join(work, 'metrics.om')) / 1e6,
        time.monotonic() - started))
    step = time.monotonic()
    subprocess.run([promtool, 'tsdb', 'create-blocks-from', 'openmetrics', os.path.join(work, 'metrics.om'), data],
                   check=True, stdout=subprocess.DEVNULL)
    os.remove(os.path.join(work, 'metrics.om'))
    say('promtool tsdb create-blocks-from openmetrics: %.1f s' % (time.monotonic() - step))

    subprocess.run([playbook, '-i', 'localhost,', os.path.join(REPO, 'tests', 'promtool', 'render_rules.yml'),
                    '-e', 'render_dir=%s' % work], check=True, cwd=REPO, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg')))
    levels = rule_levels(os.path.join(work, 'vllm_recording.yml'))
    for number, rules in enumerate(levels):
        step = time.monotonic()
        rule_file = os.path.join(work, 'level%d.yml' % number)
        with open(rule_file, 'w', encoding='utf-8') as handle:
            yaml.safe_dump({'groups': [{'name': 'level%d' % number, 'interval': '30s', 'rules': rules}]}, handle)
        server = Server(prometheus, data, log)
        out_dir = os.path.join(work, 'rules%d' % number)
        subprocess.run([promtool, 'tsdb', 'create-blocks-from', 'rules', '--start=%d' % (start + 120), '--end=%d' % end,
                        '--url=' + server.url, '--output-dir=' + out_dir, '--eval-interval=30s', rule_file],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
        server.stop()
        for block in os.listdir(out_dir):
            shutil.move(os.path.join(out_dir, block), os.path.join(data, block))
        say('promtool tsdb create-blocks-from rules, level %d (%d rules): %.1f s' % (number, len(rules), time.monotonic() - step))

    with open(os.path.join(REPO, 'roles', 'grafana', 'files', 'dashboards', 'vllm-fleet-overview.json'), encoding='utf-8') as handle:
        dashboard = json.load(handle)
    values = check_queries.selected_values(dashboard)
    values.update({'__range': '30m', '__range_s': str(RANGE), '__rate_interval': RATE, '__interval': '%ds' % STEP})
    fleet = [(where, check_queries.substitute(expr, values), is_range)
             for where, expr, is_range in check_queries.queries_of(dashboard, with_range=True)]
    raw = [('raw %d' % n, expr, True) for n, expr in enumerate(RAW, 1)]

    server = Server(prometheus, data, log)
    try:
        for where, expr, is_range in fleet + raw:  # warm up; also proves the data is there
            query(server.url, expr, end, is_range)
        timings = dict((where, []) for where, dummy, dummy2 in fleet + raw)
        sizes = {}
        totals = {'fleet': [], 'raw': []}
        for dummy in range(args.runs):
            for name, queries in (('raw', raw), ('fleet', fleet)):
                total = 0.0
                for where, expr, is_range in queries:
                    elapsed, size = query(server.url, expr, end, is_range)
                    timings[where].append(elapsed)
                    sizes[where] = size
                    total += elapsed
                totals[name].append(total)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    say('')
    say('Prometheus %s, %d runs, median per query; range queries over %d min at a %d s step, $__rate_interval %s' % (
        subprocess.run([prometheus, '--version'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True).stdout.split('\n')[0].split(' (')[0].replace('prometheus, version ', ''),
        args.runs, RANGE // 60, STEP, RATE))
    say('')
    say('%-78s %9s %7s' % ('query', 'median s', 'series'))
    for name, queries in (('raw', raw), ('fleet', fleet)):
        for where, expr, is_range in queries:
            label = expr if name == 'raw' else where
            say('%-78s %9.4f %7d' % (label[:78], statistics.median(timings[where]), sizes[where]))
        say('')
    raw_total = sum(statistics.median(timings[w]) for w, d, d2 in raw)
    fleet_total = sum(statistics.median(timings[w]) for w, d, d2 in fleet)
    empty = [w for w, d, d2 in fleet if not sizes[w]]
    say('upstream-style raw set (%d queries):      %.3f s (runs: %s)' % (len(raw), raw_total, ', '.join('%.3f' % t for t in totals['raw'])))
    say('vllm-fleet-overview, every query (%d):    %.3f s (runs: %s)' % (len(fleet), fleet_total, ', '.join('%.3f' % t for t in totals['fleet'])))
    say('ratio fleet / raw: %.3f (goal: at most 0.1)' % (fleet_total / raw_total))
    if empty:
        say('queries without data here (no gateway in the synthetic data): %d' % len(empty))
    with open(args.output, 'w', encoding='utf-8') as handle:
        handle.write('# benchmarks/dashboard_queries.py, %s, %d CPUs\n' % (time.strftime('%Y-%m-%d'), os.cpu_count()))
        handle.write('\n'.join(report) + '\n')
    return 0 if fleet_total <= 0.1 * raw_total else 1


if __name__ == '__main__':
    sys.exit(main())
