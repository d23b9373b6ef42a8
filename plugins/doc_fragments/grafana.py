# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Connection options of the grafana_* modules (llmops.vllm.grafana).

    The TLS and timeout options are in ``llmops.vllm.http_options``, which
    each grafana_* module lists beside this fragment.
    """

    DOCUMENTATION = r"""
options:
  url:
    description:
      - Root URL of Grafana, such as V(http://127.0.0.1:3000) or V(https://grafana.example.com/grafana)
        (with the sub path when Grafana is served from one).
      - Falls back to the environment variable E(GRAFANA_URL).
    type: str
    required: true
    aliases: [grafana_url]
  token:
    description:
      - "Service account token (C(glsa_...)) or API key, sent as C(Authorization: Bearer <token>)."
      - Takes precedence over O(url_username) and O(url_password).
      - Falls back to the environment variable E(GRAFANA_TOKEN).
      - One of O(token) or O(url_username) with O(url_password) is required.
    type: str
    aliases: [grafana_api_key]
  url_username:
    description:
      - User name for HTTP basic authentication, used when O(token) is not set.
    type: str
    aliases: [grafana_user]
  url_password:
    description:
      - Password for HTTP basic authentication, used when O(token) is not set.
    type: str
    aliases: [grafana_password]
  org_id:
    description:
      - Grafana organisation to act in, sent as the C(X-Grafana-Org-Id) header.
      - When not set, Grafana uses the current organisation of the user (a token belongs to one organisation).
    type: int
  retries:
    description:
      - How many times to retry a request that got no HTTP answer (connection refused or reset, timeout,
        name resolution failure), for example while Grafana is restarting.
      - An HTTP error answer (4xx, 5xx) is never retried.
    type: int
    default: 3
  retry_delay:
    description:
      - Seconds to wait before the first retry; the wait doubles on each further retry.
    type: float
    default: 1.0
notes:
  - The module runs on the host the task runs on and connects from there. Use C(delegate_to=localhost) to
    manage a remote Grafana from the controller.
  - Errors name the HTTP method, the URL, the status code and the message Grafana answered.
  - The modules are in the action group C(llmops.vllm.grafana), so that the connection options can be set
    once with C(module_defaults) and C(group/llmops.vllm.grafana).
"""
