# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import json
import socket
import ssl
from unittest import mock
from urllib.error import HTTPError, URLError

import pytest

from ansible_collections.llmops.vllm.plugins.module_utils import grafana_client
from ansible_collections.llmops.vllm.plugins.module_utils.grafana_client import (
    MASK,
    GrafanaAPIError,
    GrafanaClient,
    GrafanaUnreachableError,
    mask_secrets,
    parse_error_body,
)
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.grafana_fake import OPEN_URL, FakeResponse

BASE = 'http://grafana.test:3000'


def params(**extra):
    values = dict(url=BASE, token='tok', url_username=None, url_password=None, org_id=None, validate_certs=True,
                  ca_path=None, client_cert=None, client_key=None, timeout=7, retries=3, retry_delay=1.0)
    values.update(extra)
    return values


def http_error(status, body):
    return HTTPError(BASE + '/x', status, 'reason', {}, io.BytesIO(body.encode()))


def test_url_must_be_http():
    with pytest.raises(ValueError, match='http:// or https://'):
        GrafanaClient(params(url='grafana.test:3000'))


def test_credentials_required():
    with pytest.raises(ValueError, match='token'):
        GrafanaClient(params(token=None))


def test_bearer_token_and_org_header():
    with mock.patch(OPEN_URL, return_value=FakeResponse('', 200, '{"a": 1}')) as opened:
        client = GrafanaClient(params(url=BASE + '/', org_id=2, ca_path='/ca.pem'))
        assert client.request('POST', '/api/folders', body={'uid': 'f'}) == {'a': 1}
    url = opened.call_args[0][0]
    kwargs = opened.call_args[1]
    assert url == BASE + '/api/folders'
    assert kwargs['method'] == 'POST'
    assert json.loads(kwargs['data']) == {'uid': 'f'}
    assert kwargs['headers']['Authorization'] == 'Bearer tok'
    assert kwargs['headers']['X-Grafana-Org-Id'] == '2'
    assert kwargs['headers']['Content-Type'] == 'application/json'
    assert kwargs['timeout'] == 7
    assert kwargs['ca_path'] == '/ca.pem'
    assert 'url_username' not in kwargs


def test_basic_auth():
    with mock.patch(OPEN_URL, return_value=FakeResponse('', 200, '[]')) as opened:
        client = GrafanaClient(params(token=None, url_username='admin', url_password='pw'))
        assert client.get('api/search', query={'type': 'dash-folder', 'query': 'a b'}) == []
    kwargs = opened.call_args[1]
    assert opened.call_args[0][0] == BASE + '/api/search?type=dash-folder&query=a+b'
    assert kwargs['url_username'] == 'admin'
    assert kwargs['url_password'] == 'pw'
    assert kwargs['force_basic_auth'] is True
    assert 'Authorization' not in kwargs['headers']
    assert kwargs['data'] is None


def test_bad_token_error_names_url_status_and_message():
    body = '{"extra":null,"message":"Invalid API key","messageId":"api-key.invalid","statusCode":401,"traceID":""}'
    with mock.patch(OPEN_URL, side_effect=http_error(401, body)):
        with pytest.raises(GrafanaAPIError) as raised:
            GrafanaClient(params()).get('api/datasources/uid/x')
    exc = raised.value
    assert exc.status == 401
    assert exc.grafana_message == 'Invalid API key'
    text = str(exc)
    assert 'GET %s/api/datasources/uid/x' % BASE in text
    assert 'HTTP 401' in text
    assert 'Invalid API key' in text
    assert 'token' in text
    assert exc.to_dict() == {'url': BASE + '/api/datasources/uid/x', 'method': 'GET', 'status': 401,
                             'grafana_message': 'Invalid API key'}


def test_dashboard_error_status_is_reported():
    body = '{"status":"version-mismatch","message":"The dashboard has been changed by someone else"}'
    with mock.patch(OPEN_URL, side_effect=http_error(412, body)):
        with pytest.raises(GrafanaAPIError) as raised:
            GrafanaClient(params()).post('api/dashboards/db', {})
    assert 'HTTP 412' in str(raised.value)
    assert 'changed by someone else (version-mismatch)' in str(raised.value)


