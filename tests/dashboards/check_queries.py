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

A query fails when Prometheus rejects it (bad syntax, unknown function, ...)
or, unless it is checked for syntax only, when its result is empty. Queries of
the GPU dashboard (those that read DCGM_* metrics) can be checked for syntax only
with --gpu-syntax-only, for machines without GPUs; --syntax-only does so for all.
--wait SECONDS retries empty results until that much time has passed (rates
need two scrapes).

Exit status: 0 all queries passed, 1 some failed, 2 usage error or Prometheus
unreachable.

Example:
    python3 tests/dashboards/check_queries.py --prometheus http://127.0.0.1:9090 --gpu-syntax-only --wait 120
"""

import argparse
import glob
import json
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


def queries_of(dashboard):
    """(where, expr) for every panel target and every label_values variable of a dashboard."""
    for panel in walk_panels(dashboard.get('panels')):
        for target in panel.get('targets') or []:
            if target.get('hide'):
                continue
            expr = target.get('expr')
            if expr:
                yield 'panel %r target %s' % (panel.get('title'), target.get('refId')), expr
    for variable in (dashboard.get('templating') or {}).get('list') or []:
        if variable.get('type') != 'query':
            continue
        query = variable.get('query')
        if isinstance(query, dict):
            query = query.get('query')
        match = _LABEL_VALUES.match(query or '')
        if match:
            yield 'variable %r' % variable.get('name'), match.group(1)


def is_gpu_query(expr):
    return 'DCGM_' in expr


class Prometheus:
    def __init__(self, base_url, timeout):
        self.base_url = base_url.rstrip('/')
        self.timeout = timeout

    def query(self, expr):
        """(ok, result list or None, error text)."""
        url = '%s/api/v1/query?%s' % (self.base_url, urllib.parse.urlencode({'query': expr}))
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
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
        for where, expr in queries_of(dashboard):
            syntax_only = args.syntax_only or (args.gpu_syntax_only and is_gpu_query(expr))
            checks.append((os.path.basename(path), where, substitute(expr, values), syntax_only))

    prometheus = Prometheus(args.prometheus, args.timeout)
    try:
        prometheus.query('vector(1)')
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print('Prometheus at %s is not reachable: %s' % (args.prometheus, exc), file=sys.stderr)
        return 2

    deadline = time.monotonic() + args.wait
    pending = list(checks)
    failures = []
    while True:
        empty = []
        for check in pending:
            name, where, expr, syntax_only = check
            ok, result, error = prometheus.query(expr)
            if not ok:
                failures.append('ERROR %s %s: %s\n    %s' % (name, where, error, expr))
            elif not result and not syntax_only:
                empty.append(check)
            elif not args.quiet:
                print('%s %s %s (%d series)' % ('SYNTAX' if syntax_only else 'OK', name, where, len(result)))
        if not empty or time.monotonic() >= deadline:
            break
        pending = empty
        time.sleep(2)
    failures.extend('EMPTY %s %s: no data\n    %s' % (name, where, expr) for name, where, expr, dummy in empty)

    for failure in failures:
        print(failure)
    print('%d queries in %d dashboards, %d failed' % (len(checks), len(files), len(failures)))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
