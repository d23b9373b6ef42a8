# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module util is private to the llmops.vllm collection. It is not a
# public API: its functions may change between releases without notice.
# Use it only from plugins of this collection.

"""One client for Grafana's HTTP API, and the read-compare-write state machine
shared by the grafana_* modules.

Built on the collection's HTTP utility (module_utils/http_util.py, on
``ansible.module_utils.urls.open_url``). ``GrafanaClient.request()`` authenticates with a
service-account token (Bearer) or basic auth, retries with a doubling delay
on connection errors only (never on an HTTP answer), and raises
``GrafanaAPIError`` carrying the method, URL, status and Grafana's
``message``. ``GrafanaResource.execute()`` reads an object by uid,
normalises it, compares it with what the task asks for (fields Grafana owns
are left out of both sides), and creates, updates or deletes it only when
they differ. Check mode computes ``changed`` without writing; the diff is
returned only in diff mode, with secrets masked. ``GrafanaResource.main()``
is the main() of every grafana_* module.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import time

from urllib.parse import urlencode

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.llmops.vllm.plugins.module_utils.http_util import (
    USER_AGENT,
    HTTPRequestError,
    HTTPStatusError,
    TLSError,
    UnreachableError,
    decode,
    error_message,
    path_quote,
    request as http_request,
)


MASK = '********'

GRAFANA_ARGUMENT_SPEC = dict(
    url=dict(type='str', required=True, aliases=['grafana_url'], fallback=(env_fallback, ['GRAFANA_URL'])),
    token=dict(type='str', no_log=True, aliases=['grafana_api_key'], fallback=(env_fallback, ['GRAFANA_TOKEN'])),
    url_username=dict(type='str', aliases=['grafana_user']),
    url_password=dict(type='str', no_log=True, aliases=['grafana_password']),
    org_id=dict(type='int'),
    validate_certs=dict(type='bool', default=True),
    ca_path=dict(type='path'),
    client_cert=dict(type='path'),
    client_key=dict(type='path'),
    timeout=dict(type='int', default=30),
    retries=dict(type='int', default=3),
    retry_delay=dict(type='float', default=1.0),
)

GRAFANA_REQUIRED_TOGETHER = [('url_username', 'url_password')]

__all__ = ['USER_AGENT', 'MASK', 'GRAFANA_ARGUMENT_SPEC', 'GRAFANA_REQUIRED_TOGETHER', 'grafana_argument_spec',
           'GrafanaAPIError', 'GrafanaUnreachableError', 'GrafanaClient', 'GrafanaResource', 'ResourceError',
           'fetch_text', 'mask_secrets', 'parse_error_body', 'path_quote']


def grafana_argument_spec(**options):
    """The connection options merged with a module's own ``options``."""
    spec = copy.deepcopy(GRAFANA_ARGUMENT_SPEC)
    spec.update(options)
    return spec


class GrafanaAPIError(Exception):
    """Grafana answered with an error status, or did not answer at all.

    ``status`` is the HTTP status code (None when there was no HTTP answer),
    ``grafana_message`` the ``message`` field of Grafana's JSON error body (or
    the start of the body when it was not JSON), ``body`` the parsed body.
    """

    def __init__(self, method, url, status=None, grafana_message=None, body=None, reason=None, hint=None):
        self.method = method
        self.url = url
        self.status = status
        self.grafana_message = grafana_message
        self.body = body
        self.reason = reason
        self.hint = hint
        super(GrafanaAPIError, self).__init__(self.describe())

    def describe(self):
        if self.status is None:
            text = '%s %s failed: %s' % (self.method, self.url, self.reason)
        else:
            text = '%s %s returned HTTP %d' % (self.method, self.url, self.status)
            if self.grafana_message:
                text += ', Grafana answered: %s' % self.grafana_message
        if self.hint:
            text += ' (%s)' % self.hint
        return text

    @property
    def message(self):
        return self.describe()

    def to_dict(self):
        """Keyword arguments for fail_json besides ``msg``."""
        return {'url': self.url, 'method': self.method, 'status': self.status,
                'grafana_message': self.grafana_message}


class GrafanaUnreachableError(GrafanaAPIError):
    """No HTTP answer: connection refused, reset, DNS failure or timeout (after the retries)."""


class ResourceError(Exception):
    """The task cannot be carried out as given (raised before anything is written)."""


def _status_hint(status):
    if status == 401:
        return 'the credentials were rejected: check token, or url_username and url_password'
    if status == 403:
        return 'the credentials lack the permission for this call'
    return None


