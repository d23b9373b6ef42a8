# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared HTTP utility (module_utils/http_util.py) on its own."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import socket
import ssl
from unittest import mock
from urllib.error import HTTPError, URLError

import pytest

from ansible_collections.llmops.vllm.plugins.module_utils import http_util
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.utils import OPEN_URL, FakeResponse

URL = 'http://server.test:9090/api/v1/query'


def test_success_passes_options_to_open_url():
    with mock.patch(OPEN_URL, return_value=FakeResponse(URL, 200, '{"a": 1}')) as opened:
        response = http_util.request(URL, method='POST', data='x=1', headers={'Accept': 'application/json'}, timeout=4,
                                     validate_certs=False, ca_path='/ca.pem', client_cert='/c.pem', client_key='/k.pem',
                                     url_username='u', url_password='p', force_basic_auth=True)
    assert response.status == 200 and response.json() == {'a': 1}
    kwargs = opened.call_args[1]
    assert kwargs['method'] == 'POST' and kwargs['data'] == 'x=1' and kwargs['timeout'] == 4
    assert kwargs['http_agent'] == http_util.USER_AGENT and kwargs['follow_redirects'] == 'safe'
    assert (kwargs['ca_path'], kwargs['client_cert'], kwargs['client_key']) == ('/ca.pem', '/c.pem', '/k.pem')
    assert (kwargs['url_username'], kwargs['url_password'], kwargs['force_basic_auth']) == ('u', 'p', True)
    assert kwargs['validate_certs'] is False


def test_no_headers_no_auth_unless_given():
    with mock.patch(OPEN_URL, return_value=FakeResponse(URL, 200, '')) as opened:
        assert http_util.request(URL).json() is None
    assert 'headers' not in opened.call_args[1] and 'url_username' not in opened.call_args[1]


def test_http_error_keeps_status_body_and_message():
    body = b'{"status":"error","errorType":"bad_data","error":"parse error"}'
    with mock.patch(OPEN_URL, side_effect=HTTPError(URL, 400, 'Bad Request', {}, io.BytesIO(body))):
        with pytest.raises(http_util.HTTPStatusError) as raised:
            http_util.request(URL)
    exc = raised.value
    assert exc.status == 400 and exc.server_message == 'parse error (bad_data)'
    assert exc.data['errorType'] == 'bad_data' and exc.body == body.decode()
    assert str(exc) == 'GET %s returned HTTP 400: parse error (bad_data)' % URL


@pytest.mark.parametrize('body, message', [
    (b'{"message":"Invalid API key"}', 'Invalid API key'),
    (b'{"status":"version-mismatch","message":"changed"}', 'changed (version-mismatch)'),
    (b'"silence not found"\n', 'silence not found'),
    (b'{"detail":"Not Found"}', 'Not Found'),
    (b'Bad Gateway\n', 'Bad Gateway'),
    (b'', None),
])
def test_error_message(body, message):
    assert http_util.error_message(http_util.decode(body))[0] == message


def test_tls_timeout_and_refused():
    cases = [
        (URLError(ssl.SSLCertVerificationError(1, 'certificate verify failed')), http_util.TLSError, 'certificate verify failed'),
        (socket.timeout('timed out'), http_util.UnreachableError, 'no answer within 30 seconds'),
        (URLError(ConnectionRefusedError(111, 'Connection refused')), http_util.UnreachableError, 'Connection refused'),
        (ConnectionResetError(104, 'Connection reset by peer'), http_util.UnreachableError, 'reset'),
    ]
    for error, kind, text in cases:
        with mock.patch(OPEN_URL, side_effect=error):
            with pytest.raises(kind, match=text) as raised:
                http_util.request(URL)
        assert raised.value.url == URL and raised.value.status is None
    with mock.patch(OPEN_URL, side_effect=socket.timeout('timed out')):
        with pytest.raises(http_util.UnreachableError) as raised:
            http_util.request(URL)
    assert raised.value.timed_out is True


def test_not_json():
    with mock.patch(OPEN_URL, return_value=FakeResponse(URL, 200, '<html>')):
        with pytest.raises(http_util.HTTPRequestError, match='not JSON'):
            http_util.request(URL).json()


def test_url_helpers():
    assert http_util.join_url('http://h:1/', '/api/x', [('tags', 'a'), ('tags', 'b c')]) == 'http://h:1/api/x?tags=a&tags=b+c'
    assert http_util.path_quote('a/b c') == 'a%2Fb%20c'
    assert http_util.check_base_url(' https://h/p/ ') == 'https://h/p'
    with pytest.raises(ValueError, match='http:// or https://'):
        http_util.check_base_url('h:9090')
