#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vllm_info
short_description: Read health, version, served models and key metrics of a vLLM server
version_added: 0.1.0
author: llmops.vllm maintainers (!UNKNOWN)
description:
  - Queries the OpenAI-compatible HTTP API of a vLLM server and returns its health, version,
    served model ids and a summary of its Prometheus metrics.
  - Reads C(/health), C(/version), C(/v1/models) and C(/metrics). Never changes anything.
  - An unreachable server is not an error unless O(fail_on_unreachable=true); the module then returns
    RV(reachable=false) and RV(healthy=false), so that it can be polled with C(until).
  - Understands both the metric names of the vLLM V1 engine (C(vllm:kv_cache_usage_perc), gauges labelled
    by C(engine) and C(model_name)) and the V0 names of older releases (C(vllm:gpu_cache_usage_perc)).
options:
  url:
    description:
      - Root URL of the vLLM server, without the C(/v1) suffix (a trailing C(/v1) is dropped).
    type: str
    default: http://127.0.0.1:8000
  api_key:
    description:
      - API key the server was started with (C(--api-key) or E(VLLM_API_KEY)).
      - "Sent as C(Authorization: Bearer <api_key>). The server requires it for C(/v1/models) when it has a key."
    type: str
  timeout:
    description:
      - Timeout in seconds of each HTTP request.
    type: int
    default: 10
  validate_certs:
    description:
      - Whether to validate the TLS certificate of an C(https) URL.
    type: bool
    default: true
  gather:
    description:
      - Which parts to read. Each part is one HTTP request.
      - V(health) reads C(/health), V(version) reads C(/version), V(models) reads C(/v1/models),
        V(metrics) reads C(/metrics).
    type: list
    elements: str
    choices: [health, version, models, metrics]
    default: [health, version, models, metrics]
  fail_on_unreachable:
    description:
      - Fail when the server does not answer at all (connection refused, DNS failure, timeout).
      - When V(false), the module succeeds with RV(reachable=false) and RV(healthy=false).
    type: bool
    default: false
extends_documentation_fragment:
  - llmops.vllm.attributes
  - llmops.vllm.attributes.info_module
notes:
  - The module runs on the managed host, so C(127.0.0.1) is the host the task runs on. Delegate to the
    controller (C(delegate_to=localhost)) to query servers from there.
  - An HTTP 401 or 403 from C(/v1/models) fails the module with a message that the API key was missing or wrong.
  - When C(/health) answers anything other than 200, failures of the other endpoints become warnings, since an
    engine that is starting or has died cannot be expected to answer them.
seealso:
  - name: vLLM production metrics
    description: The metrics a vLLM server exports.
    link: https://docs.vllm.ai/en/latest/usage/metrics.html
"""

EXAMPLES = r"""
- name: Read everything from the local vLLM server
  llmops.vllm.vllm_info:
  register: vllm

- name: Wait until the server is healthy and serves the model
  llmops.vllm.vllm_info:
    url: http://127.0.0.1:8000
    api_key: "{{ vllm_api_key }}"
    gather: [health, models]
  register: vllm
  until: vllm.healthy and 'tiny' in vllm.models
  retries: 60
  delay: 5

- name: Drain before a restart - wait for running and waiting requests to reach zero
  llmops.vllm.vllm_info:
    url: "http://{{ inventory_hostname }}:8000"
    gather: [metrics]
  delegate_to: localhost
  register: vllm
  until: (vllm.metrics.num_requests_running | default(0, true)) + (vllm.metrics.num_requests_waiting | default(0, true)) == 0
  retries: 30
  delay: 2

- name: Fail early when the server is down
  llmops.vllm.vllm_info:
    url: https://vllm.example.com
    fail_on_unreachable: true
    validate_certs: true
    timeout: 5
"""

RETURN = r"""
reachable:
  description: Whether the server answered HTTP at all (any status code counts).
  returned: always
  type: bool
  sample: true
