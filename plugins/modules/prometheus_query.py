#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: prometheus_query
short_description: Run a PromQL instant or range query and return typed values
version_added: 0.1.0
author: llmops.vllm maintainers (!UNKNOWN)
description:
  - Runs a PromQL query through Prometheus' HTTP API (C(/api/v1/query), or C(/api/v1/query_range) when O(start)
    is given) and returns the result with its sample values as floats.
  - Works with servers that speak the same API, such as VictoriaMetrics (C(http://vm:8428)), Thanos Query, or
    Mimir (with its C(/prometheus) prefix in O(url)).
  - Read-only. Meant for health gates and canary analysis, such as C(until:) a rate is below a threshold.
extends_documentation_fragment:
  - llmops.vllm.attributes
  - llmops.vllm.attributes.info_module
  - llmops.vllm.http_options
  - llmops.vllm.http_options.notes
options:
  url:
    description:
      - Root URL of Prometheus, such as V(http://prometheus:9090) (with the sub path when it is served from one).
    type: str
    required: true
  query:
    description:
      - The PromQL expression.
    type: str
    required: true
    aliases: [expr]
  time:
    description:
      - Evaluation time of an instant query, as an RFC 3339 time or a Unix timestamp. Defaults to now (the server's).
    type: str
  start:
    description:
      - Start of a range query, as an RFC 3339 time or a Unix timestamp. Giving it makes the query a range query.
    type: str
  end:
    description:
      - End of a range query. Defaults to now (this host's clock).
    type: str
  step:
    description:
      - Resolution step of a range query, as a duration (V(15s), V(1m)) or a number of seconds.
    type: str
    default: 60s
  method:
    description:
      - V(GET) sends the query in the URL; V(POST) sends it form-encoded in the body, for long queries.
    type: str
    choices: [GET, POST]
    default: GET
  url_username:
    description:
      - User name for HTTP basic authentication.
    type: str
  url_password:
    description:
      - Password for HTTP basic authentication.
    type: str
  fail_on_empty:
    description:
      - Fail when a vector or matrix result has no series (for example when a metric is not scraped yet), instead of
        returning an empty RV(result).
    type: bool
    default: false
notes:
  - A bad query fails with Prometheus' C(errorType) (C(bad_data)) and C(error) text; an unreachable server fails with
    the reason.
  - C(NaN) and C(+Inf) samples are returned as the floats C(nan) and C(inf).
  - Warnings Prometheus returns with a result are shown as task warnings.
seealso:
  - name: Prometheus HTTP API
    description: The query endpoints and their result formats.
    link: https://prometheus.io/docs/prometheus/latest/querying/api/
"""

EXAMPLES = r"""
- name: Error ratio of the canary over 5 minutes
  llmops.vllm.prometheus_query:
    url: http://prometheus:9090
    query: >-
      sum(rate(haproxy_server_http_responses_total{proxy="vllm",server="canary",code="5xx"}[5m]))
      / sum(rate(haproxy_server_http_responses_total{proxy="vllm",server="canary"}[5m]))
  delegate_to: localhost
  register: canary

- name: Gate on it
  ansible.builtin.assert:
    that: canary.value is not none and canary.value < 0.01
    fail_msg: "canary error ratio {{ canary.value }}"

- name: Wait until every vLLM target is up
  llmops.vllm.prometheus_query:
    url: http://prometheus:9090
    query: min(up{job="vllm"})
    fail_on_empty: true
  register: up
  until: up.value == 1
  retries: 30
  delay: 10

- name: KV cache usage of the last hour, by instance
  llmops.vllm.prometheus_query:
    url: https://prometheus.example.com
    url_username: grafana
    url_password: "{{ prometheus_password }}"
    query: max by (instance) (vllm:kv_cache_usage_perc)
    start: "{{ '%Y-%m-%dT%H:%M:%SZ' | strftime(now(utc=true).timestamp() - 3600, utc=true) }}"
    step: 5m
"""

RETURN = r"""
result_type:
  description: The C(resultType) Prometheus answered.
  returned: always
  type: str
  choices: [vector, matrix, scalar, string]
  sample: vector
result:
  description:
    - For V(vector), a list of C({metric, value, time}); for V(matrix), a list of C({metric, values}) where
      C(values) is a list of C([time, value]); for V(scalar) and V(string), C({time, value}).
    - Values are floats (text for V(string)), times Unix timestamps in seconds.
  returned: always
  type: raw
  sample:
    - metric: {instance: "gpu-1:8000", job: vllm}
      value: 0.42
      time: 1738342800.0
value:
  description:
    - The number of a V(scalar) result, or of a V(vector) result with exactly one series. V(null) otherwise
      (no series, several series, or a V(matrix)).
  returned: always
  type: float
  sample: 0.42
series:
  description: Number of series in a V(vector) or V(matrix) result (1 for a V(scalar) or V(string)).
  returned: always
  type: int
  sample: 1
url:
  description: The query endpoint that was called, without the query.
  returned: always
  type: str
  sample: http://prometheus:9090/api/v1/query
"""

import datetime
import re
import time as _time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.vllm.plugins.module_utils.http_util import HTTP_ARGUMENT_SPEC, join_url
from ansible_collections.llmops.vllm.plugins.module_utils.prometheus_client import (
    PrometheusClient,
    PrometheusQueryError,
    is_empty,
    single_value,
)

_NUMBER = re.compile(r'^\d+(\.\d+)?$')


def timestamp(text, option):
    """A Unix timestamp (float) or an RFC 3339 time, as Prometheus takes it; ValueError otherwise."""
    value = str(text).strip()
    if _NUMBER.match(value):
        return value
    try:
        datetime.datetime.fromisoformat(value.replace('Z', '+00:00').replace('z', '+00:00'))
    except ValueError:
        raise ValueError('%s must be an RFC 3339 time or a Unix timestamp, got %r' % (option, text))
    return value


def main():
    argument_spec = dict(
        url=dict(type='str', required=True),
        query=dict(type='str', required=True, aliases=['expr']),
        time=dict(type='str'),
        start=dict(type='str'),
        end=dict(type='str'),
        step=dict(type='str', default='60s'),
        method=dict(type='str', choices=['GET', 'POST'], default='GET'),
        url_username=dict(type='str'),
        url_password=dict(type='str', no_log=True),
        fail_on_empty=dict(type='bool', default=False),
    )
    argument_spec.update(HTTP_ARGUMENT_SPEC)
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_together=[('url_username', 'url_password')],
        mutually_exclusive=[('time', 'start')],
        required_by={'end': 'start'},
        supports_check_mode=True,
    )
    params = module.params
    try:
        client = PrometheusClient(params)
        fields = {'query': params['query']}
        if params['start'] is not None:
            path = 'api/v1/query_range'
            fields['start'] = timestamp(params['start'], 'start')
            fields['end'] = timestamp(params['end'], 'end') if params['end'] else '%.3f' % _time.time()
            fields['step'] = params['step']
        else:
            path = 'api/v1/query'
            if params['time'] is not None:
                fields['time'] = timestamp(params['time'], 'time')
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    url = join_url(client.base_url, path)
    try:
        result_type, result, warnings = client.query(path, fields, method=params['method'])
    except PrometheusQueryError as exc:
        module.fail_json(msg=exc.message, **exc.to_dict())
    for warning in warnings:
        module.warn('Prometheus: %s' % warning)
    series = len(result) if result_type in ('vector', 'matrix') else 1
    answer = dict(changed=False, result_type=result_type, result=result, value=single_value(result_type, result),
                  series=series, url=url)
    if params['fail_on_empty'] and is_empty(result_type, result):
        module.fail_json(msg='The query returned no series (fail_on_empty=true): %s' % params['query'], **answer)
    module.exit_json(**answer)


if __name__ == '__main__':
    main()