def parse_error_body(raw):
    """(message, parsed body) from the body of an error answer.

    Grafana's errors are JSON objects with a ``message`` (response.Error,
    errutil and dashboard errors alike); anything else is reported as text.
    """
    return error_message(decode(raw))


class GrafanaClient:
    """Client for one Grafana, configured from the connection options of a module."""

    def __init__(self, params, sleep=None):
        url = (params.get('url') or '').strip().rstrip('/')
        if not url.startswith(('http://', 'https://')):
            raise ValueError('url must be the root URL of Grafana, starting with http:// or https://, got %r' % url)
        self.base_url = url
        self.token = params.get('token') or None
        self.username = params.get('url_username') or None
        self.password = params.get('url_password')
        if not self.token and not self.username:
            raise ValueError('Grafana credentials are missing: set token (a service account token), '
                             'or url_username and url_password')
        self.org_id = params.get('org_id')
        self.validate_certs = params.get('validate_certs', True)
        self.ca_path = params.get('ca_path')
        self.client_cert = params.get('client_cert')
        self.client_key = params.get('client_key')
        self.timeout = params.get('timeout') or 30
        self.retries = max(0, params.get('retries') if params.get('retries') is not None else 3)
        self.retry_delay = max(0.0, params.get('retry_delay') if params.get('retry_delay') is not None else 1.0)
        self._sleep = sleep or time.sleep
        self.calls = []

    def url_for(self, path, query=None):
        url = self.base_url + '/' + path.lstrip('/')
        if query:
            url += '?' + urlencode(query, doseq=True)
        return url

    def _headers(self, has_body):
        headers = {'Accept': 'application/json'}
        if has_body:
            headers['Content-Type'] = 'application/json'
        if self.token:
            headers['Authorization'] = 'Bearer %s' % self.token
        if self.org_id is not None:
            headers['X-Grafana-Org-Id'] = str(self.org_id)
        return headers

    def _send(self, method, url, data):
        basic = {} if self.token else dict(url_username=self.username, url_password=self.password,
                                           force_basic_auth=True)
        return http_request(url, method=method, data=data, headers=self._headers(data is not None),
                            timeout=self.timeout, validate_certs=self.validate_certs, ca_path=self.ca_path,
                            client_cert=self.client_cert, client_key=self.client_key, **basic)

    def request(self, method, path, body=None, query=None, allow_404=False):
        """Send one request; return the decoded JSON answer (None for an empty body).

        A 404 returns None when ``allow_404``. Any other status of 400 or
        more raises GrafanaAPIError; no answer after the retries raises
        GrafanaUnreachableError. ``query`` is a dict or a list of pairs
        (a list repeats a key, as in ``tags=a&tags=b``).
        """
        url = self.url_for(path, query)
        data = json.dumps(body, sort_keys=True) if body is not None else None
        attempt = 0
        while True:
            self.calls.append((method, path))
            try:
                response = self._send(method, url, data)
                break
            except HTTPStatusError as exc:
                if exc.status == 404 and allow_404:
                    return None
                raise GrafanaAPIError(method, url, status=exc.status, grafana_message=exc.server_message or exc.http_reason,
                                      body=exc.data, hint=_status_hint(exc.status))
            except TLSError as exc:
                raise GrafanaAPIError(method, url, reason='TLS error: %s' % exc.reason,
                                      hint='check ca_path, or set validate_certs=false for a self-signed test setup')
            except UnreachableError as exc:
                if attempt >= self.retries:
                    reason = exc.reason if exc.timed_out else 'Grafana is not reachable: %s' % exc.reason
                    if attempt:
                        reason += ' (after %d retries)' % attempt
                    raise GrafanaUnreachableError(method, url, reason=reason)
                self._sleep(self.retry_delay * (2 ** attempt))
                attempt += 1
        try:
            return response.json()
        except HTTPRequestError as exc:
            raise GrafanaAPIError(method, url, status=200, reason=exc.reason,
                                  grafana_message='the answer is not JSON: %s' % response.text[:200])

    def get(self, path, query=None, allow_404=False):
        return self.request('GET', path, query=query, allow_404=allow_404)

    def post(self, path, body):
        return self.request('POST', path, body=body)

    def put(self, path, body):
        return self.request('PUT', path, body=body)

    def patch(self, path, body):
        return self.request('PATCH', path, body=body)

    def delete(self, path, allow_404=False):
        return self.request('DELETE', path, allow_404=allow_404)


def fetch_text(url, timeout=30, validate_certs=True, ca_path=None):
    """GET ``url`` without Grafana's credentials; the body as text. Errors raise HTTPRequestError."""
    return http_request(url, timeout=timeout, validate_certs=validate_certs, ca_path=ca_path).text


