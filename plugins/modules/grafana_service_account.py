#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: grafana_service_account
short_description: Create, update or delete a Grafana service account and keep one current token for it
version_added: 0.1.0
author: llmops.vllm maintainers (!UNKNOWN)
description:
  - Manages one service account through Grafana's HTTP API (C(/api/serviceaccounts)), identified by its O(name)
    in the organisation, and optionally one of its tokens, identified by O(token_name).
  - Reads the account and writes only when its role or disabled flag differ from the task.
  - A token's secret is shown by Grafana only when the token is created, so the module returns it only on that run
    (RV(token.key)); on later runs the token is found by name and returned without its key.
  - The token is replaced (a new one is created, then the old one deleted, and the task reports a change) when it is
    missing, has expired or was revoked, expires within O(token_rotate_before) seconds, never expires or outlives
    O(token_seconds_to_live) while that is set, when Grafana rejects O(token_key) (the key the caller holds), or when
    several tokens carry the name. Otherwise nothing is written and C(changed) is V(false).
extends_documentation_fragment:
  - llmops.vllm.grafana
  - llmops.vllm.http_options
  - llmops.vllm.attributes
options:
  name:
    description:
      - Name of the service account, unique in the organisation.
    type: str
    required: true
  role:
    description:
      - Organisation role of the service account. Give it the least role its token needs (see the notes).
    type: str
    choices: [Viewer, Editor, Admin, None]
    default: Viewer
  is_disabled:
    description:
      - Whether the service account is disabled (its tokens are then refused).
    type: bool
    default: false
  token_name:
    description:
      - Name of the token of the service account to keep. Not managed when not set.
      - A new token is named O(token_name), or O(token_name)C(-<UTC time>) while a token of that name still exists
        (a rotation creates the new token before it deletes the old one). Tokens with either form of the name are
        the ones this task manages; it keeps one of them.
    type: str
  token_seconds_to_live:
    description:
      - Lifetime of a new token in seconds. V(0) makes a token that never expires (when Grafana's
        C(api_key_max_seconds_to_live) allows it).
      - When it is set, a token that never expires, or that would live longer than this from now, is replaced.
    type: int
    default: 0
  token_rotate_before:
    description:
      - Replace the token when it expires within this many seconds. V(0) replaces it only once it has expired.
      - Keep it shorter than O(token_seconds_to_live), or every run replaces the token (the module warns).
    type: int
    default: 0
  token_key:
    description:
      - The key of the token that the caller holds (stored from the run that created it).
      - The module asks Grafana whether it still accepts this key for the service account (C(GET /api/user) with
        it) and replaces the token when Grafana rejects it (deleted, expired or revoked) or names another account.
      - An empty string means the caller holds no key (it lost its copy), so the token is replaced.
      - Without it, the module judges the token from Grafana's list only.
    type: str
  state:
    description:
      - V(present) creates or updates the service account (and its token), V(absent) deletes it with its tokens.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
    details:
      - Reads the account, its tokens and whether O(token_key) works, and reports what would be created or replaced.
  diff_mode:
    support: full
    details:
      - The diff shows the token's name and expiry date; a token key is never part of it.
notes:
  - Managing service accounts needs an organisation admin (a user, or a service account with the Admin role).
  - "Roles in Grafana's basic (OSS) role model: creating and updating data sources needs V(Admin); folders,
    dashboards and annotations need V(Editor); reading dashboards and querying data sources needs V(Viewer)."
  - Set C(no_log=true) on the task that creates a token, or the key may end up in the output and the logs; register
    the result and store RV(token.key) somewhere safe (a vault) on the run that creates it.
  - Grafana lists a token's C(expiration); the module compares it with this host's clock (with a minute of slack).
seealso:
  - module: llmops.vllm.grafana_dashboard
  - name: Grafana service account HTTP API
    description: The endpoints this module uses.
    link: https://grafana.com/docs/grafana/latest/developers/http_api/serviceaccount/
  - name: Grafana organization roles
    description: What the Viewer, Editor and Admin roles may do.
    link: https://grafana.com/docs/grafana/latest/administration/roles-and-permissions/
"""

EXAMPLES = r"""
- name: Service account for the dashboards, with a token that lives 30 days and is replaced 7 days before
  llmops.vllm.grafana_service_account:
    url: http://grafana:3000
    url_username: admin
    url_password: "{{ grafana_admin_password }}"
    name: ansible-dashboards
    role: Editor
    token_name: ansible
    token_seconds_to_live: 2592000
    token_rotate_before: 604800
    token_key: "{{ lookup('ansible.builtin.file', '/etc/llmops/grafana-token', errors='ignore') | default(omit, true) }}"
  register: grafana_sa
  no_log: true

- name: Keep the new token (only given on the run that created it)
  ansible.builtin.copy:
    content: "{{ grafana_sa.token.key }}"
    dest: /etc/llmops/grafana-token
    mode: "0600"
  when: grafana_sa.token.key is not none
  no_log: true

