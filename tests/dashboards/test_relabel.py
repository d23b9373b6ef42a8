# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vLLM job's scrape-time drop list (prometheus_vllm_drop_metrics) drops
nothing that is read.

Every metric name that a dashboard query reads (any ``expr`` in
roles/grafana/files/dashboards/*.json and the query of every template
variable), and every name in the expression of every rule the prometheus
role renders (alerts and recording rules, rendered with the role's defaults
by tests/promtool/render_rules.yml, as tests/promtool/run.sh does), must not
match any regular expression of the list. The list must drop every
``*_created`` series of the recorded vLLM 0.32 page and keep every vllm:
series of it.

With a real Prometheus (see test_dashboards.py for where it is found), the
role's prometheus.yml template is rendered with its defaults and one vLLM
target serving the recorded page; Prometheus (RE2, its own anchoring) must
then store no dropped series and every series a query reads.
"""

import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULTS = os.path.join(REPO, 'roles', 'prometheus', 'defaults', 'main.yml')
DASHBOARDS = os.path.join(REPO, 'roles', 'grafana', 'files', 'dashboards')
V1_SAMPLE = os.path.join(REPO, 'tests', 'unit', 'fixtures', 'vllm-0.32.0-cpu-metrics.txt')
RULES_PLAYBOOK = os.path.join(REPO, 'tests', 'promtool', 'render_rules.yml')

sys.path.insert(0, HERE)
import test_dashboards  # noqa: E402  pylint: disable=wrong-import-position

KEYWORDS = {'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'offset',
            'bool', 'inf', 'nan', 'atan2', 'start', 'end'}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r'\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)', re.IGNORECASE)
_IDENT = re.compile(r'(?<![A-Za-z0-9_:.$])([A-Za-z_:][A-Za-z0-9_:]*)(?![A-Za-z0-9_:]|\s*\()')


def metric_names(expr):
    """Every identifier of a PromQL expression that can be a metric name (a superset:
    label names outside braces count too, which only makes the check stricter)."""
    expr = _STRING.sub('""', expr)
    expr = re.sub(r'\{[^{}]*\}', ' ', expr)
    expr = re.sub(r'\[[^\[\]]*\]', ' ', expr)
    expr = _GROUPING.sub(' ', expr)
    return set(name for name in _IDENT.findall(expr) if name.lower() not in KEYWORDS)


def drop_list():
    with open(DEFAULTS, encoding='utf-8') as handle:
        return yaml.safe_load(handle)['prometheus_vllm_drop_metrics']


def dropped(name, patterns):
    return [p for p in patterns if re.fullmatch(p, name)]


def dashboard_exprs():
    """(where, query) for every expr anywhere in a dashboard and every template variable query."""
    def walk(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == 'expr' and isinstance(value, str):
                    yield where, value
                else:
                    yield from walk(value, where)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item, where)

    for path in test_dashboards.dashboard_files():
        name = os.path.basename(path)
        dashboard = test_dashboards.load(path)
        yield from walk(dashboard.get('panels'), name)
        yield from walk(dashboard.get('annotations'), name + ' annotations')
        for variable in (dashboard.get('templating') or {}).get('list') or []:
            if variable.get('type') != 'query':
                continue
            query = variable.get('query')
            if isinstance(query, dict):
                query = query.get('query')
            if isinstance(query, str) and query:
                yield '%s variable %s' % (name, variable.get('name')), query


@pytest.fixture(scope='module')
def rule_exprs(tmp_path_factory):
    playbook = test_dashboards.ansible_playbook()
    assert playbook, 'ansible-playbook is needed to render the rules'
    root = tmp_path_factory.mktemp('rules')
    rendered = subprocess.run([playbook, '-i', 'localhost,', RULES_PLAYBOOK, '-e', 'render_dir=%s' % root],
                              cwd=REPO, env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg')),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    assert rendered.returncode == 0, rendered.stdout[-3000:]
    found = []
    for name in sorted(os.listdir(str(root))):
        with open(str(root / name), encoding='utf-8') as handle:
            doc = yaml.safe_load(handle)
        for group in doc['groups']:
            for rule in group['rules']:
                found.append(('%s %s %s' % (name, group['name'], rule.get('alert') or rule.get('record')), rule['expr']))
    assert len(found) > 30, found
    return found


def test_metric_names():
    assert metric_names('sum by (model_name, le) (rate(vllm:x_bucket{job=~"$job", le="1.0"}[$__rate_interval]))') == \
        {'vllm:x_bucket'}
    assert metric_names('a_total / on (instance) group_left (vllm_model) (b > 0) or vector(0) unless up offset 5m') == \
        {'a_total', 'b', 'up'}
    assert metric_names('label_values(vllm:num_requests_running{job=~"$job"}, model_name)') == \
        {'vllm:num_requests_running', 'model_name'}
    assert metric_names('histogram_quantile(0.95, sum by (le) (rate(x_bucket[5m:1m]))) > 1e3') == {'x_bucket'}


def test_the_default_list_drops_created_and_keeps_vllm_series():
    patterns = drop_list()
    assert patterns, 'the default list is not empty'
    names = test_dashboards.sample_names(V1_SAMPLE)
    created = sorted(n for n in names if n.endswith('_created'))
    assert len(created) > 30, created
    for name in created:
        assert dropped(name, patterns), '%s is kept' % name
    for name in names:
        if name.startswith('vllm:') and not name.endswith('_created'):
            assert not dropped(name, patterns), '%s (a vLLM engine series) is dropped by %s' % (name, dropped(name, patterns))
    # Only families whose every series is dropped: nothing half-kept.
    assert {'python_gc_objects_collected_total', 'http_request_size_bytes_sum',
            'http_request_duration_highr_seconds_bucket'} <= set(n for n in names if dropped(n, patterns))
    for kept in ('http_requests_total', 'http_request_duration_seconds_bucket', 'process_resident_memory_bytes',
                 'python_info'):
        assert not dropped(kept, patterns), kept


def test_nothing_a_dashboard_reads_is_dropped():
    patterns = drop_list()
    seen = set()
    for where, expr in dashboard_exprs():
        assert '__name__' not in expr, '%s selects by __name__; teach this test to read it: %s' % (where, expr)
        for name in metric_names(expr):
            seen.add(name)
            assert not dropped(name, patterns), '%s reads %s, which prometheus_vllm_drop_metrics drops (%s)' % (
                where, name, dropped(name, patterns))
    # The extraction is not vacuous.
    assert {'vllm:request_queue_time_seconds_bucket', 'http_requests_total', 'process_resident_memory_bytes',
            'model_name:vllm_request_success:rate1m'} <= seen


def test_nothing_a_rule_or_alert_reads_is_dropped(rule_exprs):
    patterns = drop_list()
    seen = set()
    for where, expr in rule_exprs:
        assert '__name__' not in expr, '%s selects by __name__; teach this test to read it: %s' % (where, expr)
        for name in metric_names(expr):
            seen.add(name)
            assert not dropped(name, patterns), '%s reads %s, which prometheus_vllm_drop_metrics drops (%s)' % (
                where, name, dropped(name, patterns))
    assert {'vllm:time_to_first_token_seconds_bucket', 'vllm:request_success_total', 'up'} <= seen


# ---- the rendered configuration, through a real Prometheus ----------------------

RENDER_PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  vars_files:
    - %(repo)s/roles/prometheus/defaults/main.yml
    - %(repo)s/roles/prometheus/vars/main.yml
  tasks:
    - name: Render prometheus.yml
      ansible.builtin.template:
        src: %(repo)s/roles/prometheus/templates/prometheus.yml.j2
        dest: "%(root)s/prometheus.yml"
        mode: "0644"
"""


class PageHandler(http.server.BaseHTTPRequestHandler):
    page = b''

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
        self.send_header('Content-Length', str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *args):
        pass


def query(url, expr):
    with urllib.request.urlopen(url + '/api/v1/query?' + urllib.parse.urlencode({'query': expr}), timeout=10) as resp:
        return json.loads(resp.read())['data']['result']


def test_prometheus_drops_exactly_the_list(tmp_path):
    binary, playbook = test_dashboards.prometheus_binary(), test_dashboards.ansible_playbook()
    if binary is None:
        pytest.skip('no prometheus binary (set PROMETHEUS_BIN)')
    with open(V1_SAMPLE, 'rb') as handle:
        handler = type('Handler', (PageHandler,), {'page': handle.read()})
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = '127.0.0.1:%d' % server.server_address[1]
        (tmp_path / 'render.yml').write_text(RENDER_PLAYBOOK % {'root': tmp_path, 'repo': REPO})
        # Extra variables: above the role's defaults and vars, as the role's own resolution would be.
        (tmp_path / 'vars.json').write_text(json.dumps({
            '__prometheus_alertmanagers': [],
            '__prometheus_jobs': [{'name': 'vllm', 'path': '/metrics'}, {'name': 'other', 'path': '/metrics'}],
            '__prometheus_targets': {
                'vllm': [{'targets': [target], 'labels': {'host': 'gpu-a', 'vllm_instance': 'main', 'vllm_model': 'tiny'}}],
                'other': [{'targets': [target], 'labels': {'host': 'gpu-a'}}]},
            'prometheus_scrape_self': False, 'prometheus_scrape_interval': '1s', 'prometheus_scrape_timeout': '1s'}))
        rendered = subprocess.run([playbook, '-i', 'localhost,', str(tmp_path / 'render.yml'),
                                   '-e', '@%s' % (tmp_path / 'vars.json')], cwd=REPO,
                                  env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg')),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                                  timeout=300)
        assert rendered.returncode == 0, rendered.stdout[-3000:]
        config = yaml.safe_load((tmp_path / 'prometheus.yml').read_text())
        jobs = dict((job['job_name'], job) for job in config['scrape_configs'])
        assert jobs['vllm']['metric_relabel_configs'] == [
            {'source_labels': ['__name__'], 'regex': '|'.join(drop_list()), 'action': 'drop'}]
        assert 'metric_relabel_configs' not in jobs['other'], 'only the vLLM job drops series'
        port = test_dashboards.free_port()
        url = 'http://127.0.0.1:%d' % port
        with open(str(tmp_path / 'prometheus.log'), 'w') as log:
            process = subprocess.Popen([binary, '--config.file=%s' % (tmp_path / 'prometheus.yml'),
                                        '--storage.tsdb.path=%s' % (tmp_path / 'data'),
                                        '--web.listen-address=127.0.0.1:%d' % port],
                                       stdout=log, stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        up = query(url, 'up')
                        if len(up) == 2 and query(url, 'count({job="vllm"})'):
                            break
                    except OSError:
                        pass
                    assert process.poll() is None and time.monotonic() < deadline, \
                        (tmp_path / 'prometheus.log').read_text()[-3000:]
                    time.sleep(0.5)
                vllm = set(r['metric']['__name__'] for r in query(url, 'count by (__name__) ({job="vllm"})'))
                other = set(r['metric']['__name__'] for r in query(url, 'count by (__name__) ({job="other"})'))
            finally:
                process.terminate()
                process.wait(timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    page = test_dashboards.sample_names(V1_SAMPLE)
    patterns = drop_list()
    assert other >= page, 'the other job keeps everything: %s' % sorted(page - other)
    assert vllm == set(n for n in page if not dropped(n, patterns)) | {'up', 'scrape_duration_seconds',
                                                                       'scrape_samples_scraped',
                                                                       'scrape_samples_post_metric_relabeling',
                                                                       'scrape_series_added'}
    assert not [n for n in vllm if n.endswith('_created')]
