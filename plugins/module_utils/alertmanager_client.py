# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module util is private to the llmops.vllm collection. It is not a
# public API: its functions may change between releases without notice.
# Use it only from plugins of this collection.

"""A client for the silences of Alertmanager's API v2, on the collection's
HTTP utility (module_utils/http_util.py).

``POST /api/v2/silences`` creates (or, with an ``id``, updates) a silence
and answers ``{"silenceID": ...}``; ``GET /api/v2/silences`` lists them all
(expired ones included, each with ``status.state`` active, pending or
expired); ``DELETE /api/v2/silence/{id}`` expires one. Alertmanager 0.25
answers a DELETE of an unknown id with 500 "silence not found" (404 in the
spec): both mean the silence is gone.

The helpers below compare silences by their matchers, parse and format the
RFC 3339 times Alertmanager uses, and parse durations such as ``1h30m``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import re

from ansible_collections.llmops.vllm.plugins.module_utils.http_util import (
    HTTP_ARGUMENT_SPEC,
    HTTPRequestError,
    HTTPStatusError,
    check_base_url,
    join_url,
    path_quote,
    request as http_request,
    tls_options,
)

ACTIVE_STATES = ('active', 'pending')

ALERTMANAGER_ARGUMENT_SPEC = dict(
    urls=dict(type='list', elements='str', required=True, aliases=['url']),
    url_username=dict(type='str'),
    url_password=dict(type='str', no_log=True),
)
ALERTMANAGER_ARGUMENT_SPEC.update(HTTP_ARGUMENT_SPEC)

_DURATION = re.compile(r'(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)')
_UNITS = {'ms': 0.001, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800, 'y': 31536000}
_TIME = re.compile(r'^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:?\d{2})$')


class AlertmanagerError(Exception):
    """A request to Alertmanager failed: ``url``, ``status`` (None without an answer) and the server's ``message``."""

    def __init__(self, message, url=None, status=None, server_message=None):
        super(AlertmanagerError, self).__init__(message)
        self.message = message
        self.url = url
        self.status = status
        self.server_message = server_message

    def to_dict(self):
        return {'url': self.url, 'status': self.status, 'server_message': self.server_message}


def parse_duration(text):
    """Seconds in a duration such as ``2h``, ``1h30m``, ``90s``, ``1d`` or a bare number of seconds."""
    value = str(text).strip()
    if re.match(r'^\d+(\.\d+)?$', value):
        return float(value)
    if not value or _DURATION.sub('', value):
        raise ValueError('%r is not a duration: use a number of seconds or units ms, s, m, h, d, w, y, such as 2h or 1h30m' % text)
    return float(sum(float(number) * _UNITS[unit] for number, unit in _DURATION.findall(value)))


def parse_time(text):
    """An aware UTC datetime from an RFC 3339 time (any precision, Z or an offset)."""
    match = _TIME.match(str(text).strip())
    if not match:
        raise ValueError('%r is not an RFC 3339 time such as 2025-01-31T18:00:00Z' % text)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or '0')[:6].ljust(6, '0'))
    when = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro)
    if zone in ('Z', 'z'):
        offset = 0
    else:
        sign = -1 if zone[0] == '-' else 1
        digits = zone[1:].replace(':', '')
        offset = sign * (int(digits[:2]) * 60 + int(digits[2:]))
    return (when - datetime.timedelta(minutes=offset)).replace(tzinfo=datetime.timezone.utc)


