# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An in-memory stand-in for open_url in front of an Alertmanager 0.25 cluster.

Answers the silence endpoints of API v2 with the shapes of Alertmanager
0.25's api/v2/openapi.yaml (gettableSilence: id, status.state, updatedAt,
matchers, startsAt, endsAt, createdBy, comment; POST answers
{"silenceID": ...}) and the codes observed on the Debian 0.25 binary
(/work/shared/research/rollouts-alerting-scaleout.md, B4): DELETE of an
unknown id is 500 with the JSON string "silence not found"; a missing
comment is 422 {"code":602,...}; an end before the start is 400.

All peers share one store (gossip, settled at once) unless ``gossip=False``.
``down`` lists base URLs that refuse connections.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import io
import json
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.llmops.vllm.tests.unit.plugins.modules.utils import FakeResponse

# A GET /api/v2/silences answer recorded from Alertmanager 0.25 (ids shortened in the tests).
RECORDED_SILENCE = {
    'id': '2f7a5b8e-3c1d-4a4b-9f0e-6d2c1b0a9e8f',
    'status': {'state': 'active'},
    'updatedAt': '2025-01-31T17:00:00.123Z',
    'comment': 'Rolling upgrade of vLLM [rollout-42-batch-1]',
    'createdBy': 'ansible',
    'endsAt': '2099-01-31T17:30:00.000Z',
    'matchers': [{'isEqual': True, 'isRegex': False, 'name': 'instance', 'value': 'gpu-3:8000'}],
    'startsAt': '2025-01-31T17:00:00.123Z',
}


class FakeAlertmanager:
    def __init__(self, urls=('http://am1:9093', 'http://am2:9093'), gossip=True, user=None, password=None):
        self.urls = list(urls)
        self.gossip = gossip
        self.stores = {}
        shared = {}
        for url in self.urls:
            self.stores[url] = shared if gossip else {}
        self.down = set()
        self.calls = []
        self.user = user
        self.password = password
        self.counter = 0

    def add(self, url=None, **fields):
        silence = copy.deepcopy(RECORDED_SILENCE)
        silence.update(fields)
        self.stores[url or self.urls[0]][silence['id']] = silence
        return silence

    @property
    def writes(self):
        return [(base, method, path) for base, method, path, body in self.calls if method != 'GET']

    def _error(self, url, code, body):
        raise HTTPError(url, code, 'error', {}, io.BytesIO(to_bytes(json.dumps(body))))

    def __call__(self, url, data=None, headers=None, method=None, **kwargs):
        parts = urlsplit(url)
        base = '%s://%s' % (parts.scheme, parts.netloc)
        method = method or 'GET'
        body = json.loads(data) if data else None
        self.calls.append((base, method, parts.path, body))
        if base in self.down or base not in self.stores:
            raise URLError(ConnectionRefusedError(111, 'Connection refused'))
        if self.user and (kwargs.get('url_username') != self.user or kwargs.get('url_password') != self.password
                          or not kwargs.get('force_basic_auth')):
            raise HTTPError(url, 401, 'Unauthorized', {}, io.BytesIO(b'Unauthorized\n'))
        store = self.stores[base]
        if parts.path == '/api/v2/silences' and method == 'GET':
            return FakeResponse(url, 200, json.dumps(list(store.values())))
        if parts.path == '/api/v2/silences' and method == 'POST':
            if not body.get('comment'):
                self._error(url, 422, {'code': 602, 'message': 'comment in body is required'})
            if not body.get('matchers'):
                self._error(url, 422, {'code': 612, 'message': 'matchers in body should have at least 1 items'})
            if body['endsAt'] <= body['startsAt']:
                self._error(url, 400, 'start time must be before end time')
            if body.get('id'):
                if body['id'] not in store:
                    self._error(url, 404, 'silence not found')
                silence_id = body['id']
            else:
                self.counter += 1
                silence_id = '00000000-0000-4000-8000-%012d' % self.counter
            silence = dict(body, id=silence_id, status={'state': 'active'}, updatedAt=body['startsAt'])
            store[silence_id] = silence
            return FakeResponse(url, 200, json.dumps({'silenceID': silence_id}))
        if parts.path.startswith('/api/v2/silence/') and method == 'DELETE':
            silence_id = parts.path.rsplit('/', 1)[1]
            if silence_id not in store:
                self._error(url, 500, 'silence not found')
            store[silence_id]['status'] = {'state': 'expired'}
            return FakeResponse(url, 200, '')
        self._error(url, 404, 'not found')
