# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of the dashboards in roles/grafana/files/dashboards.

Static: valid JSON, unique uids, a ``datasource`` template variable, every panel
on ``${datasource}``, every target with an expr, every vllm:* metric known to
vLLM 0.32 (tests/unit/fixtures/vllm-0.32.0-cpu-metrics.txt) or in the V0 list,
the KV-cache panels covering the V1 and the V0 name.

With a real Prometheus (the ``prometheus`` binary on PATH, in
.cache/promtool/usr/bin, or named by $PROMETHEUS_BIN; skipped otherwise):
Prometheus scrapes two stub targets serving recorded /metrics of vLLM 0.32 and of
a V0 server, then check_queries.py must pass every query of the vLLM dashboards
with data (and the GPU dashboard's for syntax), and must fail on a broken query
and on a query without data.
"""

import functools
import glob
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DASHBOARDS = os.path.join(REPO, 'roles', 'grafana', 'files', 'dashboards')
FIXTURES = os.path.join(REPO, 'tests', 'unit', 'fixtures')
V1_SAMPLE = os.path.join(FIXTURES, 'vllm-0.32.0-cpu-metrics.txt')
V0_SAMPLE = os.path.join(FIXTURES, 'vllm-v0-metrics-from-seed.txt')

sys.path.insert(0, HERE)
import check_queries  # noqa: E402  pylint: disable=wrong-import-position

# V0-engine names the dashboards may use as a fallback (`or`) next to the V1 name.
V0_ALLOWED = {
    'vllm:gpu_cache_usage_perc',
    'vllm:cpu_cache_usage_perc',
    'vllm:num_requests_swapped',
    'vllm:time_per_output_token_seconds_bucket',
    'vllm:time_per_output_token_seconds_sum',
    'vllm:time_per_output_token_seconds_count',
}

METRIC = re.compile(r'vllm:[A-Za-z0-9_:]+')


def sample_names(path):
    names = set()
    with open(path, encoding='utf-8') as handle:
        for line in handle:
            if line.strip() and not line.startswith('#'):
                names.add(re.split(r'[{\s]', line, 1)[0])
    return names


def dashboard_files():
    return sorted(glob.glob(os.path.join(DASHBOARDS, '*.json')))


def load(path):
    with open(path, encoding='utf-8') as handle:
        return json.load(handle)


def targets(dashboard):
    for panel in check_queries.walk_panels(dashboard['panels']):
        if panel.get('type') == 'row':
            continue
        for target in panel.get('targets') or []:
            yield panel, target


@pytest.fixture(scope='module')
def dashboards():
    files = dashboard_files()
    assert len(files) >= 3, 'expected the fleet, instance and GPU dashboards in %s' % DASHBOARDS
    return dict((os.path.basename(path), load(path)) for path in files)


def test_uids_unique_and_titles(dashboards):
    uids = [d['uid'] for d in dashboards.values()]
    assert len(uids) == len(set(uids)), uids
    titles = [d['title'] for d in dashboards.values()]
    assert len(titles) == len(set(titles)), titles
    for name, d in dashboards.items():
        assert re.match(r'^[A-Za-z0-9_-]{1,40}$', d['uid']), name
        assert d['title'].strip() == d['title'] and d['title'], name
        assert 'id' not in d or d['id'] is None, '%s: no numeric id in a file to import' % name
        assert '__inputs' not in d, '%s: provisioning files cannot fill __inputs' % name
    assert set(uids) >= {'vllm-fleet-overview', 'vllm-instance-detail', 'gpu-dcgm'}


def test_variables(dashboards):
    for name, d in dashboards.items():
        variables = dict((v['name'], v) for v in d['templating']['list'])
        assert variables['datasource']['type'] == 'datasource', name
        assert variables['datasource']['query'] == 'prometheus', name
        for variable in variables.values():
            if variable['type'] == 'query':
                assert variable['datasource']['uid'] == '${datasource}', (name, variable['name'])
        if name.startswith('vllm-'):
            assert {'job', 'model_name', 'instance'} <= set(variables), name


def test_every_panel_uses_the_datasource_variable_and_has_exprs(dashboards):
    for name, d in dashboards.items():
        ids = []
        for panel in check_queries.walk_panels(d['panels']):
            if panel.get('type') == 'row':
                continue
            ids.append(panel['id'])
            assert panel['datasource'] == {'type': 'prometheus', 'uid': '${datasource}'}, (name, panel['title'])
            assert panel.get('targets'), (name, panel['title'])
            assert 'gridPos' in panel, (name, panel['title'])
            for target in panel['targets']:
                assert target.get('expr', '').strip(), (name, panel['title'], target.get('refId'))
                assert target.get('datasource', panel['datasource'])['uid'] == '${datasource}', (name, panel['title'])
            ref_ids = [t['refId'] for t in panel['targets']]
            assert len(ref_ids) == len(set(ref_ids)), (name, panel['title'])
        assert len(ids) == len(set(ids)), name


def test_metrics_exist(dashboards):
    known = sample_names(V1_SAMPLE)
    v0 = sample_names(V0_SAMPLE) | V0_ALLOWED
    for name, d in dashboards.items():
        for panel, target in targets(d):
            for metric in METRIC.findall(target['expr']):
                assert metric in known or metric in v0, '%s panel %r: %s is not a vLLM 0.32 metric nor an allowed V0 one' % (
                    name, panel['title'], metric)
                if metric in v0 and metric not in known:
                    assert ' or ' in target['expr'], '%s panel %r: V0-only %s without the V1 name' % (name, panel['title'], metric)


def test_kv_cache_panels_cover_both_names(dashboards):
    seen = 0
    for name, d in dashboards.items():
        for panel, target in targets(d):
            expr = target['expr']
            if 'kv_cache_usage_perc' in expr or 'gpu_cache_usage_perc' in expr:
                assert 'vllm:kv_cache_usage_perc' in expr and 'vllm:gpu_cache_usage_perc' in expr, (name, panel['title'])
                seen += 1
    assert seen >= 3


def test_fleet_overview_has_the_required_panels(dashboards):
    fleet = dashboards['vllm-fleet-overview.json']
    exprs = ' '.join(t['expr'] for p, t in targets(fleet))
    for metric in ('request_success_total', 'prompt_tokens_total', 'generation_tokens_total',
                   'time_to_first_token_seconds_bucket', 'inter_token_latency_seconds_bucket',
                   'e2e_request_latency_seconds_bucket', 'num_requests_running', 'num_requests_waiting',
                   'kv_cache_usage_perc', 'num_preemptions_total'):
        assert 'vllm:' + metric in exprs, metric
    assert 'finished_reason' in exprs
    assert any(p['type'] == 'table' for p in fleet['panels'])


def test_gpu_dashboard_reads_dcgm(dashboards):
    exprs = [t['expr'] for p, t in targets(dashboards['gpu-dcgm.json'])]
    assert exprs and all('DCGM_FI_' in e for e in exprs)


def test_substitute():
    expr = 'rate(x{job=~"$job", instance=~"${instance}", m=~"[[model_name]]"}[$__rate_interval]) + increase(y[$__range])'
    assert check_queries.substitute(expr, {'job': 'vllm'}) == \
        'rate(x{job=~"vllm", instance=~".*", m=~".*"}[1m]) + increase(y[5m])'
    assert check_queries.substitute('$__range_s', {}) == '300'


def test_queries_of_includes_variables(dashboards):
    found = list(check_queries.queries_of(dashboards['vllm-fleet-overview.json']))
    assert any(where.startswith('variable') and expr.startswith('vllm:num_requests_running') for where, expr in found)
    assert sum(1 for where, dummy in found if where.startswith('panel')) > 20


# ---- against a real Prometheus ------------------------------------------------

def prometheus_binary():
    for candidate in (os.environ.get('PROMETHEUS_BIN'), shutil.which('prometheus'),
                      os.path.join(REPO, '.cache', 'promtool', 'usr', 'bin', 'prometheus')):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class MetricsHandler(http.server.BaseHTTPRequestHandler):
    def __init__(self, *args, body=b'', **kwargs):
        self.body = body
        super().__init__(*args, **kwargs)

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
        self.send_header('Content-Length', str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def serve(path):
    with open(path, 'rb') as handle:
        body = handle.read()
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(MetricsHandler, body=body))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope='module')
def prometheus(tmp_path_factory):
    binary = prometheus_binary()
    if binary is None:
        pytest.skip('no prometheus binary (set PROMETHEUS_BIN)')
    root = tmp_path_factory.mktemp('prometheus')
    v1, v0 = serve(V1_SAMPLE), serve(V0_SAMPLE)
    port = free_port()
    config = root / 'prometheus.yml'
    config.write_text(
        'global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n'
        'scrape_configs:\n  - job_name: vllm\n    static_configs:\n'
        '      - targets: ["127.0.0.1:%d", "127.0.0.1:%d"]\n' % (v1.server_address[1], v0.server_address[1]))
    log = open(str(root / 'prometheus.log'), 'w')
    process = subprocess.Popen([binary, '--config.file=%s' % config, '--storage.tsdb.path=%s' % (root / 'data'),
                                '--web.listen-address=127.0.0.1:%d' % port], stdout=log, stderr=subprocess.STDOUT)
    url = 'http://127.0.0.1:%d' % port
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (root / 'prometheus.log').read_text()
            try:
                with urllib.request.urlopen(url + '/-/ready', timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, 'Prometheus did not get ready'
            time.sleep(0.5)
        yield url, root
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        v1.shutdown()
        v0.shutdown()


def run_check(url, *args):
    return subprocess.run([sys.executable, os.path.join(HERE, 'check_queries.py'), '--prometheus', url] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=600)


def test_every_query_returns_data_from_recorded_vllm_metrics(prometheus):
    url, dummy = prometheus
    completed = run_check(url, '--gpu-syntax-only', '--wait', '90', '--quiet')
    assert completed.returncode == 0, completed.stdout
    assert ' 0 failed' in completed.stdout


def test_gpu_queries_are_empty_without_a_gpu(prometheus):
    url, dummy = prometheus
    completed = run_check(url, '--quiet')
    assert completed.returncode == 1, completed.stdout
    assert 'EMPTY gpu-dcgm.json' in completed.stdout
    assert 'EMPTY vllm-' not in completed.stdout


def test_check_fails_on_bad_syntax_and_missing_data(prometheus):
    url, root = prometheus
    broken = root / 'broken'
    broken.mkdir()
    (broken / 'd.json').write_text(json.dumps({'uid': 'x', 'title': 'x', 'panels': [
        {'id': 1, 'title': 'syntax', 'targets': [{'refId': 'A', 'expr': 'sum(rate(vllm:num_requests_running[$__rate_interval])'}]},
        {'id': 2, 'title': 'nothing', 'targets': [{'refId': 'A', 'expr': 'vllm:no_such_metric{job=~"$job"}'}]},
    ]}))
    completed = run_check(url, '--dashboards', str(broken))
    assert completed.returncode == 1, completed.stdout
    assert "ERROR d.json panel 'syntax'" in completed.stdout
    assert "EMPTY d.json panel 'nothing'" in completed.stdout
    completed = run_check(url, '--dashboards', str(broken), '--syntax-only')
    assert completed.returncode == 1 and 'EMPTY' not in completed.stdout and 'ERROR' in completed.stdout
