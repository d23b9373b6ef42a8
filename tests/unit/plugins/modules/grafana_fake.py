# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An in-memory stand-in for ansible.module_utils.urls.open_url in front of Grafana.

Unit tests patch it in where module_utils/http_util imports open_url::

    fake = FakeGrafana(token='tok')
    with mock.patch(OPEN_URL, new=fake):
        ...

or run a module against it with ``run = grafana_runner(grafana_folder.main)``
and ``run(fake, check=True, uid='x', title='X')``; the ``fake`` fixture
(tests/unit/plugins/modules/conftest.py) gives a fresh FakeGrafana.

It keeps folders, data sources and dashboards in dicts and answers with the
status codes and JSON shapes of Grafana's HTTP API (see
/work/shared/research/grafana-http-api.md) for the calls the modules make.
Every request is recorded in ``calls`` as (method, path, parsed body);
``writes`` lists the non-GET ones. It is deliberately small: the
integration tests run the modules against the full test double.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import copy
import io
import json
import time
from urllib.error import HTTPError
from urllib.parse import parse_qs, unquote, urlsplit

from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.llmops.vllm.tests.unit.plugins.modules.utils import OPEN_URL, run_with

__all__ = ['OPEN_URL', 'CONN', 'FakeGrafana', 'FakeResponse', 'grafana_runner']

CONN = {'url': 'http://grafana.test:3000', 'token': 'good-token'}


def grafana_runner(main, conn=None):
    """A ``run(fake, check=False, diff=False, **args)`` for the main() of a grafana_* module.

    It runs ``main`` with the connection options ``conn`` (CONN by default)
    plus ``args``, against ``fake`` (a FakeGrafana), and returns the
    AnsibleExitJson or AnsibleFailJson raised.
    """
    def run(fake, check=False, diff=False, **args):
        return run_with(main, dict(conn or CONN, **args), fake, check=check, diff=diff)
    return run


class FakeResponse:
    def __init__(self, url, status, body):
        self.url = url
        self.status = status
        self._body = to_bytes(body)

    def getcode(self):
        return self.status

    def read(self):
        return self._body

    def close(self):
        pass


