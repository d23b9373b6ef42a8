# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module util is private to the llmops.vllm collection. It is not a
# public API: its functions may change between releases without notice.
# Use it only from plugins of this collection.

"""A small client for the HTTP API of a vLLM OpenAI-compatible server.

Built on the collection's HTTP utility (module_utils/http_util.py, on
``ansible.module_utils.urls.open_url``: no third-party HTTP library on the
managed host). Covers the read-only endpoints the
collection needs: ``/health``, ``/version``, ``/v1/models`` and
``/metrics``; ``collect_info()`` gathers them for the ``vllm_info`` module
and ``summarize_metrics()`` reduces the Prometheus text to the gauges and
counters that matter for operating a fleet.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.module_utils.common.text.converters import to_text

from ansible_collections.llmops.vllm.plugins.module_utils.http_util import (
    BODY_LIMIT as _BODY_LIMIT,
    USER_AGENT,
    HTTPStatusError,
    TLSError,
    UnreachableError,
    check_base_url,
    request as http_request,
)
from ansible_collections.llmops.vllm.plugins.module_utils.prometheus_text import (
    parse as parse_prometheus_text,
    find_samples,
    sum_by,
)

__all__ = ['GATHER_CHOICES', 'USER_AGENT', 'VllmApiError', 'VllmUnreachableError', 'VllmAuthError', 'VllmClient',
           'detect_schema', 'summarize_metrics', 'empty_info', 'collect_info']


GATHER_CHOICES = ('health', 'version', 'models', 'metrics')


class VllmApiError(Exception):
    """The server answered with an error, or an answer that cannot be used.

    ``url`` is the full URL of the request, ``status`` the HTTP status code
    (None when there was no HTTP answer), ``body`` the start of the
    response body (None when there was none).
    """

    def __init__(self, message, url=None, status=None, body=None):
        super(VllmApiError, self).__init__(message)
        self.message = message
        self.url = url
        self.status = status
        self.body = body

    def to_dict(self):
        return {'url': self.url, 'status': self.status, 'body': self.body}


class VllmUnreachableError(VllmApiError):
    """No HTTP answer at all: connection refused, DNS failure, timeout, reset."""


class VllmAuthError(VllmApiError):
    """The server answered 401 or 403: the API key was missing or wrong."""


class VllmClient:
    """Client for one vLLM server.

    ``base_url`` is the server root, such as ``http://127.0.0.1:8000``
    (a trailing slash, or a trailing ``/v1``, is dropped). ``api_key`` is
    sent as ``Authorization: Bearer <api_key>`` when given. ``timeout`` is
    in seconds.
    """

    def __init__(self, base_url, api_key=None, timeout=10, validate_certs=True):
        base_url = (base_url or '').strip().rstrip('/')
        if base_url.endswith('/v1'):
            base_url = base_url[:-3]
        self.base_url = check_base_url(base_url)
        self.api_key = api_key or None
        self.timeout = timeout
        self.validate_certs = validate_certs

    def url_for(self, path):
        return self.base_url + '/' + path.lstrip('/')

    def _headers(self, accept):
        headers = {'Accept': accept}
        if self.api_key:
            headers['Authorization'] = 'Bearer %s' % self.api_key
        return headers

    def request(self, path, accept='application/json'):
        """GET ``path``. Returns (status, body text) for a 2xx answer.

        Raises HTTPStatusError (from module_utils.http_util) for other statuses
        (callers that accept them catch it), VllmUnreachableError when no
        HTTP answer came back and VllmApiError for TLS failures.
        """
        url = self.url_for(path)
        try:
            response = http_request(url, headers=self._headers(accept), timeout=self.timeout,
                                    validate_certs=self.validate_certs)
        except TLSError as exc:
            raise VllmApiError(
                'TLS error talking to %s: %s (check the certificate, or set validate_certs=false)' % (url, exc.reason),
                url=url)
        except UnreachableError as exc:
            if exc.timed_out:
                raise VllmUnreachableError(
                    'vLLM server at %s did not answer within %s seconds' % (url, self.timeout), url=url)
            raise VllmUnreachableError('vLLM server at %s is not reachable: %s' % (url, exc.reason), url=url)
        return response.status, response.text

    def _error_from_http(self, exc, path):
        url = self.url_for(path)
        body = exc.body
        status = exc.status
        if status in (401, 403):
            return VllmAuthError(
                'HTTP %d from %s: the API key was missing or wrong (set api_key to the key the server was started with)'
                % (status, url), url=url, status=status, body=body)
        return VllmApiError('HTTP %d from %s: %s' % (status, url, body or exc.http_reason or ''), url=url, status=status, body=body)

    def _get(self, path, accept='application/json'):
        try:
            return self.request(path, accept=accept)[1]
        except HTTPStatusError as exc:
            raise self._error_from_http(exc, path)

    def _get_json(self, path):
        body = self._get(path)
        try:
            return json.loads(body)
        except ValueError as exc:
            raise VllmApiError('%s did not return JSON: %s' % (self.url_for(path), exc),
                               url=self.url_for(path), status=200, body=body[:_BODY_LIMIT])

    def health(self):
        """HTTP status code of ``/health``: 200 healthy, 503 engine not ready or dead.

        Any HTTP answer is returned as its status code; no answer at all
        raises VllmUnreachableError.
        """
        try:
            return self.request('/health', accept='*/*')[0]
        except HTTPStatusError as exc:
            return exc.status

    def version(self):
        """The vLLM version string from ``/version``."""
        data = self._get_json('/version')
        if not isinstance(data, dict) or 'version' not in data:
            raise VllmApiError('%s returned no version' % self.url_for('/version'),
                               url=self.url_for('/version'), status=200, body=json.dumps(data)[:_BODY_LIMIT])
        return to_text(data['version'])

    def models_raw(self):
        """The ``data`` list from ``/v1/models``."""
        data = self._get_json('/v1/models')
        if not isinstance(data, dict) or not isinstance(data.get('data'), list):
            raise VllmApiError('%s returned no model list' % self.url_for('/v1/models'),
                               url=self.url_for('/v1/models'), status=200, body=json.dumps(data)[:_BODY_LIMIT])
        return data['data']

    def models(self):
        """Ids of the served models (the ``--served-model-name``s)."""
        return [to_text(item['id']) for item in self.models_raw() if isinstance(item, dict) and 'id' in item]

    def metrics_text(self):
        """The Prometheus text of ``/metrics``."""
        return self._get('/metrics', accept='text/plain;version=0.0.4;q=0.9,*/*;q=0.1')

    def metrics(self):
        """``/metrics`` parsed into metric families (see prometheus_text.parse)."""
        text = self.metrics_text()
        try:
            return parse_prometheus_text(text)
        except ValueError as exc:
            url = self.url_for('/metrics')
            raise VllmApiError('cannot parse the metrics from %s: %s' % (url, exc), url=url, status=200, body=text[:_BODY_LIMIT])


# vLLM metric names. V1 (the engine since 0.8, the only one since 0.11)
# labels every engine gauge with ``engine`` and ``model_name``; V0 used
# only ``model_name`` and called the KV cache gauge gpu_cache_usage_perc.
GAUGES = {
    'num_requests_running': ('vllm:num_requests_running',),
    'num_requests_waiting': ('vllm:num_requests_waiting',),
    'kv_cache_usage_perc': ('vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc'),
}
COUNTERS = {
    'generation_tokens_total': 'vllm:generation_tokens_total',
    'prompt_tokens_total': 'vllm:prompt_tokens_total',
}
REQUEST_SUCCESS = 'vllm:request_success_total'

# Summed across engines; the KV cache usage fraction takes the highest
# engine instead, since a sum of fractions is no fraction.
_MAX_ACROSS = frozenset(('kv_cache_usage_perc',))

_EMPTY_MODEL = ''


def _combine(key, values):
    if not values:
        return None
    if key in _MAX_ACROSS:
        return max(values)
    return float(sum(values))


def detect_schema(families):
    """``v1``, ``v0`` or None (no vLLM engine metrics) for parsed metrics."""
    if 'vllm:kv_cache_usage_perc' in families:
        return 'v1'
    seen_vllm = False
    for name in ('vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:gpu_cache_usage_perc'):
        for sample in find_samples(families, name):
            seen_vllm = True
            if 'engine' in sample['labels']:
                return 'v1'
    if seen_vllm or 'vllm:gpu_cache_usage_perc' in families:
        return 'v0'
    return None


def summarize_metrics(families):
    """Reduce parsed vLLM metrics to the values operators watch.

    Returns (schema, summary). ``summary`` has, for the whole server and
    under ``per_model`` for each ``model_name``:
    ``num_requests_running``, ``num_requests_waiting`` (summed across
    engines), ``kv_cache_usage_perc`` (highest engine), ``prompt_tokens_total``,
    ``generation_tokens_total`` (summed) and ``request_success_total``
    (a dict by ``finished_reason``, only where the server exports it).
    A value the server does not export is None.
    """
    schema = detect_schema(families)
    per_model_values = {}
    totals = {}

    def add(model, key, value):
        per_model_values.setdefault(model, {}).setdefault(key, []).append(value)
        totals.setdefault(key, []).append(value)

    for key, names in GAUGES.items():
        for name in names:
            samples = find_samples(families, name)
            if samples:
                for sample in samples:
                    add(sample['labels'].get('model_name', _EMPTY_MODEL), key, sample['value'])
                break
    for key, name in COUNTERS.items():
        for sample in find_samples(families, name):
            add(sample['labels'].get('model_name', _EMPTY_MODEL), key, sample['value'])

    keys = list(GAUGES) + list(COUNTERS)
    summary = dict((key, _combine(key, totals.get(key))) for key in keys)
    success = find_samples(families, REQUEST_SUCCESS)
    if success:
        summary['request_success_total'] = sum_by(success, REQUEST_SUCCESS, 'finished_reason')

    per_model = {}
    models = list(per_model_values)
    for sample in success:
        model = sample['labels'].get('model_name', _EMPTY_MODEL)
        if model not in models:
            models.append(model)
    for model in models:
        values = per_model_values.get(model, {})
        entry = dict((key, _combine(key, values.get(key))) for key in keys)
        if success:
            entry['request_success_total'] = sum_by(success, REQUEST_SUCCESS, 'finished_reason', model_name=model or None)
        per_model[model] = entry
    summary['per_model'] = per_model
    return schema, summary


def empty_info():
    """The result of collect_info() before anything was gathered."""
    return {
        'reachable': False,
        'healthy': False,
        'health_status': None,
        'version': None,
        'models': [],
        'metrics': {},
        'metrics_schema': None,
    }


def collect_info(client, gather=GATHER_CHOICES):
    """Gather the parts named in ``gather`` from the server.

    Returns (info, unreachable, warnings): ``info`` is a dict shaped like
    empty_info(); ``unreachable`` is the VllmUnreachableError that stopped
    the gathering (None when the server answered); ``warnings`` is a list
    of messages. When /health answers but not 200, failures of the other
    endpoints (other than 401/403) become warnings rather than errors: an
    engine that is starting or has died cannot be expected to answer.

    Raises VllmAuthError on 401/403 and VllmApiError on other failures
    of a healthy server.
    """
    info = empty_info()
    warnings = []
    if 'health' not in gather:
        info['healthy'] = None
    contacted = False
    try:
        if 'health' in gather:
            status = client.health()
            contacted = True
            info['health_status'] = status
            info['healthy'] = status == 200
        lenient = 'health' in gather and not info['healthy']

        def guarded(func):
            try:
                return func()
            except VllmUnreachableError:
                raise
            except VllmAuthError:
                raise
            except VllmApiError as exc:
                if not lenient:
                    raise
                warnings.append('server is not healthy (HTTP %s from /health), ignoring: %s' % (info['health_status'], exc))
                return None

        if 'version' in gather:
            info['version'] = guarded(client.version)
            contacted = True
        if 'models' in gather:
            info['models'] = guarded(client.models) or []
            contacted = True
        if 'metrics' in gather:
            families = guarded(client.metrics)
            contacted = True
            if families is not None:
                info['metrics_schema'], info['metrics'] = summarize_metrics(families)
    except VllmUnreachableError as exc:
        info['reachable'] = False
        info['healthy'] = False
        return info, exc, warnings
    info['reachable'] = contacted
    return info, None, warnings
