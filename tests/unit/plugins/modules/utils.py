# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for unit tests of modules: module args, exit_json/fail_json that raise,
a stand-in for open_url (OPEN_URL is where the HTTP utility imports it).

Usage::

    from ansible_collections.llmops.vllm.tests.unit.plugins.modules.utils import (
        AnsibleExitJson, AnsibleFailJson, patch_exit_fail, run_module, set_module_args)

    result = run_module(vllm_info.main, {'url': 'http://h:8000'})
    assert isinstance(result, AnsibleExitJson)
    assert result.result['changed'] is False

    # or by hand:
    with patch_exit_fail(), set_module_args({'url': 'http://h:8000'}):
        with pytest.raises(AnsibleFailJson) as failed:
            vllm_info.main()
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import io
import json
from unittest import mock
from urllib.error import HTTPError

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

try:
    from ansible.module_utils.testing import patch_module_args as _patch_module_args
except ImportError:  # ansible-core < 2.19
    _patch_module_args = None


# where the collection's HTTP utility imports open_url: every client
# (Grafana, vLLM, Prometheus, Alertmanager) sends its requests through it
OPEN_URL = 'ansible_collections.llmops.vllm.plugins.module_utils.http_util.open_url'


class AnsibleExitJson(Exception):
    """Raised by the patched exit_json; ``result`` holds its keyword arguments."""

    def __init__(self, kwargs):
        super(AnsibleExitJson, self).__init__(kwargs)
        self.result = kwargs


class AnsibleFailJson(Exception):
    """Raised by the patched fail_json; ``result`` holds its keyword arguments."""

    def __init__(self, kwargs):
        super(AnsibleFailJson, self).__init__(kwargs.get('msg'))
        self.result = kwargs


def exit_json(*args, **kwargs):
    if 'changed' not in kwargs:
        kwargs['changed'] = False
    raise AnsibleExitJson(kwargs)


def fail_json(*args, **kwargs):
    kwargs['failed'] = True
    raise AnsibleFailJson(kwargs)


@contextlib.contextmanager
def set_module_args(args=None):
    """Context manager that makes ``args`` the module arguments of AnsibleModule.

    Uses ansible.module_utils.testing.patch_module_args (ansible-core 2.19+),
    or patches basic._ANSIBLE_ARGS on older releases.
    """
    args = dict(args or {})
    if _patch_module_args is not None:
        with _patch_module_args(args):
            yield
        return
    args.setdefault('_ansible_remote_tmp', '/tmp')
    args.setdefault('_ansible_keep_remote_files', False)
    serialized = to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
    with mock.patch.object(basic, '_ANSIBLE_ARGS', serialized):
        yield


@contextlib.contextmanager
def patch_exit_fail():
    """Patch AnsibleModule.exit_json/fail_json to raise AnsibleExitJson/AnsibleFailJson."""
    with mock.patch.multiple(basic.AnsibleModule, exit_json=exit_json, fail_json=fail_json):
        yield


def run_module(main, args):
    """Run a module's main() with ``args``; return the AnsibleExitJson or AnsibleFailJson raised."""
    with patch_exit_fail(), set_module_args(args):
        try:
            main()
        except (AnsibleExitJson, AnsibleFailJson) as exc:
            return exc
    raise AssertionError('module returned without calling exit_json or fail_json')


def run_with(main, args, open_url, check=False, diff=False):
    """Run ``main`` with ``args`` while ``open_url`` (a fake server or a mock) stands in for open_url.

    ``check`` and ``diff`` turn on check mode and diff mode.
    """
    module_args = dict(args)
    module_args['_ansible_check_mode'] = check
    module_args['_ansible_diff'] = diff
    with mock.patch(OPEN_URL, new=open_url):
        return run_module(main, module_args)


def ok(result):
    """The result of a module run that exited normally (fails the test otherwise)."""
    assert isinstance(result, AnsibleExitJson), result.result
    return result.result


def failed(result):
    """The result of a module run that failed (fails the test otherwise)."""
    assert isinstance(result, AnsibleFailJson), result.result
    return result.result


class FakeResponse:
    """What open_url returns: enough of http.client.HTTPResponse for vllm_api."""

    def __init__(self, url, status, body):
        self.url = url
        self.status = status
        self._body = to_bytes(body)
        self.closed = False

    def getcode(self):
        return self.status

    def read(self):
        return self._body

    def close(self):
        self.closed = True


class FakeVllmServer:
    """Stand-in for ansible.module_utils.urls.open_url in front of a vLLM server.

    ``routes`` maps a path (``/health``, ``/version``, ``/v1/models``,
    ``/metrics``) to ``(status, body)`` or to an exception instance to raise.
    Non-2xx statuses raise urllib's HTTPError, as open_url does. With
    ``api_key`` set, /v1/* paths answer 401 unless the request carries
    ``Authorization: Bearer <api_key>`` (as ``vllm serve --api-key`` does).
    Every call is recorded in ``calls`` as (url, keyword arguments).

    Patch it in with::

        mock.patch(OPEN_URL, new=FakeVllmServer(...))
    """

    def __init__(self, routes=None, metrics_text='', api_key=None, version='0.32.0', models=('tiny',)):
        self.routes = {
            '/health': (200, ''),
            '/version': (200, json.dumps({'version': version})),
            '/v1/models': (200, json.dumps({
                'object': 'list',
                'data': [{'id': model, 'object': 'model', 'owned_by': 'vllm', 'root': model} for model in models],
            })),
            '/metrics': (200, metrics_text),
        }
        self.routes.update(routes or {})
        self.api_key = api_key
        self.calls = []

    @property
    def paths(self):
        """The paths requested, in order."""
        return [_path_of(url) for url, dummy in self.calls]

    def __call__(self, url, *args, **kwargs):
        self.calls.append((url, kwargs))
        path = _path_of(url)
        headers = kwargs.get('headers') or {}
        if self.api_key and path.startswith('/v1/') and headers.get('Authorization') != 'Bearer %s' % self.api_key:
            raise HTTPError(url, 401, 'Unauthorized', {}, io.BytesIO(b'{"error":"Unauthorized"}'))
        route = self.routes.get(path, (404, '{"detail":"Not Found"}'))
        if isinstance(route, BaseException):
            raise route
        status, body = route
        if not 200 <= status < 300:
            raise HTTPError(url, status, 'HTTP %d' % status, {}, io.BytesIO(to_bytes(body)))
        return FakeResponse(url, status, body)


def _path_of(url):
    rest = url.split('://', 1)[-1]
    return '/' + rest.split('/', 1)[1] if '/' in rest else '/'