def test_404_allowed_returns_none_and_otherwise_raises():
    with mock.patch(OPEN_URL, side_effect=http_error(404, '{"message":"Data source not found"}')):
        assert GrafanaClient(params()).get('api/datasources/uid/x', allow_404=True) is None
    with mock.patch(OPEN_URL, side_effect=http_error(404, '{"message":"Data source not found"}')):
        with pytest.raises(GrafanaAPIError, match='Data source not found'):
            GrafanaClient(params()).delete('api/datasources/uid/x')


def test_retries_connection_errors_with_backoff():
    sleeps = []
    answers = [URLError(ConnectionRefusedError(111, 'Connection refused')), socket.timeout('timed out'),
               FakeResponse('', 200, '{"database":"ok"}')]
    with mock.patch(OPEN_URL, side_effect=answers) as opened:
        client = GrafanaClient(params(retry_delay=0.5), sleep=sleeps.append)
        assert client.get('api/health') == {'database': 'ok'}
    assert opened.call_count == 3
    assert sleeps == [0.5, 1.0]


def test_gives_up_after_retries():
    sleeps = []
    with mock.patch(OPEN_URL, side_effect=URLError(ConnectionRefusedError(111, 'Connection refused'))) as opened:
        with pytest.raises(GrafanaUnreachableError) as raised:
            GrafanaClient(params(retries=2), sleep=sleeps.append).get('api/health')
    assert opened.call_count == 3
    assert sleeps == [1.0, 2.0]
    assert raised.value.status is None
    assert 'not reachable' in str(raised.value) and 'after 2 retries' in str(raised.value)
    assert BASE + '/api/health' in str(raised.value)


def test_http_errors_are_not_retried():
    with mock.patch(OPEN_URL, side_effect=http_error(500, '{"message":"Internal Server Error"}')) as opened:
        with pytest.raises(GrafanaAPIError):
            GrafanaClient(params(), sleep=lambda s: None).get('api/health')
    assert opened.call_count == 1


def test_tls_errors_are_not_retried():
    error = URLError(ssl.SSLCertVerificationError(1, 'certificate verify failed'))
    with mock.patch(OPEN_URL, side_effect=error) as opened:
        with pytest.raises(GrafanaAPIError, match='TLS error.*ca_path'):
            GrafanaClient(params(url='https://g.test'), sleep=lambda s: None).get('api/health')
    assert opened.call_count == 1


def test_non_json_answer():
    with mock.patch(OPEN_URL, return_value=FakeResponse('', 200, '<html>proxy login</html>')):
        with pytest.raises(GrafanaAPIError, match='not JSON'):
            GrafanaClient(params()).get('api/folders/x')


def test_empty_answer_is_none():
    with mock.patch(OPEN_URL, return_value=FakeResponse('', 200, '')):
        assert GrafanaClient(params()).delete('api/folders/x') is None


def test_parse_error_body():
    assert parse_error_body(b'{"message":"Permission denied"}') == ('Permission denied', {'message': 'Permission denied'})
    assert parse_error_body(b'Bad Gateway\n') == ('Bad Gateway', None)
    assert parse_error_body(b'') == (None, None)


def test_mask_secrets():
    value = {'name': 'p', 'secureJsonData': {'password': 'hunter2', 'token': 'x'}, 'list': [{'secureJsonData': 's'}]}
    masked = mask_secrets(value)
    assert masked == {'name': 'p', 'secureJsonData': {'password': MASK, 'token': MASK}, 'list': [{'secureJsonData': MASK}]}
    assert value['secureJsonData']['password'] == 'hunter2'


def test_fetch_text_sends_no_credentials():
    with mock.patch(OPEN_URL, return_value=FakeResponse('', 200, '{"title": "x"}')) as opened:
        assert grafana_client.fetch_text('https://example.test/d.json', timeout=3) == '{"title": "x"}'
    assert 'headers' not in opened.call_args[1]
    assert 'url_username' not in opened.call_args[1]
