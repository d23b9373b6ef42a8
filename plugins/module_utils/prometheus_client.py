# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module util is private to the llmops.vllm collection. It is not a
# public API: its functions may change between releases without notice.
# Use it only from plugins of this collection.

"""A client for Prometheus' query API (``/api/v1/query``,
``/api/v1/query_range``), on the collection's HTTP utility
(module_utils/http_util.py). Also answers for PromQL stores that speak the
same API (VictoriaMetrics, Thanos, Mimir under its prefix).

Prometheus answers ``{"status": "success", "data": {"resultType": ...,
"result": ...}, "warnings": [...]}``; sample values are strings (``"1"``,
``"NaN"``, ``"+Inf"``). ``typed_result()`` turns them into floats:

- vector: a list of ``{"metric": {...}, "value": float, "time": float}``;
- matrix: a list of ``{"metric": {...}, "values": [[time, float], ...]}``;
- scalar: ``{"time": float, "value": float}``; string: ``{"time", "value"}``.

Errors: 400 ``bad_data`` (a bad query or parameter), 422 ``execution``
(the query cannot run), 503 ``timeout`` or ``canceled``, each with an
``error`` text; they become PrometheusQueryError with the URL, status,
``errorType`` and ``error``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from urllib.parse import urlencode

from ansible.module_utils.common.text.converters import to_text

from ansible_collections.llmops.vllm.plugins.module_utils.http_util import (
    HTTPRequestError,
    HTTPStatusError,
    TLSError,
    check_base_url,
    join_url,
    request as http_request,
    tls_options,
)


class PrometheusQueryError(Exception):
    """A query failed: ``url``, ``status`` (None without an answer), ``error_type`` and ``error`` from Prometheus."""

    def __init__(self, message, url=None, status=None, error_type=None, error=None):
        super(PrometheusQueryError, self).__init__(message)
        self.message = message
        self.url = url
        self.status = status
        self.error_type = error_type
        self.error = error

    def to_dict(self):
        return {'url': self.url, 'status': self.status, 'error_type': self.error_type, 'error': self.error}


def sample_value(text):
    """A float from a sample value string (``"NaN"``, ``"+Inf"`` and ``"-Inf"`` included)."""
    return float(text)


def typed_result(result_type, result):
    """The ``result`` of a query with float values (see the module docstring)."""
    if result_type == 'vector':
        return [{'metric': item.get('metric') or {}, 'time': float(item['value'][0]), 'value': sample_value(item['value'][1])}
                for item in result or []]
    if result_type == 'matrix':
        return [{'metric': item.get('metric') or {},
                 'values': [[float(ts), sample_value(value)] for ts, value in item.get('values') or []]}
                for item in result or []]
    if result_type == 'scalar':
        return {'time': float(result[0]), 'value': sample_value(result[1])}
    if result_type == 'string':
        return {'time': float(result[0]), 'value': to_text(result[1])}
    raise ValueError('unknown resultType %r' % (result_type,))


def single_value(result_type, typed):
    """The one number of a scalar, or of a vector with exactly one sample; None otherwise."""
    if result_type == 'scalar':
        return typed['value']
    if result_type == 'vector' and len(typed) == 1:
        return typed[0]['value']
    return None


def is_empty(result_type, typed):
    return result_type in ('vector', 'matrix') and not typed


class PrometheusClient:
    """Client for one Prometheus (or a server with the same query API), configured from a module's options."""

    def __init__(self, params):
        self.base_url = check_base_url(params.get('url'))
        self.params = params

    def _auth(self):
        if self.params.get('url_username'):
            return dict(url_username=self.params['url_username'], url_password=self.params.get('url_password'),
                        force_basic_auth=True)
        return {}

    def query(self, path, fields, method='GET'):
        """Run a query on ``path`` (api/v1/query or api/v1/query_range); (resultType, result, warnings)."""
        headers = {'Accept': 'application/json'}
        if method == 'POST':
            url = join_url(self.base_url, path)
            data = urlencode(fields)
            headers['Content-Type'] = 'application/x-www-form-urlencoded'
        else:
            url = join_url(self.base_url, path, fields)
            data = None
        try:
            response = http_request(url, method=method, data=data, headers=headers,
                                    timeout=self.params.get('timeout') or 30,
                                    **dict(tls_options(self.params), **self._auth()))
        except HTTPStatusError as exc:
            data = exc.data if isinstance(exc.data, dict) else {}
            error_type = data.get('errorType')
            error = data.get('error') or exc.server_message or exc.http_reason
            if exc.status == 400 and error_type == 'bad_data':
                what = 'Prometheus rejected the query'
            elif error_type:
                what = 'The query failed'
            else:
                what = 'Prometheus answered with an error'
            raise PrometheusQueryError('%s: %s %s returned HTTP %d%s: %s'
                                       % (what, method, url.split('?')[0], exc.status,
                                          ' (%s)' % error_type if error_type else '', error),
                                       url=url, status=exc.status, error_type=error_type, error=error)
        except TLSError as exc:
            raise PrometheusQueryError('%s (check ca_path, or set validate_certs=false)' % exc.message, url=url)
        except HTTPRequestError as exc:
            raise PrometheusQueryError('Prometheus is not reachable: %s' % exc.message, url=url)
        try:
            body = response.json()
        except HTTPRequestError as exc:
            raise PrometheusQueryError(exc.message, url=url, status=response.status)
        if not isinstance(body, dict) or body.get('status') != 'success' or not isinstance(body.get('data'), dict):
            raise PrometheusQueryError('%s %s did not answer like the Prometheus query API: %s'
                                       % (method, url, json.dumps(body)[:300]), url=url, status=response.status)
        data = body['data']
        try:
            typed = typed_result(data.get('resultType'), data.get('result'))
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise PrometheusQueryError('%s %s answered a result that cannot be read: %s' % (method, url, exc),
                                       url=url, status=response.status)
        return data.get('resultType'), typed, [to_text(w) for w in body.get('warnings') or []]
