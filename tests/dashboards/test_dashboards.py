# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of the dashboards in roles/grafana/files/dashboards.

Static: valid JSON, unique uids, a ``datasource`` template variable, every panel
on ``${datasource}``, every target with an expr, every vllm:* metric known to
vLLM 0.32 (tests/unit/fixtures/vllm-0.32.0-cpu-metrics.txt) or to the V0 engine,
the KV-cache panels covering the V1 and the V0 name, and the fleet dashboard
reading recorded series only (no raw vllm: counter, bucket or gauge).

With a real Prometheus (the ``prometheus`` binary on PATH, in
.cache/promtool/usr/bin, or named by $PROMETHEUS_BIN) and ansible-playbook (to
render the role's recording rules; skipped otherwise), twice: once scraping a
V1-only vLLM target (recorded /metrics of vLLM 0.32) and once a V0-only target
(tests/dashboards/fixtures/vllm-0.8-v0-metrics-built.txt, built from vLLM's V0
metric definitions), each next to the gateway's HAProxy page and a Triton
server's page (both built, same folder; the Triton page from Triton's documented
metric names). The stub targets make every counter and histogram grow with time, so
rates and quantiles have data. check_queries.py must pass every query of the
vLLM dashboards with data and without NaN (the GPU dashboard's for syntax); on
the V0 target exactly the queries of metrics V0 never had may be empty. It must
fail on a broken query, on a query without data and on a NaN result.
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
V0_BUILT = os.path.join(HERE, 'fixtures', 'vllm-0.8-v0-metrics-built.txt')
HAPROXY_BUILT = os.path.join(HERE, 'fixtures', 'haproxy-2.6-metrics-built.txt')
TRITON_BUILT = os.path.join(HERE, 'fixtures', 'triton-metrics-built.txt')
RULES_PLAYBOOK = os.path.join(REPO, 'tests', 'promtool', 'render_rules.yml')

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


def targets(dashboard, triton=False):
    """(panel, target) of every panel; those of the Triton row only with ``triton``, else none of them."""
    inside = set(id(p) for p in triton_panels(dashboard))
    for panel in check_queries.walk_panels(dashboard['panels']):
        if panel.get('type') == 'row' or (id(panel) in inside) != triton:
            continue
        for target in panel.get('targets') or []:
            yield panel, target


def triton_panels(dashboard):
    """Panels of a row titled Triton...: Triton's metrics, checked against the Triton page."""
    out, row = [], None
    for panel in dashboard['panels']:
        if panel.get('type') == 'row':
            row = panel['title']
            out.extend(p for p in panel.get('panels') or [] if row.startswith('Triton'))
        elif row and row.startswith('Triton'):
            out.append(panel)
    return out


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
            assert {'job', 'model_name'} <= set(variables), name
    detail = dict((v['name'], v) for v in dashboards['vllm-instance-detail.json']['templating']['list'])
    assert not detail['instance']['multi'] and not detail['instance']['includeAll'], 'the detail dashboard shows one instance'
    fleet = dict((v['name'], v) for v in dashboards['vllm-fleet-overview.json']['templating']['list'])
    assert 'instance' not in fleet, 'the fleet dashboard is not filtered by instance'
    for name in ('ttft_slo', 'e2e_slo'):
        assert fleet[name]['type'] == 'custom' and '.' in fleet[name]['current']['value'], 'an le bound as vLLM writes it'


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
    v0 = sample_names(V0_SAMPLE) | sample_names(V0_BUILT) | V0_ALLOWED
    for name, d in dashboards.items():
        for panel, target in targets(d):
            for metric in METRIC.findall(target['expr']):
                assert metric in known or metric in v0, '%s panel %r: %s is not a vLLM 0.32 metric nor an allowed V0 one' % (
                    name, panel['title'], metric)
                if metric in v0 and metric not in known:
                    assert ' or ' in target['expr'], '%s panel %r: V0-only %s without the V1 name' % (name, panel['title'], metric)


_NAME = re.compile(r'(?<![A-Za-z0-9_:"$])([A-Za-z_:][A-Za-z0-9_:]*)\s*\{')


def test_triton_row_reads_the_documented_triton_metrics(dashboards):
    """The Triton row: Triton's own metrics and its vLLM backend's, by their documented names and labels."""
    detail = dashboards['vllm-instance-detail.json']
    panels = triton_panels(detail)
    assert len(panels) >= 10
    page = sample_names(TRITON_BUILT)
    exprs = ' '.join(t['expr'] for p, t in targets(detail, triton=True))
    read = set(_NAME.findall(exprs))
    assert read and read <= page, sorted(read - page)
    for metric in ('nv_inference_request_success', 'nv_inference_request_failure', 'nv_inference_count',
                   'nv_inference_exec_count', 'nv_inference_request_duration_us', 'nv_inference_queue_duration_us',
                   'nv_inference_compute_input_duration_us', 'nv_inference_compute_infer_duration_us',
                   'nv_inference_compute_output_duration_us', 'nv_inference_pending_request_count',
                   'nv_gpu_utilization', 'nv_gpu_memory_used_bytes', 'vllm:prompt_tokens_total',
                   'vllm:generation_tokens_total', 'vllm:time_to_first_token_seconds_bucket',
                   'vllm:time_per_output_token_seconds_bucket', 'vllm:e2e_request_latency_seconds_bucket'):
        assert metric in read, metric
    # Triton labels its series model and version (not vLLM's model_name), and its own job.
    for panel, target in targets(detail, triton=True):
        assert 'model_name' not in target['expr'] and 'job=~"$triton_job"' in target['expr'], panel['title']
    variables = dict((v['name'], v) for v in detail['templating']['list'])
    assert {'triton_job', 'triton_instance', 'triton_model'} <= set(variables)


def test_kv_cache_panels_cover_both_names(dashboards):
    seen = 0
    for name, d in dashboards.items():
        for panel, target in targets(d):
            expr = target['expr']
            if 'vllm:kv_cache_usage_perc' in expr or 'vllm:gpu_cache_usage_perc' in expr:
                assert 'vllm:kv_cache_usage_perc' in expr and 'vllm:gpu_cache_usage_perc' in expr, (name, panel['title'])
                seen += 1
    assert seen >= 2
    # The fleet reads the recorded series, whose rule falls back to the V0 name.
    template = open(os.path.join(REPO, 'roles', 'prometheus', 'templates', 'rules', 'vllm_recording.yml.j2'), encoding='utf-8').read()
    assert 'vllm:gpu_cache_usage_perc' in template and "'time_per_output_token_seconds'" in template


_SELECTOR_NAME = re.compile(r'(?<![A-Za-z0-9_:"])([A-Za-z_:][A-Za-z0-9_:]*)\s*\{')
_RAW_VLLM = re.compile(r'vllm:[A-Za-z0-9_:]+')


def raw_vllm_reads(expr):
    """vllm: metrics (raw engine series) an expression reads."""
    return sorted(set(_RAW_VLLM.findall(expr)))


def fleet_exprs(dashboards):
    fleet = dashboards['vllm-fleet-overview.json']
    return [(where, expr) for where, expr in check_queries.queries_of(fleet)]


def test_fleet_reads_recorded_series_only(dashboards):
    """Lint: no fleet query (panels and variables) reads a raw vllm: counter, bucket or gauge."""
    for where, expr in fleet_exprs(dashboards):
        raw = raw_vllm_reads(expr)
        assert not raw, 'vllm-fleet-overview %s reads raw %s; add a recording rule: %s' % (where, raw, expr)
        for name in _SELECTOR_NAME.findall(expr):
            assert name.count(':') >= 2 or name == 'up', \
                'vllm-fleet-overview %s reads %s, which is not a recorded series: %s' % (where, name, expr)


def test_the_fleet_lint_catches_raw_reads():
    assert raw_vllm_reads('sum(rate(vllm:request_success_total{job=~"$job"}[$__rate_interval]))') == ['vllm:request_success_total']
    assert raw_vllm_reads('histogram_quantile(0.9, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket[1m])))')
    assert not raw_vllm_reads('sum(model_name:vllm_request_success:rate1m{job=~"$job"})')
    assert _SELECTOR_NAME.findall('sum(model_name:vllm_x:rate1m{a="b"}) / up{job="x"} + foo_total{a="1"}') == \
        ['model_name:vllm_x:rate1m', 'up', 'foo_total']


def test_fleet_overview_has_the_required_panels(dashboards):
    fleet = dashboards['vllm-fleet-overview.json']
    exprs = ' '.join(expr for where, expr in fleet_exprs(dashboards))
    for recorded in ('model_name:vllm_request_success:rate1m', 'model_name:vllm_prompt_tokens:rate1m',
                     'model_name:vllm_generation_tokens:rate1m', 'model_name:vllm_time_to_first_token_seconds:histogram_quantile_rate1m',
                     'model_name:vllm_inter_token_latency_seconds:histogram_quantile_rate1m',
                     'model_name:vllm_e2e_request_latency_seconds:histogram_quantile_rate1m',
                     'model_name:vllm_num_requests_running:sum', 'model_name:vllm_num_requests_waiting:sum',
                     'model_name:vllm_kv_cache_usage_perc:max', 'model_name:vllm_num_preemptions:rate1m',
                     'model_name_finished_reason:vllm_request_success:rate1m', 'vllm_model:vllm_up:count',
                     'model_name_le:vllm_time_to_first_token_seconds_bucket:rate1m',
                     'model_name_le:vllm_e2e_request_latency_seconds_bucket:rate1m',
                     'proxy_state:haproxy_server_status:sum', 'server:haproxy_server_http_responses:rate1m',
                     'proxy:haproxy_backend_current_queue:sum', 'proxy:haproxy_backend_retry_warnings:rate1m'):
        assert recorded in exprs, recorded
    assert 'code="5xx"' in exprs and 'le="$ttft_slo"' in exprs and 'le="$e2e_slo"' in exprs
    titles = [p['title'] for p in check_queries.walk_panels(fleet['panels'])]
    assert 'Instances down' in titles and any(t.startswith('Gateway') for t in titles)
    assert any(p['type'] == 'table' for p in fleet['panels'])
    # Latency per model, never one percentile over every model.
    for where, expr in fleet_exprs(dashboards):
        if 'histogram_quantile' in expr:
            assert 'model_name' in expr, where


def test_ratios_cannot_be_nan(dashboards):
    """Every division guards its denominator (x / (y > 0)), so an idle fleet shows 0 or no data, not NaN."""
    for name in ('vllm-fleet-overview.json', 'vllm-instance-detail.json'):
        for where, expr in check_queries.queries_of(dashboards[name]):
            for part in re.split(r'\s/\s', expr)[1:]:
                assert re.match(r'\s*\(.*>\s*0\)', part, re.DOTALL), '%s %s divides by an unguarded denominator: %s' % (name, where, expr)


def test_instance_detail_covers_what_an_operator_debugs(dashboards):
    exprs = ' '.join(e for w, e in check_queries.queries_of(dashboards['vllm-instance-detail.json']))
    for metric in ('request_queue_time_seconds_bucket', 'request_time_per_output_token_seconds_bucket',
                   'request_prefill_time_seconds_bucket', 'request_decode_time_seconds_bucket',
                   'request_prompt_tokens_bucket', 'request_generation_tokens_bucket', 'prefix_cache_hits_total',
                   'gpu_prefix_cache_hit_rate', 'num_preemptions_total', 'inter_token_latency_seconds_bucket',
                   'time_per_output_token_seconds_bucket'):
        assert 'vllm:' + metric in exprs, metric
    assert 'http_requests_total' in exprs and 'by (status)' in exprs
    assert 'process_resident_memory_bytes' in exprs


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
    assert any(where.startswith('variable') and expr.startswith('model_name:vllm_num_requests_running:sum') for where, expr in found)
    assert sum(1 for where, dummy in found if where.startswith('panel')) > 20
    ranged = dict((where, is_range) for where, dummy, is_range in
                  check_queries.queries_of(dashboards['vllm-fleet-overview.json'], with_range=True))
    assert ranged["panel 'Requests/s by model' target A"] and not ranged["panel 'Requests/s' target A"]


def test_custom_variables_take_their_selected_value(dashboards):
    values = check_queries.selected_values(dashboards['vllm-fleet-overview.json'])
    assert values['ttft_slo'] == '1.0' and values['e2e_slo'] == '10.0'


def test_bad_values():
    assert check_queries.bad_values([{'metric': {}, 'value': [1, 'NaN']}])
    assert check_queries.bad_values([{'metric': {}, 'values': [[1, '1'], [2, '+Inf']]}])
    assert not check_queries.bad_values([{'metric': {}, 'values': [[1, '0'], [2, '0.5']]}])
    assert check_queries.bad_values([[1, 'NaN']])


# ---- against a real Prometheus ------------------------------------------------

# Queries that are empty on the V0-only target, each because V0 never exported
# the metric (no fallback is possible). Any other empty query on V0 fails.
V0_EMPTY = {
    # V0's multiprocess frontend (prometheus_client in multiprocess mode) exports no process_* metrics.
    "EMPTY vllm-instance-detail.json panel 'Resident memory' target A",
    "EMPTY vllm-instance-detail.json panel 'Process memory' target A",
    "EMPTY vllm-instance-detail.json panel 'Process memory' target B",
}


def prometheus_binary():
    for candidate in (os.environ.get('PROMETHEUS_BIN'), shutil.which('prometheus'),
                      os.path.join(REPO, '.cache', 'promtool', 'usr', 'bin', 'prometheus')):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def ansible_playbook():
    for candidate in (os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), shutil.which('ansible-playbook')):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def growing_page(text, factor):
    """The page with every counter, histogram and summary sample (not *_created) times ``factor``."""
    families, out = {}, []
    for line in text.splitlines():
        if line.startswith('# TYPE '):
            parts = line.split()
            families[parts[2]] = parts[3]
        elif line.strip() and not line.startswith('#'):
            name, rest = re.split(r'(?=[{\s])', line, 1)
            base = re.sub(r'_(total|bucket|sum|count)$', '', name)
            kind = families.get(name) or families.get(base)
            if kind in ('counter', 'histogram', 'summary') and not name.endswith('_created'):
                head, value = line.rsplit(' ', 1)
                line = '%s %r' % (head, float(value) * factor)
        out.append(line)
    return ('\n'.join(out) + '\n').encode()