- name: Remove the service account and its tokens
  llmops.vllm.grafana_service_account:
    url: http://grafana:3000
    url_username: admin
    url_password: "{{ grafana_admin_password }}"
    name: old-automation
    state: absent
"""

RETURN = r"""
service_account:
  description:
    - The service account as Grafana returns it after the change; in check mode, as it would be (C(id) V(null) when
      it would be created). Empty when O(state=absent).
  returned: always
  type: dict
  sample:
    id: 2
    uid: de7b3k1nq8zcwf
    name: ansible-dashboards
    login: sa-1-ansible-dashboards
    orgId: 1
    role: Editor
    isDisabled: false
    tokens: 1
token:
  description:
    - The token the task keeps (the existing one), or the one it created (or would create, in check mode).
  returned: when O(token_name) is set and O(state=present)
  type: dict
  contains:
    id:
      description: Id of the token (V(null) in check mode for a new one).
      type: int
    name:
      description: Name of the token.
      type: str
    key:
      description:
        - The token (C(glsa_...)), to send as C(Authorization) C(Bearer <key>).
        - Only on the run that created it; V(null) otherwise and in check mode.
      type: str
    created:
      description: Whether the token was created on this run (or would be, in check mode).
      type: bool
    reason:
      description: Why a new token was created (such as V(missing), V(expired) or V(expires within token_rotate_before
        (3600 s left))); V(null) when the existing one was kept.
      type: str
    replaced:
      description: Names of the old tokens deleted after the new one was created (or that would be, in check mode).
      type: list
      elements: str
    expiration:
      description: When the token expires (RFC 3339, as Grafana gives it); V(null) when it never does.
      type: str
    key_accepted:
      description:
        - Whether Grafana accepted O(token_key) for this service account (V(false) for an empty O(token_key));
          V(null) when O(token_key) was not given or there was no token to check it against.
        - In check mode, V(true) tells that the caller's key still works although a new token would be created.
      type: bool
"""

import calendar
import re
import time

from ansible_collections.llmops.vllm.plugins.module_utils.grafana_client import (
    GrafanaAPIError,
    GrafanaClient,
    GrafanaResource,
)

# Go marshals time.Time as RFC 3339: 2026-12-28T22:31:31Z, with fractional
# seconds or an offset depending on the server's clock and time zone
_RFC3339 = re.compile(r'^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.\d+)?([Zz]|[+-]\d\d:?\d\d)$')


def parse_expiration(value):
    """Seconds since the epoch of a token's ``expiration``; None when absent or unreadable."""
    match = _RFC3339.match(value) if isinstance(value, str) else None
    if not match:
        return None
    fields = [int(part) for part in match.groups()[:6]]
    zone = match.group(7)
    offset = 0
    if zone not in ('Z', 'z'):
        sign = -1 if zone[0] == '-' else 1
        digits = zone[1:].replace(':', '')
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return calendar.timegm(tuple(fields) + (0, 0, 0)) - offset


def format_expiration(epoch):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


