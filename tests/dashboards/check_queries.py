#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Evaluate every PromQL query of the collection's dashboards through a Prometheus.

For each dashboard JSON (default: roles/grafana/files/dashboards/*.json), every
panel target's ``expr`` and the selector of every ``label_values(...)`` template
variable are sent to Prometheus's ``/api/v1/query`` after Grafana's variables are
substituted ($__rate_interval and $__interval -> 1m, $__range -> 5m,
$__range_s -> 300, $job/$model_name/$instance/$gpu and any other template
variable -> .*, overridable with --var NAME=VALUE).

Custom, constant and textbox variables take the value the dashboard selects
(its ``current`` value). A target Grafana runs as a range query (a time series
panel) is sent to ``/api/v1/query_range`` over the last $__range (5m) at a 15 s
step; an instant target (stat, gauge, table) to ``/api/v1/query``.

A query fails when Prometheus rejects it (bad syntax, unknown function, ...)
or, unless it is checked for syntax only, when its result is empty or holds a
NaN (or infinite) value anywhere: a panel must show a number or no data, never
NaN. Queries of
the GPU dashboard (those that read DCGM_* metrics) can be checked for syntax only
with --gpu-syntax-only, for machines without GPUs; --syntax-only does so for all;
--syntax-only-match REGEX for the queries that match it (a stack without a gateway).
--basic-auth-user USER sends basic auth, with the password from the environment
variable CHECK_QUERIES_PASSWORD (never on a command line); any server with the
Prometheus query API works (VictoriaMetrics too).
--wait SECONDS retries empty and NaN results until that much time has passed
(rates need two scrapes).

Exit status: 0 all queries passed, 1 some failed, 2 usage error or Prometheus
unreachable.

Example:
    python3 tests/dashboards/check_queries.py --prometheus http://127.0.0.1:9090 --gpu-syntax-only --wait 120
"""

import argparse
import base64
import glob
import json
import math
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_DIR = os.path.join(REPO, 'roles', 'grafana', 'files', 'dashboards')

BUILTINS = {
    '__rate_interval': '1m',
    '__interval': '1m',
    '__interval_ms': '60000',
    '__range': '5m',
    '__range_s': '300',
    '__range_ms': '300000',
}

_VAR = re.compile(r'\$\{([A-Za-z0-9_]+)(?::[^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)|\[\[([A-Za-z0-9_]+)\]\]')
_LABEL_VALUES = re.compile(r'^\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$', re.DOTALL)


def substitute(expr, values):
    """``expr`` with Grafana's $var, ${var} and [[var]] replaced; unknown variables become .*"""
    def repl(match):
        name = match.group(1) or match.group(2) or match.group(3)
        if name in values:
            return values[name]
        if name in BUILTINS:
            return BUILTINS[name]
        return '.*'
    return _VAR.sub(repl, expr)


def walk_panels(panels):
    for panel in panels or []:
        yield panel
        for inner in walk_panels(panel.get('panels')):
            yield inner


def is_range_target(panel, target):
    """Whether Grafana runs this target as a range query."""
    if target.get('instant') and not target.get('range'):
        return False
    if 'range' in target or 'instant' in target:
        return bool(target.get('range', not target.get('instant')))
    return panel.get('type') in ('timeseries', 'graph', 'heatmap', 'state-timeline')


def queries_of(dashboard, with_range=False):
    """(where, expr) for every panel target and every label_values variable of a dashboard;
    (where, expr, is_range) with with_range=True."""
    for panel in walk_panels(dashboard.get('panels')):
        for target in panel.get('targets') or []:
            if target.get('hide'):
                continue
            expr = target.get('expr')
            if expr:
                where = 'panel %r target %s' % (panel.get('title'), target.get('refId'))
                yield (where, expr, is_range_target(panel, target)) if with_range else (where, expr)
    for variable in (dashboard.get('templating') or {}).get('list') or []:
        if variable.get('type') != 'query':
            continue
        query = variable.get('query')
        if isinstance(query, dict):
            query = query.get('query')
        match = _LABEL_VALUES.match(query or '')
        if match:
            where = 'variable %r' % variable.get('name')
            yield (where, match.group(1), False) if with_range else (where, match.group(1))


def selected_values(dashboard):
    """{name: value} of the custom, constant and textbox variables' current single values."""
    values = {}
    for variable in (dashboard.get('templating') or {}).get('list') or []:
        if variable.get('type') not in ('custom', 'constant', 'textbox'):
            continue
        value = (variable.get('current') or {}).get('value', variable.get('query'))
        if isinstance(value, str) and value and not value.startswith('$__'):
            values[variable['name']] = value
    return values


def bad_values(result):
    """Values of a query result that are NaN or infinite (as Prometheus writes them)."""
    bad = []
    for item in result:
        if isinstance(item, list):  # scalar: [time, "value"]
            samples = [item]
        elif isinstance(item, dict):
            samples = ([item['value']] if 'value' in item else []) + list(item.get('values') or [])
        else:
            continue
        for sample in samples:
            try:
                number = float(sample[1])
            except (TypeError, ValueError, IndexError):
                continue
            if math.isnan(number) or math.isinf(number):
                bad.append((item.get('metric') if isinstance(item, dict) else {}, sample[1]))
    return bad


def is_gpu_query(expr):
    return 'DCGM_' in expr


class Prometheus:
    def __init__(self, base_url, timeout, user=None, password=''):
        self.base_url = base_url.rstrip('/')
        self.timeout = timeout
        self.headers = {}
        if user:
            token = base64.b64encode(('%s:%s' % (user, password)).encode()).decode()
            self.headers['Authorization'] = 'Basic ' + token

    def query(self, expr, range_seconds=None, step=15):
        """(ok, result list or None, error text); a range query over the last range_seconds when given."""
        if range_seconds:
            end = time.time()
            params = {'query': expr, 'start': '%.3f' % (end - range_seconds), 'end': '%.3f' % end, 'step': str(step)}
            url = '%s/api/v1/query_range?%s' % (self.base_url, urllib.parse.urlencode(params))
        else:
            url = '%s/api/v1/query?%s' % (self.base_url, urllib.parse.urlencode({'query': expr}))
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=self.headers),
                                        timeout=self.timeout) as response:
                body = json.loads(response.read().decode())
        except urllib.error.HTTPError as exc:
            try:
                body = json.loads(exc.read().decode())
            except ValueError:
                return False, None, 'HTTP %d' % exc.code
        if body.get('status') != 'success':
            return False, None, '%s: %s' % (body.get('errorType'), body.get('error'))
        data = body.get('data') or {}
        result = data.get('result')
        if data.get('resultType') in ('scalar', 'string'):
            result = [result]
        return True, result or [], None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--prometheus', required=True, help='base URL of Prometheus, such as http://127.0.0.1:9090')
    parser.add_argument('--dashboards', default=DEFAULT_DIR, help='directory of dashboard JSON files (default: %(default)s)')
    parser.add_argument('--var', action='append', default=[], metavar='NAME=VALUE', help='value of a template variable')
    parser.add_argument('--gpu-syntax-only', action='store_true', help='check queries of DCGM_* metrics for syntax only')
    parser.add_argument('--syntax-only', action='store_true', help='check every query for syntax only')
    parser.add_argument('--syntax-only-match', metavar='REGEX', help='check the queries that match REGEX for syntax only')
    parser.add_argument('--basic-auth-user', metavar='USER',
                        help='basic auth user; the password comes from $CHECK_QUERIES_PASSWORD')
    parser.add_argument('--wait', type=float, default=0, help='retry empty results for up to this many seconds')
    parser.add_argument('--timeout', type=float, default=30, help='timeout of each query in seconds')
    parser.add_argument('--quiet', action='store_true', help='print failures only')
    args = parser.parse_args(argv)

    values = {}
    for item in args.var:
        if '=' not in item:
            parser.error('--var wants NAME=VALUE, got %r' % item)
        name, value = item.split('=', 1)
        values[name] = value

    files = sorted(glob.glob(os.path.join(args.dashboards, '*.json')))
    if not files:
        print('no dashboard JSON files in %s' % args.dashboards, file=sys.stderr)
        return 2
    checks = []
    for path in files:
        with open(path, encoding='utf-8') as handle:
            dashboard = json.load(handle)
        dashboard_values = selected_values(dashboard)
        dashboard_values.update(values)
        for where, expr, is_range in queries_of(dashboard, with_range=True):
            syntax_only = (args.syntax_only or (args.gpu_syntax_only and is_gpu_query(expr))
                           or bool(args.syntax_only_match and re.search(args.syntax_only_match, expr)))
            checks.append((os.path.basename(path), where, substitute(expr, dashboard_values), syntax_only, is_range))

    prometheus = Prometheus(args.prometheus, args.timeout, args.basic_auth_user,
                            os.environ.get('CHECK_QUERIES_PASSWORD', ''))
    try:
        prometheus.query('vector(1)')
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print('Prometheus at %s is not reachable: %s' % (args.prometheus, exc), file=sys.stderr)
        return 2

    deadline = time.monotonic() + args.wait
    pending = list(checks)
    failures = []
    range_seconds = int(BUILTINS['__range_s'])
    while True:
        empty, nan = [], []
        for check in pending:
            name, where, expr, syntax_only, is_range = check
            ok, result, error = prometheus.query(expr, range_seconds if is_range else None)
            if not ok:
                failures.append('ERROR %s %s: %s\n    %s' % (name, where, error, expr))
            elif syntax_only:
                if not args.quiet:
                    print('SYNTAX %s %s' % (name, where))
            elif not result:
                empty.append(check)
            elif bad_values(result):
                nan.append((check, bad_values(result)))
            elif not args.quiet:
                print('OK %s %s (%d series%s)' % (name, where, len(result), ', range' if is_range else ''))
        if not (empty or nan) or time.monotonic() >= deadline:
            break
        pending = empty + [check for check, dummy in nan]
        time.sleep(2)
    failures.extend('EMPTY %s %s: no data\n    %s' % (check[0], check[1], check[2]) for check in empty)
    failures.extend('NAN %s %s: %d NaN or infinite values, e.g. %s %s\n    %s' % (
        check[0], check[1], len(bad), bad[0][0], bad[0][1], check[2]) for check, bad in nan)

    for failure in failures:
        print(failure)
    print('%d queries in %d dashboards, %d failed' % (len(checks), len(files), len(failures)))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