def mask_secrets(value, secret_keys=('secureJsonData',)):
    """A copy of ``value`` where every value under a key in ``secret_keys`` is masked."""
    if isinstance(value, dict):
        masked = {}
        for key, item in value.items():
            if key in secret_keys and isinstance(item, dict):
                masked[key] = dict((name, MASK) for name in item)
            elif key in secret_keys and item is not None:
                masked[key] = MASK
            else:
                masked[key] = mask_secrets(item, secret_keys)
        return masked
    if isinstance(value, list):
        return [mask_secrets(item, secret_keys) for item in value]
    return value


class GrafanaResource:
    """One kind of Grafana object, driven by ``execute()``.

    Subclasses set ``kind`` (the result key, such as ``folder``) and
    implement:

    - ``read()``: the object as Grafana returns it, or None when absent;
    - ``comparable(current)``: the managed fields of ``current``, without the
      fields Grafana owns (id, version, timestamps, ...);
    - ``desired(current, have)``: the same shape, as the task wants it
      (``have`` is ``comparable(current)`` or None);
    - ``create(want)``, ``update(current, have, want)``, ``delete(current)``:
      the writes; they return Grafana's object after the change;
    - optionally ``predict(current, want)`` (the object check mode reports),
      ``check_writable(current, state)`` (fail before writing),
      ``force_change(current, have)`` (a change that cannot be seen by
      comparing, such as secrets to send again) and ``public(obj)`` (what to
      return as ``<kind>``).
    """

    kind = 'object'
    secret_keys = ('secureJsonData',)

    # the module's own options (merged with the connection options) and
    # their constraints, read by main()
    argument_spec = {}
    required_if = []
    required_one_of = []
    mutually_exclusive = []
    required_together = []

    @classmethod
    def main(cls):
        """The main() of a grafana_* module: parse the options, connect, execute().

        Fails the module with the message of a ValueError from the client
        (bad url, no credentials), a ResourceError or a GrafanaAPIError raised
        while the resource is set up.
        """
        module = AnsibleModule(
            argument_spec=grafana_argument_spec(**copy.deepcopy(cls.argument_spec)),
            required_together=GRAFANA_REQUIRED_TOGETHER + list(cls.required_together),
            required_if=list(cls.required_if),
            required_one_of=list(cls.required_one_of),
            mutually_exclusive=list(cls.mutually_exclusive),
            supports_check_mode=True,
        )
        try:
            client = GrafanaClient(module.params)
        except ValueError as exc:
            module.fail_json(msg=str(exc))
        try:
            resource = cls(module, client)
        except ResourceError as exc:
            module.fail_json(msg=str(exc))
        except GrafanaAPIError as exc:
            module.fail_json(msg=exc.describe(), **exc.to_dict())
        resource.execute()

    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.params = module.params

    def fail(self, msg, **kwargs):
        self.module.fail_json(msg=msg, **kwargs)

    # hooks with defaults
    def check_writable(self, current, state):
        pass

    def force_change(self, current, have):
        return False

    def predict(self, current, want):
        merged = copy.deepcopy(current) if current else {}
        merged.update(want)
        return merged

    def public(self, obj):
        return obj

    def differs(self, have, want):
        return have != want

    def execute(self):
        """Read, compare, write; exit the module with changed, <kind> and diff."""
        try:
            result = self._execute()
        except GrafanaAPIError as exc:
            self.fail(exc.describe(), **exc.to_dict())
        except ResourceError as exc:
            self.fail(str(exc))
        self.module.exit_json(**result)

    def _execute(self):
        state = self.params.get('state') or 'present'
        current = self.read()
        have = self.comparable(current) if current is not None else None
        result = {'changed': False}

        if state == 'absent':
            want = None
            if current is not None:
                self.check_writable(current, state)
                result['changed'] = True
                if not self.module.check_mode:
                    self.delete(current)
            result[self.kind] = {}
        else:
            want = self.desired(current, have)
            if current is None:
                result['changed'] = True
                obj = self.predict(None, want) if self.module.check_mode else self.create(want)
            elif self.differs(have, want) or self.force_change(current, have):
                self.check_writable(current, state)
                result['changed'] = True
                obj = self.predict(current, want) if self.module.check_mode else self.update(current, have, want)
            else:
                obj = current
            result[self.kind] = self.public(obj)

        if self.module._diff:
            result['diff'] = {
                'before': mask_secrets(have, self.secret_keys) if have is not None else {},
                'after': mask_secrets(want, self.secret_keys) if want is not None else {},
            }
        return result
