#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vllm_canary_analysis
short_description: Compare a vLLM canary with the rest of the fleet from Prometheus, and give a verdict
version_added: 0.1.0
author: llmops.vllm maintainers (!UNKNOWN)
description:
  - Runs the analysis of a canary rollout. The canary hosts serve a new release behind the gateways with a share
    of the traffic; every other vLLM instance (the baseline) serves the old one.
  - Every O(interval) seconds until O(window) seconds have passed, one check queries Prometheus for both sides
    over the window so far, for requests and HTTP 4xx/5xx answers at the gateways (per HAProxy server), vLLM's finished
    requests by C(finished_reason) (an error after a stream started arrives inside an HTTP 200), and the 95th
    percentiles of time to first token and inter-token latency.
  - A check is judged once the canary has served O(min_requests) requests in the window. It fails when an error
    ratio is above O(max_error_ratio) or above the baseline's plus O(error_ratio_margin), or a latency is above
    O(max_latency_ratio) times the baseline's (or above O(max_ttft_p95) or O(max_itl_p95)).
  - The verdict is V(fail) as soon as O(failure_limit) checks have failed, V(pass) at the end of the window
    otherwise. A canary that did not reach O(min_requests) fails, or with O(insufficient_traffic=extend) gets the
    window again, at most O(max_extensions) times.
  - Read-only; the task does not fail on a V(fail) verdict, the caller decides.
extends_documentation_fragment:
  - llmops.vllm.attributes
  - llmops.vllm.attributes.info_module
  - llmops.vllm.http_options
  - llmops.vllm.http_options.notes
options:
  url:
    description:
      - Root URL of the Prometheus (or PromQL store) that scrapes the vLLM instances and the gateways.
    type: str
    required: true
  url_username:
    description: Basic auth user name for Prometheus.
    type: str
  url_password:
    description: Basic auth password for Prometheus.
    type: str
  canary_hosts:
    description: Inventory names of the canary hosts (the C(host) label of their vLLM series).
    type: list
    elements: str
    required: true
  canary_servers:
    description: The gateways' server names of the canary instances (C(<host>_<instance>)).
    type: list
    elements: str
    required: true
  vllm_job:
    description: The scrape job of the vLLM instances.
    type: str
    default: vllm
  gateway_job:
    description: The scrape job of the gateways' HAProxy metrics.
    type: str
    default: gateway
  gateway_backend:
    description: The HAProxy backend of the vLLM instances (the C(proxy) label).
    type: str
    default: vllm
  window:
    description: Length of the analysis in seconds.
    type: int
    default: 120
  interval:
    description: Seconds between two checks.
    type: int
    default: 15
  min_requests:
    description: Requests the canary must have served in the window before any check is judged.
    type: int
    default: 20
  insufficient_traffic:
    description: What happens at the end of the window when the canary has served fewer than O(min_requests).
    type: str
    choices: [fail, extend]
    default: fail
  max_extensions:
    description: How many times O(insufficient_traffic=extend) gives the window again.
    type: int
    default: 1
  failure_limit:
    description: Failed checks that fail the analysis.
    type: int
    default: 2
  max_error_ratio:
    description: Highest share of the canary's requests that may fail (HTTP 4xx/5xx, or a failed finish reason).
    type: float
    default: 0.05
  error_ratio_margin:
    description: How far the canary's error ratios may be above the baseline's.
    type: float
    default: 0.01
  failed_reasons:
    description: vLLM C(finished_reason) values that count as failed requests.
    type: list
    elements: str
    default: [error, abort]
  max_latency_ratio:
    description: How many times the baseline's TTFT p95 and ITL p95 the canary's may be.
    type: float
    default: 1.5
  max_ttft_p95:
    description: An absolute limit on the canary's TTFT p95 in seconds (V(0) for none).
    type: float
    default: 0
  max_itl_p95:
    description: An absolute limit on the canary's inter-token latency p95 in seconds (V(0) for none).
    type: float
    default: 0