healthy:
  description:
    - Whether C(/health) answered 200. V(false) when the server is unreachable.
    - V(null) when V(health) is not in O(gather) and the server answered.
  returned: always
  type: bool
  sample: true
health_status:
  description: HTTP status code of C(/health); 503 while the engine is not ready. V(null) when not read or unreachable.
  returned: always
  type: int
  sample: 200
version:
  description: vLLM version reported by C(/version). V(null) when not read.
  returned: always
  type: str
  sample: 0.32.0
models:
  description: Ids of the served models from C(/v1/models) (the C(--served-model-name) values). Empty when not read.
  returned: always
  type: list
  elements: str
  sample: [tiny]
metrics_schema:
  description:
    - Which metric naming the server uses. V(v1) for the V1 engine (C(vllm:kv_cache_usage_perc), gauges labelled
      by C(engine)), V(v0) for the V0 engine (C(vllm:gpu_cache_usage_perc), gauges labelled by C(model_name) only).
    - V(null) when metrics were not read or the server exports no vLLM engine metrics.
  returned: always
  type: str
  choices: [v1, v0]
  sample: v1
metrics:
  description:
    - Summary of C(/metrics). Empty when metrics were not read.
    - A value the server does not export is V(null).
  returned: always
  type: dict
  contains:
    num_requests_running:
      description: Requests in the engine's running batch, summed across models and engines.
      type: float
      sample: 0.0
    num_requests_waiting:
      description: Requests queued, summed across models and engines.
      type: float
      sample: 0.0
    kv_cache_usage_perc:
      description:
        - KV cache usage as a fraction (1.0 is full), from C(vllm:kv_cache_usage_perc) or, for V0,
          C(vllm:gpu_cache_usage_perc). The highest value across models and engines.
      type: float
      sample: 0.12
    prompt_tokens_total:
      description: Prompt (prefill) tokens processed since the server started, summed.
      type: float
      sample: 83.0
    generation_tokens_total:
      description: Generated tokens since the server started, summed.
      type: float
      sample: 627.0
    request_success_total:
      description: Finished requests by C(finished_reason) (such as C(stop), C(length), C(abort)), summed.
      type: dict
      returned: when the server exports vllm:request_success_total
      sample: {stop: 1.0, length: 20.0, abort: 0.0}
    per_model:
      description:
        - The same values for each served model, keyed by the C(model_name) label.
        - Values of one model are summed across its C(engine) labels (data parallel ranks); the KV cache
          usage takes the highest engine.
      type: dict
      sample:
        tiny:
          num_requests_running: 0.0
          num_requests_waiting: 0.0
          kv_cache_usage_perc: 0.0
          prompt_tokens_total: 83.0
          generation_tokens_total: 627.0
          request_success_total: {stop: 1.0, length: 20.0}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.vllm.plugins.module_utils.vllm_api import (
    GATHER_CHOICES,
    VllmApiError,
    VllmClient,
    collect_info,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type='str', default='http://127.0.0.1:8000'),
            api_key=dict(type='str', no_log=True),
            timeout=dict(type='int', default=10),
            validate_certs=dict(type='bool', default=True),
            gather=dict(type='list', elements='str', choices=list(GATHER_CHOICES), default=list(GATHER_CHOICES)),
            fail_on_unreachable=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not params['gather']:
        module.fail_json(msg='gather must name at least one of: %s' % ', '.join(GATHER_CHOICES))

    try:
        client = VllmClient(params['url'], api_key=params['api_key'], timeout=params['timeout'],
                            validate_certs=params['validate_certs'])
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    try:
        info, unreachable, warnings = collect_info(client, params['gather'])
    except VllmApiError as exc:
        module.fail_json(msg=exc.message, **exc.to_dict())

    for warning in warnings:
        module.warn(warning)
    if unreachable is not None:
        if params['fail_on_unreachable']:
            module.fail_json(msg=unreachable.message, **info)
        info['msg'] = unreachable.message

    module.exit_json(changed=False, **info)


if __name__ == '__main__':
    main()