def format_time(when):
    """RFC 3339 in UTC with milliseconds, as Alertmanager's UI sends it."""
    when = when.astimezone(datetime.timezone.utc)
    return when.strftime('%Y-%m-%dT%H:%M:%S.') + '%03dZ' % (when.microsecond // 1000)


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def normalise_matchers(matchers):
    """Matchers in the API's shape, ``isEqual`` defaulted to true, sorted."""
    result = []
    for matcher in matchers or []:
        result.append({
            'name': str(matcher['name']),
            'value': str(matcher['value']),
            'isRegex': bool(matcher.get('isRegex', False)),
            'isEqual': bool(matcher.get('isEqual', True) if matcher.get('isEqual') is not None else True),
        })
    return sorted(result, key=lambda m: (m['name'], m['value'], m['isRegex'], m['isEqual']))


def same_matchers(silence, matchers):
    """Whether ``silence`` has exactly ``matchers`` (in any order)."""
    return normalise_matchers(silence.get('matchers')) == normalise_matchers(matchers)


def state_of(silence):
    return (silence.get('status') or {}).get('state')


def find_silences(silences, matchers, comment=None, tag=None, states=ACTIVE_STATES):
    """The silences in ``states`` with exactly ``matchers`` whose comment equals ``comment`` or contains ``tag``."""
    found = []
    for silence in silences or []:
        if states and state_of(silence) not in states:
            continue
        if not same_matchers(silence, matchers):
            continue
        text = silence.get('comment') or ''
        if tag is not None:
            if tag not in text:
                continue
        elif comment is not None and text != comment:
            continue
        found.append(silence)
    return found


class AlertmanagerClient:
    """Client for one Alertmanager, configured from the options of a module (one of its ``urls``)."""

    def __init__(self, base_url, params):
        self.base_url = check_base_url(base_url, 'each of urls')
        self.params = params
        self.calls = []

    def _request(self, method, path, body=None, query=None):
        url = join_url(self.base_url, path, query)
        data = json.dumps(body, sort_keys=True) if body is not None else None
        headers = {'Accept': 'application/json'}
        if data is not None:
            headers['Content-Type'] = 'application/json'
        auth = {}
        if self.params.get('url_username'):
            auth = dict(url_username=self.params['url_username'], url_password=self.params.get('url_password'),
                        force_basic_auth=True)
        self.calls.append((method, path))
        try:
            return http_request(url, method=method, data=data, headers=headers, timeout=self.params.get('timeout') or 30,
                                **dict(tls_options(self.params), **auth))
        except HTTPStatusError as exc:
            raise AlertmanagerError('%s %s returned HTTP %d, Alertmanager answered: %s'
                                    % (method, url, exc.status, exc.server_message or exc.http_reason or ''),
                                    url=url, status=exc.status, server_message=exc.server_message)
        except HTTPRequestError as exc:
            raise AlertmanagerError('Alertmanager is not reachable: %s' % exc.message, url=url)

    def _json(self, response):
        try:
            return response.json()
        except HTTPRequestError as exc:
            raise AlertmanagerError(exc.message, url=response.url, status=response.status)

    def silences(self):
        """Every silence Alertmanager holds (expired ones included)."""
        data = self._json(self._request('GET', 'api/v2/silences'))
        if not isinstance(data, list):
            raise AlertmanagerError('GET %s did not return a list of silences' % join_url(self.base_url, 'api/v2/silences'),
                                    url=join_url(self.base_url, 'api/v2/silences'), status=200)
        return data

    def post_silence(self, silence):
        """Create (or update, with ``id``) a silence; its id."""
        data = self._json(self._request('POST', 'api/v2/silences', body=silence))
        if not isinstance(data, dict) or not data.get('silenceID'):
            raise AlertmanagerError('POST %s answered without a silenceID: %s' % (join_url(self.base_url, 'api/v2/silences'), data),
                                    url=join_url(self.base_url, 'api/v2/silences'), status=200)
        return data['silenceID']

    def expire_silence(self, silence_id):
        """Expire a silence. True when expired now, False when Alertmanager does not know it (404, or 0.25's 500)."""
        if not silence_id:
            raise ValueError('a silence id is required')
        try:
            self._request('DELETE', 'api/v2/silence/%s' % path_quote(silence_id))
        except AlertmanagerError as exc:
            if exc.status == 404 or (exc.status == 500 and 'not found' in (exc.server_message or '')):
                return False
            raise
        return True


class SilenceTask:
    """The read-compare-write state machine of the alertmanager_silence module.

    Alertmanager peers gossip silences, so one copy is enough: the state is
    read from the first URL that answers, a new silence is created there, and
    a silence to remove is expired on every URL where it is still active.
    """

    def __init__(self, module, client_class=AlertmanagerClient):
        self.module = module
        self.params = module.params
        self.clients = [client_class(url, self.params) for url in self.params['urls']]
        self.matchers = normalise_matchers([
            {'name': m['name'], 'value': m['value'], 'isRegex': m['is_regex'], 'isEqual': m['is_equal']}
            for m in self.params['matchers'] or []])
        self.tag = self.params['tag']
        comment = self.params['comment']
        if comment is not None and self.tag and self.tag not in comment:
            comment = '%s [%s]' % (comment, self.tag) if comment else '[%s]' % self.tag
        self.comment = comment

    def warn(self, text):
        self.module.warn(text)

    def read(self, client):
        return client.silences()

    def matching(self, silences):
        if self.params['silence_id']:
            return [s for s in silences if s.get('id') == self.params['silence_id'] and state_of(s) in ACTIVE_STATES]
        return find_silences(silences, self.matchers, comment=self.comment, tag=self.tag)

    def first_answer(self):
        """(client, its silences) of the first URL that answers; fails when none does."""
        errors = []
        for client in self.clients:
            try:
                return client, self.read(client)
            except AlertmanagerError as exc:
                if exc.status is not None:
                    raise
                errors.append(exc)
        raise AlertmanagerError('No Alertmanager answered: %s' % '; '.join(e.message for e in errors),
                                url=errors[-1].url if errors else None)

    def desired(self, now):
        starts = parse_time(self.params['starts_at']) if self.params['starts_at'] else now
        if self.params['ends_at']:
            ends = parse_time(self.params['ends_at'])
        else:
            ends = starts + datetime.timedelta(seconds=parse_duration(self.params['duration']))
        if ends <= max(starts, now):
            raise ValueError('The silence would end (%s) before it starts or before now (%s): check ends_at or duration'
                             % (format_time(ends), format_time(max(starts, now))))
        return {
            'matchers': self.matchers,
            'startsAt': format_time(starts),
            'endsAt': format_time(ends),
            'createdBy': self.params['created_by'],
            'comment': self.comment,
        }

    def present(self, result):
        client, silences = self.first_answer()
        found = self.matching(silences)
        want = self.desired(utcnow())
        result['url'] = client.base_url
        if found:
            current = sorted(found, key=lambda s: s.get('endsAt') or '')[-1]
            result['silence_id'] = current.get('id')
            result['silence_ids'] = [s.get('id') for s in found]
            result['silence'] = current
            if self.params['ends_at'] and parse_time(current['endsAt']) != parse_time(want['endsAt']):
                update = dict(want, id=current['id'], startsAt=current.get('startsAt') or want['startsAt'])
                result['changed'] = True
                result['diff'] = {'before': {'endsAt': current.get('endsAt')}, 'after': {'endsAt': want['endsAt']}}
                if not self.module.check_mode:
                    result['silence_id'] = client.post_silence(update)
                    result['silence_ids'] = [result['silence_id']]
                result['silence'] = dict(current, **update)
                result['silence']['id'] = result['silence_id']
            return result
        result['changed'] = True
        result['diff'] = {'before': {}, 'after': want}
        silence_id = None if self.module.check_mode else client.post_silence(want)
        result['silence_id'] = silence_id
        result['silence_ids'] = [silence_id] if silence_id else []
        result['silence'] = dict(want, id=silence_id, status={'state': 'active'})
        return result

    def absent(self, result):
        expired = []
        answered = 0
        errors = []
        for client in self.clients:
            try:
                silences = self.read(client)
            except AlertmanagerError as exc:
                if exc.status is not None:
                    raise
                errors.append(exc)
                continue
            answered += 1
            for silence in self.matching(silences):
                result['changed'] = True
                if silence.get('id') not in expired:
                    expired.append(silence.get('id'))
                if not self.module.check_mode:
                    client.expire_silence(silence.get('id'))
        if not answered:
            raise AlertmanagerError('No Alertmanager answered: %s' % '; '.join(e.message for e in errors),
                                    url=errors[-1].url if errors else None)
        for exc in errors:
            self.warn('%s; the silences expired elsewhere reach it by gossip when it is back' % exc.message)
        result['silence_ids'] = expired
        result['silence_id'] = expired[0] if expired else None
        result['diff'] = {'before': {'silence_ids': expired}, 'after': {'silence_ids': []}}
        return result

    def execute(self):
        result = {'changed': False, 'silence_id': None, 'silence_ids': [], 'silence': {}}
        try:
            if self.params['state'] == 'present':
                self.present(result)
            else:
                self.absent(result)
        except AlertmanagerError as exc:
            self.module.fail_json(msg=exc.message, **exc.to_dict())
        except ValueError as exc:
            self.module.fail_json(msg=str(exc))
        if not self.module._diff:
            result.pop('diff', None)
        self.module.exit_json(**result)
