#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: grafana_folder
short_description: Create, rename, move or delete a Grafana folder, keyed by uid
version_added: 0.1.0
author: llmops.vllm maintainers (!UNKNOWN)
description:
  - Manages one dashboard folder through Grafana's HTTP API (C(/api/folders)), identified by its O(uid).
  - Reads the folder first and writes only when its title or parent differ from the task.
extends_documentation_fragment:
  - llmops.vllm.grafana
  - llmops.vllm.http_options
  - llmops.vllm.attributes
options:
  uid:
    description:
      - Uid of the folder (letters, digits, C(-) and C(_), at most 40 characters).
    type: str
    required: true
  title:
    description:
      - Title of the folder. Required when O(state=present).
    type: str
  parent_uid:
    description:
      - Uid of the parent folder (nested folders, Grafana 10.2 and later with nested folders on).
      - When not set, the parent is not managed (a new folder is created at the root).
      - Set to an empty string to keep the folder at the root.
    type: str
  state:
    description:
      - V(present) creates or updates the folder, V(absent) deletes it.
      - Deleting a folder also deletes the dashboards in it (Grafana does).
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
seealso:
  - module: llmops.vllm.grafana_dashboard
  - name: Grafana folder HTTP API
    description: The endpoints this module uses.
    link: https://grafana.com/docs/grafana/latest/developers/http_api/folder/
"""

EXAMPLES = r"""
- name: Folder for the vLLM dashboards
  llmops.vllm.grafana_folder:
    url: http://127.0.0.1:3000
    token: "{{ grafana_token }}"
    uid: vllm
    title: vLLM

- name: Nested folder, connection settings from module_defaults
  module_defaults:
    group/llmops.vllm.grafana:
      url: https://grafana.example.com
      token: "{{ grafana_token }}"
  llmops.vllm.grafana_folder:
    uid: vllm-gpu
    title: GPUs
    parent_uid: vllm

- name: Remove the folder (and its dashboards)
  llmops.vllm.grafana_folder:
    url: http://127.0.0.1:3000
    url_username: admin
    url_password: "{{ grafana_admin_password }}"
    uid: old-folder
    state: absent
"""

RETURN = r"""
folder:
  description:
    - The folder as Grafana returns it after the change (C(GET /api/folders/<uid>)); in check mode, the folder as
      it would be. Empty when O(state=absent).
  returned: always
  type: dict
  sample:
    id: 3
    uid: vllm
    title: vLLM
    url: /dashboards/f/vllm/vllm
    version: 1
"""

from ansible_collections.llmops.vllm.plugins.module_utils.grafana_client import (
    GrafanaResource,
    path_quote,
)


class GrafanaFolder(GrafanaResource):
    kind = 'folder'
    argument_spec = dict(
        uid=dict(type='str', required=True),
        title=dict(type='str'),
        parent_uid=dict(type='str'),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
    )
    required_if = [('state', 'present', ['title'])]

    def path(self):
        return 'api/folders/%s' % path_quote(self.params['uid'])

    def read(self):
        return self.client.get(self.path(), allow_404=True)

    def comparable(self, current):
        have = {'uid': current.get('uid'), 'title': current.get('title')}
        if self.params['parent_uid'] is not None:
            have['parentUid'] = current.get('parentUid') or ''
        return have

    def desired(self, current, have):
        want = {'uid': self.params['uid'], 'title': self.params['title']}
        if self.params['parent_uid'] is not None:
            want['parentUid'] = self.params['parent_uid']
        return want

    def create(self, want):
        body = {'uid': want['uid'], 'title': want['title']}
        if want.get('parentUid'):
            body['parentUid'] = want['parentUid']
        self.client.post('api/folders', body)
        return self.read()

    def update(self, current, have, want):
        if have['title'] != want['title']:
            self.client.put(self.path(), {'title': want['title'], 'version': current.get('version'), 'overwrite': False})
        if have.get('parentUid', '') != want.get('parentUid', ''):
            self.client.post(self.path() + '/move', {'parentUid': want['parentUid']})
        return self.read()

    def delete(self, current):
        self.client.delete(self.path())


def main():
    GrafanaFolder.main()


if __name__ == '__main__':
    main()
