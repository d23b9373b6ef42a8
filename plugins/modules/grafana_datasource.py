#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: grafana_datasource
short_description: Create, update or delete a Grafana data source, keyed by uid
version_added: 0.1.0
author: llmops.vllm maintainers (!UNKNOWN)
description:
  - Manages one data source through Grafana's HTTP API (C(/api/datasources/uid/<uid>)), identified by its O(uid).
  - Reads the data source, compares the options the task sets with what Grafana has (fields Grafana owns,
    such as C(id), C(version), C(orgId), C(typeLogoUrl) and C(readOnly), are not compared) and writes only when
    they differ. Options left unset are not managed and keep their value in Grafana.
  - Secrets (O(secure_json_data), O(basic_auth_password)) cannot be compared, because Grafana never returns them
    (it only reports which keys are set, as C(secureJsonFields)). See O(update_secure_json_data).
extends_documentation_fragment:
  - llmops.vllm.grafana
  - llmops.vllm.http_options
  - llmops.vllm.attributes
options:
  uid:
    description:
      - Uid of the data source (letters, digits, C(-) and C(_), at most 40 characters). Dashboards refer to data
        sources by uid.
    type: str
    required: true
  name:
    description:
      - Name of the data source, unique in the organisation. Required when O(state=present).
    type: str
  type:
    description:
      - Plugin id of the data source, such as V(prometheus), V(loki) or V(elasticsearch). Required when O(state=present).
    type: str
  datasource_url:
    description:
      - URL Grafana uses to reach the data source, such as V(http://prometheus:9090).
      - Named so to keep it apart from O(url), the URL of Grafana itself.
    type: str
  access:
    description:
      - V(proxy) (called Server in the UI) makes Grafana's backend query the data source;
        V(direct) (Browser) is deprecated in Grafana.
    type: str
    choices: [proxy, direct]
    default: proxy
  is_default:
    description:
      - Whether this is the default data source of the organisation. Setting it clears the flag on the others.
      - Not managed when not set. Grafana makes the first data source of an organisation the default by itself.
    type: bool
  database:
    description:
      - Database name, for the data sources that use one.
    type: str
  user:
    description:
      - User name Grafana logs in to the data source with, for the data sources that use one.
    type: str
  basic_auth:
    description:
      - Whether Grafana uses HTTP basic authentication towards the data source.
    type: bool
  basic_auth_user:
    description:
      - User of the basic authentication towards the data source.
    type: str
  basic_auth_password:
    description:
      - Password of the basic authentication towards the data source. Stored by Grafana as the secret
        C(basicAuthPassword) in C(secureJsonData), and subject to O(update_secure_json_data) like the other secrets.
    type: str
  with_credentials:
    description:
      - Whether the browser sends cookies and credentials with cross-site requests (V(direct) access only).
    type: bool
  json_data:
    description:
      - "Settings of the data source plugin (C(jsonData)), such as C({httpMethod: POST, timeInterval: 15s}) for
        Prometheus."
      - Compared as a whole and replaced as a whole when it differs (Grafana does the same on update).
      - Not managed when not set.
    type: dict
  secure_json_data:
    description:
      - Secret settings of the plugin (C(secureJsonData)), such as the value of a custom HTTP header (C(httpHeaderValue1)).
      - Write-only in Grafana. Keys not given here keep their stored value.
    type: dict
  update_secure_json_data:
    description:
      - When to send O(secure_json_data) and O(basic_auth_password) to Grafana.
      - V(on_create) sends them when the data source is created, and afterwards only the keys Grafana does not
        have yet (not listed in its C(secureJsonFields)). A changed secret value is not detected.
      - V(always) sends them on every run. Since Grafana never returns secrets, the task then reports changed
        on every run when secrets are given.
    type: str
    choices: [on_create, always]
    default: on_create
  state:
    description:
      - V(present) creates or updates the data source, V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - Secret values are shown as C(********).
notes:
  - A data source provisioned from a file with C(editable=false) is read-only in Grafana (C(readOnly=true)). When it
    already matches the task the module reports ok; when it would have to change it or delete it, the module
    fails and says so, since Grafana refuses the change (403). Change the provisioning file instead.
  - Renaming (same O(uid), new O(name)) is an update. Creating a data source whose O(name) is used by another uid
    fails with Grafana's 409 answer.
seealso:
  - module: llmops.vllm.grafana_dashboard
  - name: Grafana data source HTTP API
    description: The endpoints this module uses.
    link: https://grafana.com/docs/grafana/latest/developers/http_api/data_source/
"""

EXAMPLES = r"""
- name: Prometheus data source, as the default one
  llmops.vllm.grafana_datasource:
    url: http://127.0.0.1:3000
    token: "{{ grafana_token }}"
    uid: prometheus
    name: Prometheus
    type: prometheus
    datasource_url: http://127.0.0.1:9090
    is_default: true
    json_data:
      httpMethod: POST
      timeInterval: 15s

- name: Prometheus behind basic auth; the password is sent when the data source is created
  llmops.vllm.grafana_datasource:
    url: https://grafana.example.com
    token: "{{ grafana_token }}"
    uid: prometheus-remote
    name: Prometheus (GPU site)
    type: prometheus
    datasource_url: https://prometheus.gpu.example.com
    basic_auth: true
    basic_auth_user: grafana
    basic_auth_password: "{{ prometheus_grafana_password }}"

- name: Rotate a secret header value (reports changed on every run)
  llmops.vllm.grafana_datasource:
    url: https://grafana.example.com
    token: "{{ grafana_token }}"
    uid: mimir
    name: Mimir
    type: prometheus
    datasource_url: https://mimir.example.com/prometheus
    json_data:
      httpHeaderName1: X-Scope-OrgID
    secure_json_data:
      httpHeaderValue1: "{{ mimir_tenant }}"
    update_secure_json_data: always

- name: Remove a data source
  llmops.vllm.grafana_datasource:
    url: http://127.0.0.1:3000
    token: "{{ grafana_token }}"
    uid: old-prometheus
    state: absent
"""

RETURN = r"""
datasource:
  description:
    - The data source as Grafana returns it after the change (C(GET /api/datasources/uid/<uid>)); in check mode,
      the data source as it would be. Empty when O(state=absent). Secrets are never part of it.
  returned: always
  type: dict
  sample:
    id: 1
    uid: prometheus
    orgId: 1
    name: Prometheus
    type: prometheus
    access: proxy
    url: http://127.0.0.1:9090
    isDefault: true
    basicAuth: false
    jsonData: {httpMethod: POST, timeInterval: 15s}
    secureJsonFields: {}
    readOnly: false
    version: 1
"""

from ansible_collections.llmops.vllm.plugins.module_utils.grafana_client import (
    MASK,
    GrafanaResource,
    path_quote,
)

# module option -> field of Grafana's data source object
FIELDS = (
    ('uid', 'uid'),
    ('name', 'name'),
    ('type', 'type'),
    ('datasource_url', 'url'),
    ('access', 'access'),
    ('is_default', 'isDefault'),
    ('database', 'database'),
    ('user', 'user'),
    ('basic_auth', 'basicAuth'),
    ('basic_auth_user', 'basicAuthUser'),
    ('with_credentials', 'withCredentials'),
    ('json_data', 'jsonData'),
)

# what Grafana stores when a field is not sent
EMPTY = {'url': '', 'database': '', 'user': '', 'basicAuth': False, 'basicAuthUser': '',
         'withCredentials': False, 'isDefault': False, 'jsonData': {}}


class GrafanaDatasource(GrafanaResource):
    kind = 'datasource'
    argument_spec = dict(
        uid=dict(type='str', required=True),
        name=dict(type='str'),
        type=dict(type='str'),
        datasource_url=dict(type='str'),
        access=dict(type='str', choices=['proxy', 'direct'], default='proxy'),
        is_default=dict(type='bool'),
        database=dict(type='str'),
        user=dict(type='str'),
        basic_auth=dict(type='bool'),
        basic_auth_user=dict(type='str'),
        basic_auth_password=dict(type='str', no_log=True),
        with_credentials=dict(type='bool'),
        json_data=dict(type='dict'),
        secure_json_data=dict(type='dict', no_log=True),
        update_secure_json_data=dict(type='str', choices=['on_create', 'always'], default='on_create'),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
    )
    required_if = [('state', 'present', ['name', 'type'])]

    def path(self):
        return 'api/datasources/uid/%s' % path_quote(self.params['uid'])

    def read(self):
        return self.client.get(self.path(), allow_404=True)

    def secrets(self):
        """The secret values of the task, as secureJsonData."""
        secrets = dict(self.params['secure_json_data'] or {})
        if self.params['basic_auth_password'] is not None:
            secrets['basicAuthPassword'] = self.params['basic_auth_password']
        return secrets

    def comparable(self, current):
        have = {}
        for dummy, field in FIELDS:
            value = current.get(field)
            have[field] = EMPTY.get(field) if value is None else value
        have['secureJsonFields'] = sorted(key for key, is_set in (current.get('secureJsonFields') or {}).items() if is_set)
        return have

    def secrets_to_send(self, have):
        secrets = self.secrets()
        if have is None or self.params['update_secure_json_data'] == 'always':
            return secrets
        return dict((key, value) for key, value in secrets.items() if key not in have['secureJsonFields'])

    def desired(self, current, have):
        want = dict(have) if have is not None else {}
        for option, field in FIELDS:
            value = self.params[option]
            if value is not None:
                want[field] = value
        to_send = self.secrets_to_send(have)
        want['secureJsonFields'] = sorted(set(want.get('secureJsonFields', [])) | set(to_send))
        if to_send:
            want['secureJsonData'] = dict((key, MASK) for key in to_send)
        return want

    def differs(self, have, want):
        want = dict((key, value) for key, value in want.items() if key != 'secureJsonData')
        return have != want

    def force_change(self, current, have):
        return bool(self.secrets_to_send(have))

    def check_writable(self, current, state):
        if current.get('readOnly'):
            action = 'delete' if state == 'absent' else 'change'
            self.fail('Data source %s (uid %s) is provisioned from a file and read-only in Grafana (readOnly=true): '
                      'Grafana refuses to %s it through the API. Change its provisioning file instead, or set '
                      'editable: true there.' % (current.get('name'), current.get('uid'), action),
                      datasource=current)

    def body(self, want, have, version=None):
        body = dict((field, want.get(field, EMPTY.get(field))) for dummy, field in FIELDS if field in want or field in EMPTY)
        if 'isDefault' not in want:
            body.pop('isDefault', None)
        body['access'] = want.get('access') or 'proxy'
        secrets = self.secrets_to_send(have)
        if secrets:
            body['secureJsonData'] = secrets
        if version:
            body['version'] = version
        return body

    def predict(self, current, want):
        obj = dict(current) if current else {}
        obj.update(dict((key, value) for key, value in want.items() if key not in ('secureJsonFields', 'secureJsonData')))
        obj['secureJsonFields'] = dict((key, True) for key in want.get('secureJsonFields', []))
        return obj

    def create(self, want):
        answer = self.client.post('api/datasources', self.body(want, None))
        created = answer.get('datasource') if isinstance(answer, dict) else None
        return created if created and created.get('uid') == want['uid'] else self.read()

    def update(self, current, have, want):
        answer = self.client.put(self.path(), self.body(want, have, current.get('version')))
        updated = answer.get('datasource') if isinstance(answer, dict) else None
        return updated if updated and updated.get('uid') == want['uid'] else self.read()

    def delete(self, current):
        self.client.delete(self.path())


def main():
    GrafanaDatasource.main()


if __name__ == '__main__':
    main()