"""

EXAMPLES = r"""
- name: Analyse the canary against the rest of the fleet
  llmops.vllm.vllm_canary_analysis:
    url: http://prometheus:9090
    canary_hosts: [gpu-node-01]
    canary_servers: [gpu-node-01_main]
    window: 300
    interval: 30
    min_requests: 50
  register: analysis

- name: Stop when the canary is worse
  ansible.builtin.assert:
    that: analysis.verdict == 'pass'
    fail_msg: "{{ analysis.reason }}"
"""

RETURN = r"""
verdict:
  description: V(pass) or V(fail).
  returned: always
  type: str
  sample: fail
reason:
  description: Why, in one sentence.
  returned: always
  type: str
  sample: "2 of 3 checks failed (limit 2): HTTP 4xx/5xx ratio 0.412 is above the limit 0.050"
insufficient_traffic:
  description: Whether the verdict is V(fail) because the canary served too few requests.
  returned: always
  type: bool
canary:
  description: The canary's figures at the last check (requests, http_error_ratio, failed_ratio, ttft_p95, itl_p95).
  returned: always
  type: dict
  sample: {requests: 34, http_error_ratio: 0.41, failed_ratio: 0.0, ttft_p95: 0.09, itl_p95: 0.02}
baseline:
  description: The baseline's figures at the last check, with the same keys.
  returned: always
  type: dict
checks:
  description: Every check, with C(number), C(elapsed) seconds, C(status) (passed, failed, waiting), C(reasons),
    C(canary) and C(baseline) figures.
  returned: always
  type: list
  elements: dict
lines:
  description: One line per check, canary and baseline figures side by side.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.vllm.plugins.module_utils.canary import CanaryAnalysis, selectors
from ansible_collections.llmops.vllm.plugins.module_utils.http_util import HTTP_ARGUMENT_SPEC
from ansible_collections.llmops.vllm.plugins.module_utils.prometheus_client import (
    PrometheusClient,
    PrometheusQueryError,
)

_POSITIVE = ('window', 'interval', 'failure_limit')


def main():
    argument_spec = dict(
        url=dict(type='str', required=True),
        url_username=dict(type='str'),
        url_password=dict(type='str', no_log=True),
        canary_hosts=dict(type='list', elements='str', required=True),
        canary_servers=dict(type='list', elements='str', required=True),
        vllm_job=dict(type='str', default='vllm'),
        gateway_job=dict(type='str', default='gateway'),
        gateway_backend=dict(type='str', default='vllm'),
        window=dict(type='int', default=120),
        interval=dict(type='int', default=15),
        min_requests=dict(type='int', default=20),
        insufficient_traffic=dict(type='str', choices=['fail', 'extend'], default='fail'),
        max_extensions=dict(type='int', default=1),
        failure_limit=dict(type='int', default=2),
        max_error_ratio=dict(type='float', default=0.05),
        error_ratio_margin=dict(type='float', default=0.01),
        failed_reasons=dict(type='list', elements='str', default=['error', 'abort']),
        max_latency_ratio=dict(type='float', default=1.5),
        max_ttft_p95=dict(type='float', default=0),
        max_itl_p95=dict(type='float', default=0),
    )
    argument_spec.update(HTTP_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, required_together=[('url_username', 'url_password')],
                           supports_check_mode=True)
    params = module.params
    bad = [name for name in _POSITIVE if params[name] < 1] + [name for name in ('min_requests', 'max_extensions')
                                                              if params[name] < 0]
    if bad:
        module.fail_json(msg='%s must be positive' % ', '.join(bad))
    try:
        sides = selectors(params['canary_hosts'], params['canary_servers'], params['vllm_job'],
                          params['gateway_job'], params['gateway_backend'])
        client = PrometheusClient(params)
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    def query(promql):
        result_type, result, dummy = client.query('api/v1/query', {'query': promql})
        return result_type, result

    try:
        result = CanaryAnalysis(query, sides, params).run()
    except PrometheusQueryError as exc:
        module.fail_json(msg=exc.message, **exc.to_dict())
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