class GrafanaServiceAccount(GrafanaResource):
    kind = 'service_account'
    argument_spec = dict(
        name=dict(type='str', required=True),
        role=dict(type='str', choices=['Viewer', 'Editor', 'Admin', 'None'], default='Viewer'),
        is_disabled=dict(type='bool', default=False),
        token_name=dict(type='str', no_log=False),
        token_seconds_to_live=dict(type='int', default=0, no_log=False),
        token_rotate_before=dict(type='int', default=0, no_log=False),
        token_key=dict(type='str', no_log=True),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
    )

    def read(self):
        answer = self.client.get('api/serviceaccounts/search', query={'query': self.params['name'], 'perpage': 1000}) or {}
        for account in answer.get('serviceAccounts') or []:
            if account.get('name') == self.params['name']:
                return account
        return None

    def comparable(self, current):
        return {'name': current.get('name'), 'role': current.get('role'), 'isDisabled': bool(current.get('isDisabled'))}

    def desired(self, current, have):
        return {'name': self.params['name'], 'role': self.params['role'], 'isDisabled': self.params['is_disabled']}

    def create(self, want):
        self.client.post('api/serviceaccounts', want)
        return self.read()

    def update(self, current, have, want):
        self.client.patch('api/serviceaccounts/%d' % int(current['id']), {'role': want['role'], 'isDisabled': want['isDisabled']})
        return self.read()

    def delete(self, current):
        self.client.delete('api/serviceaccounts/%d' % int(current['id']))

    def predict(self, current, want):
        obj = dict(current) if current else {'id': None, 'tokens': 0}
        obj.update(want)
        return obj

    # ---- the token: read, compare, write ----------------------------------
    def now(self):
        return time.time()

    def managed(self, tokens):
        """The tokens this task manages: named token_name, or token_name-<UTC time>[-n] (a rotation's new name)."""
        pattern = re.compile(r'^%s(-\d{8}T\d{6}Z(-\d+)?)?$' % re.escape(self.params['token_name']))
        return [item for item in tokens if isinstance(item, dict) and pattern.match(item.get('name') or '')]

    def check_key(self, account):
        """What Grafana says of token_key: 'accepted', 'rejected' (401) or 'foreign' (another account's token)."""
        params = dict(self.params, token=self.params['token_key'], url_username=None, url_password=None, org_id=None)
        try:
            # /api/user answers any identity; newer Grafana returns a service account's login there,
            # some 10.x/11.x versions refuse non-users with 403, which still proves the key works
            me = GrafanaClient(params).get('api/user') or {}
        except GrafanaAPIError as exc:
            if exc.status == 401:
                return 'rejected'
            if exc.status == 403:
                return 'accepted'
            raise
        login = me.get('login') if isinstance(me, dict) else None
        if login and account.get('login') and login != account['login']:
            return 'foreign'
        return 'accepted'

    def why_replace(self, tokens, verdict):
        """Why the task needs a new token (None when the one it has will do)."""
        if not tokens:
            return 'missing'
        if len(tokens) > 1:
            return 'several tokens named %s' % self.params['token_name']
        token = tokens[0]
        if token.get('hasExpired'):
            return 'expired'
        if token.get('isRevoked'):
            return 'revoked'
        if verdict == 'rejected':
            return 'token_key rejected' if self.params['token_key'] else 'token_key is empty (no key held)'
        if verdict == 'foreign':
            return 'token_key belongs to another account'
        ttl = self.params['token_seconds_to_live']
        expires = parse_expiration(token.get('expiration'))
        if token.get('expiration') is None and ttl:
            return 'never expires, token_seconds_to_live is %d' % ttl
        if expires is not None:
            left = expires - self.now()
            if left <= self.params['token_rotate_before']:
                return 'expires within token_rotate_before (%d s left)' % max(int(left), 0)
            # a minute of slack for the clocks of Grafana and of this host
            if ttl and left > ttl + 60:
                return 'outlives token_seconds_to_live'
        return None

    def new_name(self, tokens):
        taken = set(item.get('name') for item in tokens)
        name = self.params['token_name']
        if name not in taken:
            return name
        base = '%s-%s' % (name, time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(self.now())))
        name, n = base, 1
        while name in taken:
            name, n = '%s-%d' % (base, n), n + 1
        return name

    def summary(self, token):
        return {'name': token.get('name'), 'expiration': token.get('expiration')}

    def ensure_token(self, account, result):
        path = 'api/serviceaccounts/%s/tokens' % (int(account['id']) if account.get('id') is not None else None)
        listed = (self.client.get(path) or []) if account.get('id') is not None else []
        tokens = self.managed(listed)
        held = self.params['token_key']
        if held is None or not tokens:
            verdict = None
        else:
            # an empty key: the caller lost its copy, so the token it cannot use must go
            verdict = self.check_key(account) if held else 'rejected'
        key_accepted = None if verdict is None else verdict == 'accepted'
        reason = self.why_replace(tokens, verdict)
        before = self.summary(tokens[0]) if len(tokens) == 1 else ([self.summary(t) for t in tokens] or None)
        if reason is None:
            token = dict(self.summary(tokens[0]), id=tokens[0].get('id'), key=None, created=False, reason=None,
                         replaced=[], key_accepted=key_accepted)
            return token, before, before
        result['changed'] = True
        ttl = self.params['token_seconds_to_live']
        name = self.new_name(listed)
        token = {'id': None, 'name': name, 'key': None, 'created': True, 'reason': reason,
                 'expiration': format_expiration(self.now() + ttl) if ttl else None,
                 'replaced': [item.get('name') for item in tokens], 'key_accepted': key_accepted}
        if not self.module.check_mode:
            # the new token first, then the old ones: a failure in between leaves a working token
            body = {'name': name, 'secondsToLive': ttl} if ttl else {'name': name}
            answer = self.client.post(path, body) or {}
            token.update(id=answer.get('id'), key=answer.get('key'), name=answer.get('name') or name)
            for old in tokens:
                self.client.delete('%s/%d' % (path, int(old['id'])), allow_404=True)
            for item in self.client.get(path) or []:
                if isinstance(item, dict) and item.get('id') == token['id']:
                    token['expiration'] = item.get('expiration')
        return token, before, self.summary(token)

    def _execute(self):
        ttl, window = self.params['token_seconds_to_live'], self.params['token_rotate_before']
        if ttl < 0 or window < 0:
            self.fail('token_seconds_to_live and token_rotate_before must be 0 or more')
        result = super(GrafanaServiceAccount, self)._execute()
        if self.params['state'] == 'present' and self.params['token_name']:
            if ttl and window >= ttl:
                self.module.warn('token_rotate_before (%d) is not shorter than token_seconds_to_live (%d): '
                                 'every run replaces the token' % (window, ttl))
            result['token'], before, after = self.ensure_token(result[self.kind], result)
            if 'diff' in result:
                # names and expiry dates only: a key never goes into the diff
                result['diff']['before'] = dict(result['diff']['before'])
                result['diff']['after'] = dict(result['diff']['after'])
                if before is not None:
                    result['diff']['before']['token'] = before
                result['diff']['after']['token'] = after
        return result


def main():
    GrafanaServiceAccount.main()


if __name__ == '__main__':
    main()
