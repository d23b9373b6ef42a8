# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module util is private to the llmops.vllm collection. It is not a
# public API: its functions may change between releases without notice.
# Use it only from plugins of this collection.

"""The one HTTP utility of the collection's clients (Grafana, vLLM,
Prometheus, Alertmanager).

Built on ``ansible.module_utils.urls.open_url``: no third-party HTTP library
on the managed host. ``request()`` sends one request and either returns a
``Response`` (any 2xx or 3xx answer, body read and decoded), or raises:

- ``HTTPStatusError`` for an HTTP answer of 400 or more, with the status,
  the start of the body, and the ``message`` the server put in a JSON body;
- ``TLSError`` when the TLS handshake or certificate check failed;
- ``UnreachableError`` when no HTTP answer came back at all (connection
  refused or reset, name resolution failure, timeout).

All three derive from ``HTTPRequestError``, which names the method and URL.
Retries, authentication schemes and the wording of module errors stay with
each client; this file holds what they share: the user agent, the body
limit, the TLS and reason handling, the exception ladder and JSON decoding.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import http.client
import json
import socket
import ssl

from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode

from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.urls import open_url, ConnectionError as UrlsConnectionError


USER_AGENT = 'ansible-llmops.vllm'

# longest piece of a response body kept in an error
BODY_LIMIT = 2000

# what open_url raises when no HTTP answer came back (HTTPError, a subclass of
# URLError, is caught before these)
CONNECTION_ERRORS = (URLError, UrlsConnectionError, http.client.HTTPException, socket.timeout, OSError)


def reason_text(exc):
    """A short text for a connection error: the reason urllib wrapped, or the exception itself."""
    reason = getattr(exc, 'reason', None)
    if reason is None:
        return to_text(exc) or exc.__class__.__name__
    if isinstance(reason, BaseException):
        return to_text(reason) or reason.__class__.__name__
    return to_text(reason)


def is_tls_error(exc):
    reason = getattr(exc, 'reason', exc)
    return isinstance(reason, (ssl.SSLError, ssl.CertificateError))


def is_timeout(exc):
    return isinstance(exc, socket.timeout) or isinstance(getattr(exc, 'reason', None), socket.timeout)


def decode(raw):
    """Bytes of a body as text (undecodable bytes replaced)."""
    return to_text(raw or b'', errors='surrogate_or_replace')


def error_message(text):
    """(message, parsed JSON or None) from the text of an error answer.

    Understands the JSON error bodies of Grafana (``message``, with a
    ``status`` such as ``version-mismatch``), Prometheus (``error``, with an
    ``errorType`` such as ``bad_data``), Alertmanager (``message``, or a
    JSON string) and vLLM (``error``, ``detail``). Anything else is the start
    of the text.
    """
    text = text or ''
    try:
        data = json.loads(text)
    except ValueError:
        return (text.strip()[:BODY_LIMIT] or None), None
    if isinstance(data, dict):
        message = data.get('message') or data.get('error')
        if isinstance(message, dict):
            message = message.get('message') or json.dumps(message, sort_keys=True)
        if not message and isinstance(data.get('detail'), str):
            message = data['detail']
        if message and data.get('status') and data.get('status') not in ('error', 'success'):
            message = '%s (%s)' % (message, data['status'])
        elif message and data.get('errorType'):
            message = '%s (%s)' % (message, data['errorType'])
        return (to_text(message) if message else text[:BODY_LIMIT]), data
    if isinstance(data, str):
        return data.strip()[:BODY_LIMIT] or None, data
    return text[:BODY_LIMIT], data


class HTTPRequestError(Exception):
    """A request that did not get a usable answer; names ``method`` and ``url``."""

    def __init__(self, message, method=None, url=None, status=None, body=None, reason=None):
        super(HTTPRequestError, self).__init__(message)
        self.message = message
        self.method = method
        self.url = url
        self.status = status
        self.body = body
        self.reason = reason


class HTTPStatusError(HTTPRequestError):
    """The server answered with a status of 400 or more.

    ``body`` is the start of the body as text (None when empty),
    ``server_message`` the message the server put in it (see
    error_message()), ``data`` the parsed JSON body (None when not JSON),
    ``http_reason`` the reason phrase.
    """

    def __init__(self, method, url, status, body=None, http_reason=None, headers=None):
        self.server_message, self.data = error_message(body)
        self.http_reason = to_text(http_reason) if http_reason else None
        self.headers = headers
        message = '%s %s returned HTTP %d' % (method, url, status)
        if self.server_message or self.http_reason:
            message += ': %s' % (self.server_message or self.http_reason)
        super(HTTPStatusError, self).__init__(message, method=method, url=url, status=status,
                                              body=body[:BODY_LIMIT] if body else None)


class UnreachableError(HTTPRequestError):
    """No HTTP answer: connection refused or reset, DNS failure, timeout. ``timed_out`` tells a timeout."""

    def __init__(self, method, url, reason, timed_out=False):
        self.timed_out = timed_out
        super(UnreachableError, self).__init__('%s %s failed: %s' % (method, url, reason), method=method, url=url, reason=reason)


class TLSError(HTTPRequestError):
    """The TLS handshake or the certificate check failed."""

    def __init__(self, method, url, reason):
        super(TLSError, self).__init__('%s %s failed: TLS error: %s' % (method, url, reason), method=method, url=url, reason=reason)


class Response:
    """A 2xx (or 3xx) answer: ``status``, ``headers``, ``text`` (the decoded body)."""

    def __init__(self, method, url, status, text, headers=None):
        self.method = method
        self.url = url
        self.status = status
        self.text = text
        self.headers = headers

    def json(self):
        """The body as JSON; None for an empty body. Raises HTTPRequestError when it is not JSON."""
        if not self.text.strip():
            return None
        try:
            return json.loads(self.text)
        except ValueError as exc:
            raise HTTPRequestError('%s %s answered with something that is not JSON (%s): %s'
                                   % (self.method, self.url, exc, self.text[:200]),
                                   method=self.method, url=self.url, status=self.status,
                                   body=self.text[:BODY_LIMIT], reason='not JSON: %s' % exc)


def join_url(base_url, path, query=None):
    """``base_url`` + ``/path`` + ``?query`` (a dict or a list of pairs; repeated keys allowed)."""
    url = base_url.rstrip('/') + '/' + path.lstrip('/')
    if query:
        url += '?' + urlencode(query, doseq=True)
    return url


def path_quote(value):
    """``value`` quoted for one path segment of a URL."""
    return quote(to_text(value), safe='')


def check_base_url(url, what='url'):
    """``url`` stripped of spaces and a trailing slash; ValueError unless it is http(s)."""
    url = (url or '').strip().rstrip('/')
    if not url.startswith(('http://', 'https://')):
        raise ValueError('%s must start with http:// or https://, got %r' % (what, url))
    return url


def request(url, method='GET', data=None, headers=None, timeout=30, validate_certs=True, ca_path=None,
            client_cert=None, client_key=None, url_username=None, url_password=None, force_basic_auth=False):
    """Send one request with open_url; return a Response, or raise (see the module docstring).

    ``data`` is sent as is (text or bytes); ``headers`` is sent only when
    given. Basic authentication is used when ``url_username`` is set.
    """
    kwargs = dict(
        method=method,
        data=data,
        timeout=timeout,
        validate_certs=validate_certs,
        http_agent=USER_AGENT,
        follow_redirects='safe',
        use_proxy=True,
    )
    if headers is not None:
        kwargs['headers'] = headers
    if ca_path:
        kwargs['ca_path'] = ca_path
    if client_cert:
        kwargs['client_cert'] = client_cert
    if client_key:
        kwargs['client_key'] = client_key
    if url_username is not None:
        kwargs.update(url_username=url_username, url_password=url_password or '', force_basic_auth=force_basic_auth)
    try:
        response = open_url(url, **kwargs)
        try:
            status = response.getcode()
            raw = response.read()
            response_headers = getattr(response, 'headers', None)
        finally:
            response.close()
    except HTTPError as exc:
        try:
            raw = exc.read()
        except Exception:  # pylint: disable=broad-except
            raw = b''
        raise HTTPStatusError(method, url, exc.code, decode(raw) or None, http_reason=exc.reason,
                              headers=getattr(exc, 'headers', None))
    except CONNECTION_ERRORS as exc:
        if is_tls_error(exc):
            raise TLSError(method, url, reason_text(exc))
        if is_timeout(exc):
            raise UnreachableError(method, url, 'no answer within %s seconds' % timeout, timed_out=True)
        raise UnreachableError(method, url, reason_text(exc))
    return Response(method, url, status, decode(raw), headers=response_headers)


# The connection options every HTTP module of the collection shares (besides
# its own url and credentials): documented by the llmops.vllm.http fragment.
HTTP_ARGUMENT_SPEC = dict(
    validate_certs=dict(type='bool', default=True),
    ca_path=dict(type='path'),
    client_cert=dict(type='path'),
    client_key=dict(type='path'),
    timeout=dict(type='int', default=30),
)


def tls_options(params):
    """The keyword arguments of request() for the TLS options of a module."""
    return dict((key, params.get(key)) for key in ('validate_certs', 'ca_path', 'client_cert', 'client_key'))
