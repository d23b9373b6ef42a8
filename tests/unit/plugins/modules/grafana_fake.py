# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An in-memory stand-in for ansible.module_utils.urls.open_url in front of Grafana.

Unit tests patch it in where module_utils/grafana_client imports open_url::

    fake = FakeGrafana(token='tok')
    with mock.patch(OPEN_URL, new=fake):
        ...

It keeps folders, data sources and dashboards in dicts and answers with the
status codes and JSON shapes of Grafana's HTTP API (see
/work/shared/research/grafana-http-api.md) for the calls the modules make.
Every request is recorded in ``calls`` as (method, path, parsed body);
``writes`` lists the non-GET ones. It is deliberately small: the
integration tests run the modules against the full test double.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import io
import json
from urllib.error import HTTPError
from urllib.parse import parse_qs, unquote, urlsplit

from ansible.module_utils.common.text.converters import to_bytes

OPEN_URL = 'ansible_collections.llmops.vllm.plugins.module_utils.grafana_client.open_url'


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

    def _authorised(self, headers, kwargs):
        auth = headers.get('Authorization')
        if auth:
            return auth == 'Bearer %s' % self.token
        if kwargs.get('url_username') is not None:
            return kwargs.get('force_basic_auth') and kwargs['url_username'] == self.user and kwargs.get('url_password') == self.password
        return False

    def __call__(self, url, data=None, headers=None, method=None, **kwargs):
        parts = urlsplit(url)
        path = unquote(parts.path)
        query = dict((key, values[0]) for key, values in parse_qs(parts.query).items())
        body = json.loads(data) if data else None
        method = method or 'GET'
        self.calls.append((method, path, body))
        if self.raise_before:
            raise self.raise_before.pop(0)
        if url in self.external:
            return FakeResponse(url, 200, self.external[url])
        headers = headers or {}
        if not self._authorised(headers, kwargs):
            self._error(url, 401, 'Invalid API key', messageId='api-key.invalid', statusCode=401)
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

