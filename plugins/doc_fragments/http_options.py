# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """TLS and timeout options of the HTTP modules (module_utils/http_util.py HTTP_ARGUMENT_SPEC).

    ``llmops.vllm.http_options`` documents the options, for every HTTP module;
    ``llmops.vllm.http_options.notes`` adds the notes of a module that reaches any
    HTTP server (the grafana_* modules have theirs in ``llmops.vllm.grafana``).
    """

    DOCUMENTATION = r"""
options:
  validate_certs:
    description:
      - Whether to validate the TLS certificate of an C(https) URL.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of the certificate authorities to trust for an C(https) URL.
    type: path
  client_cert:
    description:
      - PEM client certificate for TLS client authentication.
    type: path
  client_key:
    description:
      - PEM private key of O(client_cert), when it is not in the same file.
    type: path
  timeout:
    description:
      - Timeout in seconds of each HTTP request.
    type: int
    default: 30
"""

    # llmops.vllm.http_options.notes
    NOTES = r"""
options: {}
notes:
  - The module runs on the host the task runs on and connects from there. Use C(delegate_to=localhost) to
    reach the server from the controller.
  - Errors name the HTTP method, the URL, the status code and the message the server answered.
"""