class MetricsHandler(http.server.BaseHTTPRequestHandler):
    """Serves a recorded or built page whose counters grow by 20 % of their value per second."""

    def __init__(self, *args, text='', started=0.0, **kwargs):
        self.text = text
        self.started = started
        super().__init__(*args, **kwargs)

    def do_GET(self):  # noqa: N802
        body = growing_page(self.text, 1 + (time.monotonic() - self.started) / 5)
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve(path):
    with open(path, encoding='utf-8') as handle:
        text = handle.read()
    handler = functools.partial(MetricsHandler, text=text, started=time.monotonic())
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


TARGETS = {
    'v1': (V1_SAMPLE, 'tiny'),
    'v0': (V0_BUILT, 'tiny-v0'),
}


@pytest.fixture(scope='module', params=sorted(TARGETS))
def prometheus(request, tmp_path_factory):
    binary, playbook = prometheus_binary(), ansible_playbook()
    if binary is None:
        pytest.skip('no prometheus binary (set PROMETHEUS_BIN)')
    if playbook is None:
        pytest.skip('no ansible-playbook to render the recording rules')
    engine = request.param
    page, model = TARGETS[engine]
    root = tmp_path_factory.mktemp('prometheus-%s' % engine)
    rendered = subprocess.run([playbook, '-i', 'localhost,', RULES_PLAYBOOK, '-e', 'render_dir=%s' % root],
                              cwd=REPO, env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg')),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    assert rendered.returncode == 0, rendered.stdout[-3000:]
    vllm, gateway, triton = serve(page), serve(HAPROXY_BUILT), serve(TRITON_BUILT)
    port = free_port()
    config = root / 'prometheus.yml'
    config.write_text(
        'global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n'
        'rule_files: ["%s"]\n'
        'scrape_configs:\n'
        '  - job_name: vllm\n    static_configs:\n'
        '      - targets: ["127.0.0.1:%d"]\n'
        '        labels: {host: gpu-a, vllm_instance: main, vllm_model: "%s"}\n'
        '  - job_name: gateway\n    static_configs:\n'
        '      - targets: ["127.0.0.1:%d"]\n'
        '        labels: {host: gw}\n'
        '  - job_name: triton\n    static_configs:\n'
        '      - targets: ["127.0.0.1:%d"]\n'
        '        labels: {host: tr}\n' % (root / 'vllm_recording.yml', vllm.server_address[1], model,
                                         gateway.server_address[1], triton.server_address[1]))
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
        yield engine, url, root
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        vllm.shutdown()
        gateway.shutdown()
        triton.shutdown()


def run_check(url, *args):
    return subprocess.run([sys.executable, os.path.join(HERE, 'check_queries.py'), '--prometheus', url] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=600)


def failed(stdout):
    return set(line for line in stdout.splitlines() if line.startswith(('EMPTY ', 'ERROR ', 'NAN ')))


def test_every_query_returns_data_without_nan(prometheus):
    engine, url, dummy = prometheus
    completed = run_check(url, '--gpu-syntax-only', '--wait', '60', '--quiet')
    if engine == 'v1':
        assert completed.returncode == 0, completed.stdout
        assert ' 0 failed' in completed.stdout
    else:
        summary = set(line.split(':')[0] for line in failed(completed.stdout))
        assert summary == V0_EMPTY, completed.stdout


def test_gpu_queries_are_empty_without_a_gpu(prometheus):
    engine, url, dummy = prometheus
    if engine != 'v1':
        pytest.skip('once is enough')
    completed = run_check(url, '--quiet')
    assert completed.returncode == 1, completed.stdout
    assert 'EMPTY gpu-dcgm.json' in completed.stdout
    assert 'EMPTY vllm-' not in completed.stdout and 'NAN' not in completed.stdout


def test_check_fails_on_bad_syntax_missing_data_and_nan(prometheus):
    engine, url, root = prometheus
    if engine != 'v1':
        pytest.skip('once is enough')
    broken = root / 'broken'
    broken.mkdir()
    (broken / 'd.json').write_text(json.dumps({'uid': 'x', 'title': 'x', 'panels': [
        {'id': 1, 'title': 'syntax', 'targets': [{'refId': 'A', 'expr': 'sum(rate(vllm:num_requests_running[$__rate_interval])'}]},
        {'id': 2, 'title': 'nothing', 'targets': [{'refId': 'A', 'expr': 'vllm:no_such_metric{job=~"$job"}'}]},
        {'id': 3, 'title': 'nan', 'type': 'stat', 'targets': [
            {'refId': 'A', 'instant': True, 'expr': 'sum(rate(vllm:num_preemptions_total[1m])) / sum(rate(vllm:num_preemptions_total[1m]))'}]},
        {'id': 4, 'title': 'nan over time', 'type': 'timeseries', 'targets': [
            {'refId': 'A', 'range': True, 'instant': False, 'expr': 'histogram_quantile(0.5, sum by (le) (rate(vllm:request_params_n_bucket[1m]) * 0))'}]},
    ]}))
    completed = run_check(url, '--dashboards', str(broken))
    assert completed.returncode == 1, completed.stdout
    assert "ERROR d.json panel 'syntax'" in completed.stdout
    assert "EMPTY d.json panel 'nothing'" in completed.stdout
    assert "NAN d.json panel 'nan' target A" in completed.stdout
    assert "NAN d.json panel 'nan over time' target A" in completed.stdout
    completed = run_check(url, '--dashboards', str(broken), '--syntax-only')
    assert completed.returncode == 1 and 'EMPTY' not in completed.stdout and 'ERROR' in completed.stdout