class FakeGrafana:
    def __init__(self, token='good-token', user='admin', password='secret'):
        self.token = token
        self.user = user
        self.password = password
        self.folders = {}
        self.datasources = {}
        self.dashboards = {}
        self.annotations = {}
        self.service_accounts = {}
        self.sa_tokens = {}  # account id -> list of tokens (with their key)
        self.calls = []
        self.next_id = 1
        self.raise_before = []  # exceptions raised (once each) before answering
        self.external = {}  # url -> body text, served without authentication (dashboard_url)

    @property
    def writes(self):
        return [(method, path) for method, path, body in self.calls if method != 'GET']

    def _id(self):
        self.next_id += 1
        return self.next_id

    def _error(self, url, code, message, **extra):
        body = dict(message=message, **extra)
        raise HTTPError(url, code, message, {}, io.BytesIO(to_bytes(json.dumps(body))))

    def _authorised(self, url, headers, kwargs):
        """The caller's login; a service-account key is refused as Grafana does (401 invalid, expired, revoked)."""
        auth = headers.get('Authorization')
        if auth == 'Bearer %s' % self.token:
            return self.user
        if auth and auth.startswith('Bearer '):
            for account_id, tokens in self.sa_tokens.items():
                for token in tokens:
                    if auth == 'Bearer %s' % token['_key']:
                        if token['isRevoked']:
                            self._error(url, 401, 'Revoked API key', messageId='api-key.revoked', statusCode=401)
                        if self._expired(token):
                            self._error(url, 401, 'Expired API key', messageId='api-key.expired', statusCode=401)
                        return self.service_accounts[account_id]['login']
            return None
        if kwargs.get('url_username') is not None and kwargs.get('force_basic_auth'):
            if kwargs['url_username'] == self.user and kwargs.get('url_password') == self.password:
                return self.user
        return None

    def __call__(self, url, data=None, headers=None, method=None, **kwargs):
        parts = urlsplit(url)
        path = unquote(parts.path)
        multi = parse_qs(parts.query)
        query = dict((key, values[0]) for key, values in multi.items())
        query['_multi'] = multi
        body = json.loads(data) if data else None
        method = method or 'GET'
        self.calls.append((method, path, body))
        if self.raise_before:
            raise self.raise_before.pop(0)
        if url in self.external:
            return FakeResponse(url, 200, self.external[url])
        headers = headers or {}
        login = self._authorised(url, headers, kwargs)
        if login is None:
            self._error(url, 401, 'Invalid API key', messageId='api-key.invalid', statusCode=401)
        if path.strip('/') == 'api/user' and method == 'GET':
            return FakeResponse(url, 200, json.dumps({'login': login, 'orgId': 1}))
        status, answer = self.route(url, method, path, query, body)
        return FakeResponse(url, status, json.dumps(answer))

    # routing -----------------------------------------------------------
    def route(self, url, method, path, query, body):
        seg = path.strip('/').split('/')
        if seg[:2] == ['api', 'folders']:
            return self.folder(url, method, seg[2:], body)
        if seg[:3] == ['api', 'datasources', 'uid']:
            return self.datasource(url, method, seg[3] if len(seg) > 3 else None, body)
        if seg == ['api', 'datasources'] and method == 'POST':
            return self.datasource(url, 'POST', None, body)
        if seg[:3] == ['api', 'dashboards', 'uid']:
            return self.dashboard(url, method, seg[3], body)
        if seg == ['api', 'dashboards', 'db'] and method == 'POST':
            return self.save_dashboard(url, body)
        if seg[:2] == ['api', 'serviceaccounts']:
            return self.service_account(url, method, seg[2:], query, body)
        if seg[:2] == ['api', 'annotations']:
            return self.annotation(url, method, seg[2:], query, body)
        if seg == ['api', 'search']:
            items = [{'uid': f['uid'], 'title': f['title'], 'type': 'dash-folder'} for f in self.folders.values()
                     if query.get('query', '').lower() in f['title'].lower()]
            return 200, items
        self._error(url, 404, 'Not found')

    def folder(self, url, method, rest, body):
        if not rest and method == 'POST':
            if body.get('uid') in self.folders:
                self._error(url, 409, 'a folder/dashboard with the same uid already exists')
            folder = {'id': self._id(), 'uid': body['uid'], 'title': body['title'], 'version': 1,
                      'url': '/dashboards/f/%s/' % body['uid']}
            if body.get('parentUid'):
                folder['parentUid'] = body['parentUid']
            self.folders[body['uid']] = folder
            return 200, folder
        uid = rest[0]
        folder = self.folders.get(uid)
        if folder is None:
            self._error(url, 404, 'folder not found', status='not-found')
        if len(rest) == 2 and rest[1] == 'move' and method == 'POST':
            folder['parentUid'] = body['parentUid']
            return 200, folder
        if method == 'GET':
            return 200, copy.deepcopy(folder)
        if method == 'PUT':
            if not body.get('overwrite') and body.get('version') != folder['version']:
                self._error(url, 412, 'the folder has been changed by someone else', status='version-mismatch')
            folder['title'] = body['title']
            folder['version'] += 1
            return 200, folder
        if method == 'DELETE':
            del self.folders[uid]
            for key in [k for k, d in self.dashboards.items() if d['meta']['folderUid'] == uid]:
                del self.dashboards[key]
            return 200, {'message': 'Folder deleted'}
        self._error(url, 405, 'Method not allowed')

    def add_datasource(self, **fields):
        """A data source as Grafana stores it (tests use it to preset state)."""
        ds = {'id': self._id(), 'orgId': 1, 'typeLogoUrl': 'public/img/icn-datasource.svg', 'access': 'proxy', 'url': '',
              'user': '', 'database': '', 'basicAuth': False, 'basicAuthUser': '', 'withCredentials': False,
              'isDefault': not self.datasources, 'jsonData': {}, 'secureJsonFields': {}, 'version': 1,
              'readOnly': False, 'apiVersion': ''}
        secrets = fields.pop('secureJsonData', None) or {}
        ds.update(fields)
        ds['_secrets'] = dict(secrets)
        ds['secureJsonFields'] = dict((key, True) for key in secrets)
        self.datasources[ds['uid']] = ds
        return ds

    def dto(self, ds):
        return dict((key, copy.deepcopy(value)) for key, value in ds.items() if key != '_secrets')

    def datasource(self, url, method, uid, body):
        if method == 'POST':
            for other in self.datasources.values():
                if other['name'] == body['name']:
                    self._error(url, 409, 'data source with the same name already exists')
            if body.get('uid') in self.datasources:
                self._error(url, 409, 'data source with the same uid already exists')
            fields = dict((key, value) for key, value in body.items() if key != 'version')
            ds = self.add_datasource(**fields)
            if body.get('isDefault'):
                for other in self.datasources.values():
                    other['isDefault'] = other is ds
            return 200, {'datasource': self.dto(ds), 'id': ds['id'], 'message': 'Datasource added', 'name': ds['name']}
        ds = self.datasources.get(uid)
        if ds is None:
            self._error(url, 404, 'Data source not found')
        if method == 'GET':
            return 200, self.dto(ds)
        if method == 'PUT':
            if ds['readOnly']:
                self._error(url, 403, 'Cannot update read-only data source')
            if body.get('version') and ds['version'] > body['version']:
                self._error(url, 409, 'Datasource has already been updated by someone else. Please reload and try again')
            for key, value in body.items():
                if key == 'secureJsonData':
                    ds['_secrets'].update(value)
                    ds['secureJsonFields'] = dict((k, True) for k, v in ds['_secrets'].items() if v)
                elif key != 'version':
                    ds[key] = value
            ds['version'] = (body.get('version') or 0) + 1
            if body.get('isDefault'):
                for other in self.datasources.values():
                    other['isDefault'] = other is ds
            return 200, {'datasource': self.dto(ds), 'id': ds['id'], 'message': 'Datasource updated', 'name': ds['name']}
        if method == 'DELETE':
            if ds['readOnly']:
                self._error(url, 403, 'Cannot delete read-only data source')
            del self.datasources[uid]
            return 200, {'message': 'Data source deleted', 'id': ds['id']}
        self._error(url, 405, 'Method not allowed')

    def dashboard(self, url, method, uid, body):
        stored = self.dashboards.get(uid)
        if stored is None:
            self._error(url, 404, 'Dashboard not found')
        if method == 'GET':
            return 200, copy.deepcopy(stored)
        if method == 'DELETE':
            del self.dashboards[uid]
            return 200, {'title': stored['dashboard']['title'], 'message': 'Dashboard deleted', 'uid': uid}
        self._error(url, 405, 'Method not allowed')

    def save_dashboard(self, url, body):
        dashboard = copy.deepcopy(body['dashboard'])
        title = (dashboard.get('title') or '').strip()
        if not title:
            self._error(url, 400, 'Dashboard title cannot be empty', status='empty-name')
        dashboard['title'] = title
        folder_uid = body.get('folderUid') or ''
        if folder_uid and folder_uid not in self.folders:
            self._error(url, 400, 'folder not found')
        uid = dashboard.get('uid')
        existing = self.dashboards.get(uid)
        if existing:
            if (dashboard.get('version') or 0) != existing['dashboard']['version'] and not body.get('overwrite'):
                self._error(url, 412, 'The dashboard has been changed by someone else', status='version-mismatch')
            dashboard['id'] = existing['dashboard']['id']
            dashboard['version'] = existing['dashboard']['version'] + 1
        else:
            dashboard['id'] = self._id()
            dashboard['version'] = 1
        meta = {'folderUid': folder_uid, 'folderTitle': self.folders[folder_uid]['title'] if folder_uid else 'General',
                'url': '/d/%s/%s' % (uid, title.lower().replace(' ', '-')), 'version': dashboard['version'],
                'provisioned': False, 'slug': title.lower().replace(' ', '-')}
        self.dashboards[uid] = {'dashboard': dashboard, 'meta': meta}
        return 200, {'id': dashboard['id'], 'uid': uid, 'url': meta['url'], 'status': 'success',
                     'version': dashboard['version'], 'slug': meta['slug']}


    # annotations (shapes of /work/shared/research/grafana-http-api-more.md, section 3)
    def add_annotation(self, **fields):
        item = {'id': self._id(), 'alertId': 0, 'alertName': '', 'dashboardId': 0, 'dashboardUID': None, 'panelId': 0,
                'userId': 1, 'newState': '', 'prevState': '', 'created': 1738342800000, 'updated': 1738342800000,
                'time': 1738342800000, 'timeEnd': 1738342800000, 'text': '', 'tags': [], 'login': 'admin',
                'email': 'admin@localhost', 'avatarUrl': '/avatar/46d229b033af06a191ff2267bca9ae56', 'data': {}}
        item.update(fields)
        self.annotations[item['id']] = item
        return item

    def annotation(self, url, method, rest, query, body):
        if not rest and method == 'GET':
            tags = query['_multi'].get('tags', [])
            items = [copy.deepcopy(a) for a in self.annotations.values() if all(t in a['tags'] for t in tags)]
            items.sort(key=lambda a: (a['timeEnd'], a['time']), reverse=True)
            return 200, items[:int(query.get('limit', 100))]
        if not rest and method == 'POST':
            if not body.get('text'):
                self._error(url, 400, 'Failed to save annotation')
            time = body.get('time') or 1738342800000
            end = body.get('timeEnd') or time
            if end < time:
                time, end = end, time
            dashboard_uid = body.get('dashboardUID') if body.get('dashboardUID') in self.dashboards else None
            item = self.add_annotation(text=body['text'], tags=list(body.get('tags') or []), time=time, timeEnd=end,
                                       dashboardUID=dashboard_uid, panelId=body.get('panelId') or 0)
            return 200, {'message': 'Annotation added', 'id': item['id']}
        try:
            ident = int(rest[0])
        except ValueError:
            self._error(url, 400, 'annotationId is invalid')
        item = self.annotations.get(ident)
        if item is None:
            self._error(url, 404, 'Annotation not found')
        if method == 'PATCH':
            for key in ('text', 'tags', 'time', 'timeEnd', 'data'):
                if body.get(key):
                    item[key] = body[key]
            return 200, {'message': 'Annotation patched'}
        if method == 'DELETE':
            del self.annotations[ident]
            return 200, {'message': 'Annotation deleted'}
        self._error(url, 405, 'Method not allowed')

    # service accounts (shapes of /work/shared/research/grafana-http-api-more.md, section 5)
    def add_service_account(self, name, role='Viewer', isDisabled=False):
        ident = self._id()
        account = {'id': ident, 'uid': 'sa%06d' % ident, 'name': name, 'login': 'sa-1-%s' % name, 'orgId': 1,
                   'isDisabled': isDisabled, 'role': role, 'tokens': 0, 'avatarUrl': '/avatar/x'}
        self.service_accounts[ident] = account
        self.sa_tokens[ident] = []
        return account

    def add_sa_token(self, account_id, name, hasExpired=False, expiration=None, isRevoked=False):
        """A token; ``expiration`` is an RFC 3339 string or seconds from now (an int)."""
        if isinstance(expiration, int):
            expiration = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(time.time() + expiration))
        token = {'id': self._id(), 'name': name, 'created': '2025-01-31T17:00:00Z', 'lastUsedAt': None,
                 'expiration': expiration, 'secondsUntilExpiration': 0, 'hasExpired': hasExpired, 'isRevoked': isRevoked,
                 '_key': 'glsa_secret_%d' % self.next_id}
        self.sa_tokens[account_id].append(token)
        self.service_accounts[account_id]['tokens'] = len(self.sa_tokens[account_id])
        return token

    @staticmethod
    def _expires(token):
        if not token['expiration']:
            return None
        return calendar.timegm(time.strptime(token['expiration'], '%Y-%m-%dT%H:%M:%SZ'))

    def _expired(self, token):
        expires = self._expires(token)
        return token['hasExpired'] or (expires is not None and expires <= time.time())

    def _token_dto(self, token):
        """Grafana's TokenDTO: secondsUntilExpiration is set only within 7 days of the expiry (api/token.go)."""
        dto = dict((k, v) for k, v in token.items() if k != '_key')
        expires = self._expires(token)
        dto['hasExpired'] = self._expired(token)
        if expires is not None and not dto['hasExpired'] and expires - time.time() < 7 * 86400:
            dto['secondsUntilExpiration'] = expires - time.time()
        return dto

    def service_account(self, url, method, rest, query, body):
        if rest == ['search'] and method == 'GET':
            found = [copy.deepcopy(a) for a in self.service_accounts.values()
                     if query.get('query', '').lower() in a['name'].lower()]
            return 200, {'totalCount': len(found), 'serviceAccounts': found, 'page': 1, 'perPage': int(query.get('perpage', 1000))}
        if not rest and method == 'POST':
            if not body.get('name'):
                self._error(url, 400, 'Bad request data')
            if any(a['name'] == body['name'] for a in self.service_accounts.values()):
                self._error(url, 400, 'service account already exists', messageId='serviceaccounts.ErrAlreadyExists', statusCode=400)
            if body.get('role') not in (None, 'Viewer', 'Editor', 'Admin', 'None'):
                self._error(url, 400, 'invalid role specified', messageId='serviceaccounts.ErrInvalidRoleSpecified', statusCode=400)
            account = self.add_service_account(body['name'], body.get('role') or 'Viewer', bool(body.get('isDisabled')))
            return 201, copy.deepcopy(account)
        account = self.service_accounts.get(int(rest[0]))
        if account is None:
            self._error(url, 404, 'service account not found', messageId='serviceaccounts.ErrNotFound', statusCode=404)
        if len(rest) == 1 and method == 'PATCH':
            for key in ('name', 'role', 'isDisabled'):
                if key in body:
                    account[key] = body[key]
            return 200, {'id': account['id'], 'name': account['name'], 'serviceaccount': copy.deepcopy(account),
                         'message': 'Service account updated'}
        if len(rest) == 1 and method == 'DELETE':
            del self.service_accounts[account['id']]
            del self.sa_tokens[account['id']]
            return 200, {'message': 'Service account deleted'}
        tokens = self.sa_tokens[account['id']]
        if rest[1:] == ['tokens'] and method == 'GET':
            return 200, [self._token_dto(t) for t in tokens]
        if rest[1:] == ['tokens'] and method == 'POST':
            if any(t['name'] == body.get('name') for t in tokens):
                self._error(url, 400, 'service account token with given name already exists in the organization',
                            messageId='serviceaccounts.ErrTokenAlreadyExists', statusCode=400)
            token = self.add_sa_token(account['id'], body['name'], expiration=body.get('secondsToLive') or None)
            return 200, {'id': token['id'], 'name': token['name'], 'key': token['_key']}
        if len(rest) == 3 and rest[1] == 'tokens' and method == 'DELETE':
            for token in tokens:
                if token['id'] == int(rest[2]):
                    tokens.remove(token)
                    return 200, {'message': 'Service account token deleted'}
            self._error(url, 404, 'service account token not found')
        self._error(url, 405, 'Method not allowed')
