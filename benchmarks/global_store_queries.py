#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (not a test): the fleet dashboard's queries against the global store
(VictoriaMetrics) and against Prometheus holding the same data, in one run.

1. Builds the data set of benchmarks/dashboard_queries.py: synthetic vLLM metrics
   of INSTANCES instances (4 models; the counters, gauges and histograms the fleet
   reads, plus `up`) every 30 s over the last MINUTES minutes, loaded with
   `promtool tsdb create-blocks-from openmetrics`, and the prometheus role's
   recording rules backfilled with `promtool tsdb create-blocks-from rules`.
2. Copies the same TSDB blocks into VictoriaMetrics with
   `vmctl prometheus --prom-snapshot=<blocks>` (as one migrates a Prometheus).
3. Starts both engines side by side (VictoriaMetrics with -search.disableCache, so
   neither answers from a result cache) and sends every query of vllm-fleet-overview
   (range targets as query_range over the last 30 min at a 15 s step, instant
   targets and variables as instant queries, Grafana's "All" as .*) plus the eight
   raw upstream-style queries of dashboard_queries.py to each, alternating the
   engines query by query, RUNS times; reports per query the median of each
   engine, the ratio VictoriaMetrics / Prometheus and the series counts (which
   must agree: both hold the same series).

Usage: .venv/bin/python benchmarks/global_store_queries.py [--instances 1000] [--runs 5]
Needs prometheus and promtool (PROMETHEUS_BIN / .cache/promtool/usr/bin),
victoria-metrics and vmctl (VM_BIN_DIR, default .cache/victoriametrics/usr/bin,
extracted from Debian's victoria-metrics package: `apt-get download
victoria-metrics && dpkg-deb -x victoria-metrics_*.deb .cache/victoriametrics`)
and ansible-playbook (the project's virtualenv).
Output: benchmarks/global_store_queries.out.txt
"""

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, 'tests', 'dashboards'))
import check_queries  # noqa: E402  pylint: disable=wrong-import-position
import dashboard_queries as dq  # noqa: E402  pylint: disable=wrong-import-position

VM_BIN_DIR = os.environ.get('VM_BIN_DIR', os.path.join(REPO, '.cache', 'victoriametrics', 'usr', 'bin'))


def vm_tool(name):
    path = os.path.join(VM_BIN_DIR, name)
    if not os.access(path, os.X_OK):
        sys.exit('%s not found; see the usage in %s' % (path, __file__))
    return path


class VictoriaMetrics(dq.LocalServer):
    """VictoriaMetrics single-node on a data directory, with its result cache off."""

    name = 'VictoriaMetrics'
    ready_path = '/health'

    def __init__(self, binary, data, log):
        super().__init__()
        self.start([binary, '-storageDataPath=' + data, '-retentionPeriod=100y',
                    '-httpListenAddr=127.0.0.1:%d' % self.port, '-search.disableCache',
                    '-search.latencyOffset=0s', '-search.maxUniqueTimeseries=10000000',
                    '-search.maxQueryDuration=300s'], log, 120)


def build_prometheus_data(work, data, instances, minutes, say):
    """dashboard_queries.py's data set and backfilled recording rules in ``data``; (start, end)."""
    import yaml  # pylint: disable=import-outside-toplevel
    prometheus, promtool, playbook = dq.tool('prometheus'), dq.tool('promtool'), dq.tool('ansible-playbook')
    end = int(time.time()) // dq.SCRAPE * dq.SCRAPE - 60
    start = end - minutes * 60
    step = time.monotonic()
    series, samples = dq.write_openmetrics(os.path.join(work, 'metrics.om'), instances, start, end)
    say('synthetic data: %d instances, %d series, %d samples each (every %d s over %d min), written in %.1f s' % (
        instances, series, samples, dq.SCRAPE, minutes, time.monotonic() - step))
    step = time.monotonic()
    subprocess.run([promtool, 'tsdb', 'create-blocks-from', 'openmetrics', os.path.join(work, 'metrics.om'), data],
                   check=True, stdout=subprocess.DEVNULL)
    os.remove(os.path.join(work, 'metrics.om'))
    say('promtool tsdb create-blocks-from openmetrics: %.1f s' % (time.monotonic() - step))
    subprocess.run([playbook, '-i', 'localhost,', os.path.join(REPO, 'tests', 'promtool', 'render_rules.yml'),
                    '-e', 'render_dir=%s' % work], check=True, cwd=REPO, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg')))
    log = os.path.join(work, 'prometheus.log')
    for number, rules in enumerate(dq.rule_levels(os.path.join(work, 'vllm_recording.yml'))):
        step = time.monotonic()
        rule_file = os.path.join(work, 'level%d.yml' % number)
        with open(rule_file, 'w', encoding='utf-8') as handle:
            yaml.safe_dump({'groups': [{'name': 'level%d' % number, 'interval': '30s', 'rules': rules}]}, handle)
        server = dq.Server(prometheus, data, log)
        out_dir = os.path.join(work, 'rules%d' % number)
        subprocess.run([promtool, 'tsdb', 'create-blocks-from', 'rules', '--start=%d' % (start + 120), '--end=%d' % end,
                        '--url=' + server.url, '--output-dir=' + out_dir, '--eval-interval=30s', rule_file],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
        server.stop()
        for block in os.listdir(out_dir):
            shutil.move(os.path.join(out_dir, block), os.path.join(data, block))
        say('promtool tsdb create-blocks-from rules, level %d (%d rules): %.1f s' % (number, len(rules), time.monotonic() - step))
    return start, end


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--instances', type=int, default=1000)
    parser.add_argument('--minutes', type=int, default=36)
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--output', default=os.path.join(HERE, 'global_store_queries.out.txt'))
    parser.add_argument('--keep', action='store_true', help='keep the work directory')
    args = parser.parse_args()
    victoria, vmctl = vm_tool('victoria-metrics'), vm_tool('vmctl')
    work = tempfile.mkdtemp(prefix='global-store-bench-')
    data, vm_data = os.path.join(work, 'data'), os.path.join(work, 'vm')
    os.makedirs(data)
    report = []

    def say(line):
        print(line, flush=True)
        report.append(line)

    prom_server = vm_server = None
    try:
        dummy, end = build_prometheus_data(work, data, args.instances, args.minutes, say)
        vm_server = VictoriaMetrics(victoria, vm_data, os.path.join(work, 'vm.log'))
        step = time.monotonic()
        # vmctl 1.79 draws progress bars on a terminal and fails without one: script(1) gives it one.
        command = [vmctl, 'prometheus', '--prom-snapshot=' + data, '--vm-addr=' + vm_server.url, '-s',
                   '--prom-concurrency=2', '--vm-concurrency=2', '--vm-disable-progress-bar']
        with open(os.path.join(work, 'vmctl.log'), 'w', encoding='utf-8') as vmctl_log:
            if subprocess.run(['script', '-qec', shlex.join(command), '/dev/null'], stdout=vmctl_log,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False).returncode:
                sys.exit('vmctl failed, see %s' % vmctl_log.name)
        with urllib.request.urlopen(vm_server.url + '/internal/force_flush', timeout=120):
            pass
        say('vmctl prometheus --prom-snapshot (the same blocks into VictoriaMetrics): %.1f s' % (time.monotonic() - step))
        prom_server = dq.Server(dq.tool('prometheus'), data, os.path.join(work, 'prometheus.log'))

        with open(os.path.join(REPO, 'roles', 'grafana', 'files', 'dashboards', 'vllm-fleet-overview.json'),
                  encoding='utf-8') as handle:
            dashboard = json.load(handle)
        values = check_queries.selected_values(dashboard)
        values.update({'__range': '30m', '__range_s': str(dq.RANGE), '__rate_interval': dq.RATE, '__interval': '%ds' % dq.STEP})
        fleet = [(where, check_queries.substitute(expr, values), is_range)
                 for where, expr, is_range in check_queries.queries_of(dashboard, with_range=True)]
        raw = [(expr, expr, True) for expr in dq.RAW]
        engines = (('prometheus', prom_server.url), ('victoriametrics', vm_server.url))
        for dummy, expr, is_range in fleet + raw:  # warm up both; also proves the data is there
            for dummy2, url in engines:
                dq.query(url, expr, end, is_range)
        timings = {(name, where): [] for name, dummy in engines for where, dummy2, dummy3 in fleet + raw}
        sizes = {}
        for dummy in range(args.runs):
            for where, expr, is_range in fleet + raw:
                for name, url in engines:
                    elapsed, size = dq.query(url, expr, end, is_range)
                    timings[(name, where)].append(elapsed)
                    sizes[(name, where)] = size
    finally:
        for server in (prom_server, vm_server):
            if server:
                server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    def med(name, where):
        return statistics.median(timings[(name, where)])

    versions = []
    for binary, flag in ((dq.tool('prometheus'), '--version'), (victoria, '-version')):
        out = subprocess.run([binary, flag], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True).stdout
        # Debian's victoria-metrics build prints an empty version.
        versions.append(out.strip().split('\n')[0].split(' (')[0] or os.path.basename(binary) + ' (' + binary + ')')
    say('')
    say('%s vs %s; %d runs, engines alternated query by query; median per query;' % (versions[0], versions[1], args.runs))
    say('range queries over %d min at a %d s step, $__rate_interval %s; VictoriaMetrics with -search.disableCache' % (
        dq.RANGE // 60, dq.STEP, dq.RATE))
    say('')
    say('%-62s %10s %10s %7s %13s' % ('query', 'Prom s', 'VM s', 'VM/Prom', 'series P/VM'))
    mismatched = []
    for title, queries in (('vllm-fleet-overview', fleet), ('upstream-style raw queries', raw)):
        say('-- %s' % title)
        for where, dummy, dummy2 in queries:
            prom, vm = med('prometheus', where), med('victoriametrics', where)
            sp, sv = sizes[('prometheus', where)], sizes[('victoriametrics', where)]
            if sp != sv:
                mismatched.append(where)
            say('%-62s %10.4f %10.4f %7.2f %6d/%-6d' % (where[:62], prom, vm, vm / prom if prom else 0, sp, sv))
    say('')
    for title, queries in (('vllm-fleet-overview, every query (%d)' % len(fleet), fleet),
                           ('upstream-style raw set (%d)' % len(raw), raw)):
        prom = sum(med('prometheus', w) for w, d, d2 in queries)
        vm = sum(med('victoriametrics', w) for w, d, d2 in queries)
        say('%-45s Prometheus %.3f s, VictoriaMetrics %.3f s, ratio VM/Prom %.2f' % (title + ':', prom, vm, vm / prom))
    empty = [w for w, d, d2 in fleet if not sizes[('victoriametrics', w)]]
    if empty:
        say('fleet queries without data in either engine (no gateway in the synthetic data): %d' % len(empty))
    if mismatched:
        say('queries whose series counts differ between the engines: %s' % ', '.join(mismatched))
    with open(args.output, 'w', encoding='utf-8') as handle:
        handle.write('# benchmarks/global_store_queries.py --instances %d --runs %d, %s, %d CPUs\n' % (
            args.instances, args.runs, time.strftime('%Y-%m-%d'), os.cpu_count()))
        handle.write('\n'.join(report) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
