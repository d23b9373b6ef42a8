#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: grafana_service_account
short_description: Create, update or delete a Grafana service account and make sure it has a token
version_added: 0.1.0
author: llmops.vllm maintainers (!UNKNOWN)
description:
  - Manages one service account through Grafana's HTTP API (C(/api/serviceaccounts)), identified by its O(name)
    in the organisation, and optionally one of its tokens, identified by O(token_name).
  - Reads the account and writes only when its role or disabled flag differ from the task.
  - A token's secret is shown by Grafana only when the token is created, so the module returns it only on that run
    (RV(token.key)); on later runs the token is found by name and returned without its key. A token that has expired
    is deleted and created again.
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
      - Organisation role of the service account.
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
      - Name of a token of the service account to create when it does not exist (or has expired).
      - Not managed when not set.
    type: str
  token_seconds_to_live:
    description:
      - Lifetime of a new token in seconds. V(0) makes a token that never expires (when Grafana's
        C(api_key_max_seconds_to_live) allows it).
      - An existing token keeps its lifetime.
    type: int
    default: 0
  state:
    description:
      - V(present) creates or updates the service account (and its token), V(absent) deletes it with its tokens.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - A token key is never part of the diff.
notes:
  - Managing service accounts needs an organisation admin (a user, or a service account with the Admin role).
  - Set C(no_log=true) on the task that creates a token, or the key may end up in the output and the logs; register
    the result and store RV(token.key) somewhere safe (a vault) on the run that creates it.
seealso:
  - module: llmops.vllm.grafana_dashboard
  - name: Grafana service account HTTP API
    description: The endpoints this module uses.
    link: https://grafana.com/docs/grafana/latest/developers/http_api/serviceaccount/
"""

EXAMPLES = r"""
- name: Service account for the dashboards, with a token
  llmops.vllm.grafana_service_account:
    url: http://grafana:3000
    url_username: admin
    url_password: "{{ grafana_admin_password }}"
    name: ansible-dashboards
    role: Editor
    token_name: ansible
  register: grafana_sa
  no_log: true

- name: Keep the token (only given on the run that created it)
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
    - The token named O(token_name). C(key) is the secret, returned only on the run that created the token
      (V(null) otherwise, and in check mode).
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
      description: The token (C(glsa_...)), to send as C(Authorization) C(Bearer <key>).
      type: str
    created:
      description: Whether the token was created on this run (or would be, in check mode).
      type: bool
    expiration:
      description: When the token expires; V(null) when it never does.
      type: str
"""

from ansible_collections.llmops.vllm.plugins.module_utils.grafana_client import (
    GrafanaResource,
)


class GrafanaServiceAccount(GrafanaResource):
    kind = 'service_account'
    argument_spec = dict(
        name=dict(type='str', required=True),
        role=dict(type='str', choices=['Viewer', 'Editor', 'Admin', 'None'], default='Viewer'),
        is_disabled=dict(type='bool', default=False),
        token_name=dict(type='str', no_log=False),
        token_seconds_to_live=dict(type='int', default=0, no_log=False),
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

    def ensure_token(self, account, result):
        name = self.params['token_name']
        token = {'id': None, 'name': name, 'key': None, 'created': False, 'expiration': None}
        existing = None
        if account.get('id') is not None:
            tokens = self.client.get('api/serviceaccounts/%d/tokens' % int(account['id'])) or []
            existing = next((item for item in tokens if isinstance(item, dict) and item.get('name') == name), None)
        if existing is not None and not existing.get('hasExpired'):
            token.update(id=existing.get('id'), expiration=existing.get('expiration'))
            return token
        result['changed'] = True
        token['created'] = True
        if self.module.check_mode:
            return token
        if existing is not None:
            self.client.delete('api/serviceaccounts/%d/tokens/%d' % (int(account['id']), int(existing['id'])), allow_404=True)
        body = {'name': name}
        if self.params['token_seconds_to_live']:
            body['secondsToLive'] = self.params['token_seconds_to_live']
        answer = self.client.post('api/serviceaccounts/%d/tokens' % int(account['id']), body) or {}
        token.update(id=answer.get('id'), key=answer.get('key'))
        if self.params['token_seconds_to_live']:
            for item in self.client.get('api/serviceaccounts/%d/tokens' % int(account['id'])) or []:
                if isinstance(item, dict) and item.get('id') == token['id']:
                    token['expiration'] = item.get('expiration')
        return token

    def _execute(self):
        result = super(GrafanaServiceAccount, self)._execute()
        if self.params['state'] == 'present' and self.params['token_name']:
            result['token'] = self.ensure_token(result[self.kind], result)
            if 'diff' in result:
                result['diff']['before'] = dict(result['diff']['before'])
                result['diff']['after'] = dict(result['diff']['after'])
                if result['token']['created']:
                    result['diff']['after']['token'] = self.params['token_name']
                elif result['diff']['after']:
                    result['diff']['before']['token'] = result['diff']['after']['token'] = self.params['token_name']
        return result


def main():
    GrafanaServiceAccount.main()


if __name__ == '__main__':
    main()
