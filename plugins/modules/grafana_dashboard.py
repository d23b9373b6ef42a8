#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: grafana_dashboard
short_description: Create, update or delete a Grafana dashboard from a file, a dict or a URL, keyed by uid
version_added: 0.1.0
author: llmops.vllm maintainers (!UNKNOWN)
description:
  - Manages one dashboard through Grafana's HTTP API (C(/api/dashboards/uid/<uid>), C(/api/dashboards/db)),
    identified by its uid.
  - 'The dashboard JSON comes from a file (O(path)), a dict (O(dashboard)), JSON text (O(content)) or a URL
    (O(dashboard_url)). It may be the dashboard model itself, the "Export for sharing externally" form (with
    C(__inputs) and C(__requires)) or the API form C({"dashboard": {...}, "meta": {...}}).'
  - C(${NAME}) placeholders of the C(__inputs) section are replaced from O(inputs), as Grafana's import screen
    does; then C(__inputs), C(__requires) and C(__elements) are dropped.
  - Reads the dashboard, compares it and its folder with the task, ignoring the fields Grafana owns (C(id),
    C(version), C(iteration)) and whitespace around the title, and saves only when they differ. Saving sends
    the version just read, so an unchanged dashboard keeps its version and history.
  - Malformed JSON, a missing title or uid, or an C(__inputs) entry without a value fail before anything is
    written.
extends_documentation_fragment:
  - llmops.vllm.grafana
  - llmops.vllm.http_options
  - llmops.vllm.attributes
  - llmops.vllm.attributes.action
options:
  path:
    description:
      - JSON file of the dashboard.
      - Read on the controller by the action plugin of this module, like the C(src) of M(ansible.builtin.copy);
        a relative path is searched in the C(files) directory of the role and next to the playbook.
      - With O(remote_src=true), read on the host the module runs on instead.
    type: path
  remote_src:
    description:
      - Whether O(path) is on the host the module runs on (V(true)) or on the controller (V(false)).
    type: bool
    default: false
  dashboard:
    description:
      - The dashboard as a dict.
    type: dict
  content:
    description:
      - The dashboard as JSON text.
      - The action plugin passes the text of a controller-side O(path) in this option.
    type: str
  dashboard_url:
    description:
      - http(s) URL of the dashboard JSON, fetched from the host the module runs on, without Grafana's
        credentials. O(validate_certs), O(ca_path) and O(timeout) apply.
    type: str
  uid:
    description:
      - Uid of the dashboard. Overrides the C(uid) of the JSON; required when the JSON has none.
      - With O(state=absent), the dashboard to delete (taken from the JSON when not set).
    type: str
  folder_uid:
    description:
      - Uid of the folder to put the dashboard in. An empty string, or neither O(folder_uid) nor O(folder_title),
        means the root (General).
      - The folder is compared too, so a dashboard moved to another folder is moved back.
    type: str
  folder_title:
    description:
      - Title of the folder to put the dashboard in, looked up through C(/api/search?type=dash-folder).
      - The folder must exist (see M(llmops.vllm.grafana_folder)) and its title must be unique. V(General) means the root.
    type: str
  overwrite:
    description:
      - Passed to Grafana as C(overwrite). When V(true), Grafana saves even when the dashboard was changed by someone
        else between the read and the save (version mismatch), and, before Grafana 11.3, replaces another dashboard
        with the same title in the same folder.
      - Updating an existing dashboard with the same uid does not need it; the module sends the version it read.
    type: bool
    default: false
  commit_message:
    description:
      - Message stored with the new version in the dashboard's version history.
    type: str
  inputs:
    description:
      - "Values of the C(__inputs) placeholders, by input name, such as C({DS_PROMETHEUS: prometheus}) (a data source
        uid) for C(${DS_PROMETHEUS})."
      - An input of type C(constant) without a value here keeps the value of its C(__inputs) entry.
      - Names that the JSON does not declare in C(__inputs) are replaced too.
    type: dict
  state:
    description:
      - V(present) creates or updates the dashboard, V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
notes:
  - A dashboard provisioned from a file by a provider with C(allowUiUpdates=false) cannot be saved or deleted
    through the API; the module then fails with Grafana's answer (400 "Cannot save provisioned dashboard").
  - A C(refresh) below Grafana's C(min_refresh_interval) is raised by Grafana and then reported as a change on
    every run; use an interval Grafana accepts.
  - Grafana does not migrate C(schemaVersion) on API saves, so the stored JSON is compared as sent.
seealso:
  - module: llmops.vllm.grafana_folder
  - module: llmops.vllm.grafana_datasource
  - name: Grafana dashboard HTTP API
    description: The endpoints this module uses.
    link: https://grafana.com/docs/grafana/latest/developers/http_api/dashboard/
"""

EXAMPLES = r"""
- name: Dashboards of a role, from its files/ directory, in a folder
  module_defaults:
    group/llmops.vllm.grafana:
      url: http://127.0.0.1:3000
      token: "{{ grafana_token }}"
  block:
    - name: Folder
      llmops.vllm.grafana_folder:
        uid: vllm
        title: vLLM
    - name: Dashboards
      llmops.vllm.grafana_dashboard:
        path: "dashboards/{{ item }}"
        folder_uid: vllm
        commit_message: Deployed by Ansible
      loop:
        - vllm-fleet-overview.json
        - vllm-instance-detail.json

- name: A dashboard exported for sharing, with its data source placeholder mapped
  llmops.vllm.grafana_dashboard:
    url: http://127.0.0.1:3000
    token: "{{ grafana_token }}"
    path: files/exported-dashboard.json
    uid: vllm-community
    folder_title: vLLM
    inputs:
      DS_PROMETHEUS: prometheus

- name: A dashboard from a URL, fetched by the Grafana host
  llmops.vllm.grafana_dashboard:
    url: http://127.0.0.1:3000
    token: "{{ grafana_token }}"
    dashboard_url: https://dashboards.example.com/node-exporter.json
    inputs:
      DS_PROMETHEUS: prometheus

- name: A small dashboard given inline
  llmops.vllm.grafana_dashboard:
    url: http://127.0.0.1:3000
    token: "{{ grafana_token }}"
    dashboard:
      uid: hello
      title: Hello
      panels: []
      schemaVersion: 39

- name: Delete a dashboard
  llmops.vllm.grafana_dashboard:
    url: http://127.0.0.1:3000
    token: "{{ grafana_token }}"
    uid: hello
    state: absent
"""

RETURN = r"""
dashboard:
  description:
    - Where the dashboard is after the change; in check mode, where it would be. Empty when O(state=absent).
    - C(version) and C(id) are V(null) in check mode for a dashboard that does not exist yet.
  returned: always
  type: dict
  contains:
    uid:
      description: Uid of the dashboard.
      type: str
      sample: vllm-fleet-overview
    id:
      description: Numeric id Grafana gave the dashboard.
      type: int
      sample: 12
    title:
      description: Title of the dashboard.
      type: str
      sample: vLLM fleet overview
    url:
      description: Path of the dashboard in Grafana's UI.
      type: str
      sample: /d/vllm-fleet-overview/vllm-fleet-overview
    version:
      description: Version of the dashboard in Grafana.
      type: int
      sample: 3
    folder_uid:
      description: Uid of its folder; empty for the root (General).
      type: str
      sample: vllm
"""

import json
import re

from ansible.module_utils.common.text.converters import to_native, to_text

from ansible_collections.llmops.vllm.plugins.module_utils.grafana_client import (
    GrafanaResource,
    ResourceError,
    fetch_text,
    path_quote,
)

# keys Grafana owns or an import drops; never compared, never sent from a file
SERVER_KEYS = ('id', 'version', 'iteration')
IMPORT_KEYS = ('__inputs', '__requires', '__elements')

_PLACEHOLDER = re.compile(r'\$\{([^}\s]+)\}')


class DashboardError(ResourceError):
    """The dashboard JSON cannot be used (nothing was written)."""


def parse_json(text, source):
    try:
        return json.loads(text)
    except ValueError as exc:
        raise DashboardError('The dashboard JSON from %s is malformed: %s' % (source, to_native(exc)))


def unwrap(data, source):
    """The dashboard model from a model, an export or an API answer."""
    if not isinstance(data, dict):
        raise DashboardError('The dashboard JSON from %s is not an object but a %s' % (source, type(data).__name__))
    inner = data.get('dashboard')
    if isinstance(inner, dict) and 'panels' not in data and 'title' not in data:
        data = inner
    return data


def substitute(value, values):
    """``value`` with ${NAME} replaced in every string where NAME is in ``values``."""
    if isinstance(value, dict):
        return dict((key, substitute(item, values)) for key, item in value.items())
    if isinstance(value, list):
        return [substitute(item, values) for item in value]
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda match: to_text(values[match.group(1)]) if match.group(1) in values else match.group(0), value)
    return value


def apply_inputs(dashboard, inputs, source):
    """Replace the __inputs placeholders like Grafana's import screen; fail on a missing value."""
    values = dict((to_text(key), value) for key, value in (inputs or {}).items())
    missing = []
    for entry in dashboard.get('__inputs') or []:
        if not isinstance(entry, dict) or not entry.get('name'):
            continue
        name = entry['name']
        if name in values:
            continue
        if entry.get('type') == 'constant' and entry.get('value') is not None:
            values[name] = entry['value']
        else:
            missing.append('%s (type %s%s)' % (name, entry.get('type'),
                                               ', plugin %s' % entry['pluginId'] if entry.get('pluginId') else ''))
    if missing:
        raise DashboardError('The dashboard from %s declares __inputs without a value: %s. Give them in inputs, such as '
                             'inputs: {%s: <data source uid>}' % (source, ', '.join(missing), missing[0].split(' ')[0]))
    dashboard = substitute(dashboard, values) if values else dashboard
    return dict((key, value) for key, value in dashboard.items() if key not in IMPORT_KEYS)


def normalise(dashboard):
    """The dashboard without the fields Grafana owns, title trimmed."""
    clean = dict((key, value) for key, value in dashboard.items() if key not in SERVER_KEYS and key not in IMPORT_KEYS)
    if isinstance(clean.get('title'), str):
        clean['title'] = clean['title'].strip()
    return clean


class GrafanaDashboard(GrafanaResource):
    kind = 'dashboard'
    argument_spec = dict(
        path=dict(type='path'),
        remote_src=dict(type='bool', default=False),
        dashboard=dict(type='dict'),
        content=dict(type='str'),
        dashboard_url=dict(type='str'),
        uid=dict(type='str'),
        folder_uid=dict(type='str'),
        folder_title=dict(type='str'),
        overwrite=dict(type='bool', default=False),
        commit_message=dict(type='str'),
        inputs=dict(type='dict'),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
    )
    mutually_exclusive = [
        ('dashboard', 'content', 'dashboard_url'),
        ('path', 'dashboard'),
        ('path', 'dashboard_url'),
        ('folder_uid', 'folder_title'),
    ]

    def __init__(self, module, client):
        super(GrafanaDashboard, self).__init__(module, client)
        self.model = None
        self.uid = self.params['uid']
        if self.params['state'] == 'present' or self.has_content():
            self.model = self.load()
            self.uid = self.uid or self.model.get('uid')
        if not self.uid:
            raise DashboardError('The dashboard has no uid: set uid, or give the JSON a "uid" (the module keys dashboards by uid)')
        if self.model is not None:
            self.model['uid'] = self.uid
        self.folder_uid = None

    def has_content(self):
        return any(self.params[key] is not None for key in ('path', 'dashboard', 'content', 'dashboard_url'))

    def load(self):
        params = self.params
        if params['dashboard'] is not None:
            source = 'the dashboard option'
            data = params['dashboard']
        elif params['content'] is not None:
            source = params['path'] or 'the content option'
            data = parse_json(params['content'], source)
        elif params['path'] is not None:
            source = params['path']
            try:
                with open(params['path'], 'rb') as handle:
                    text = to_text(handle.read(), errors='surrogate_or_strict')
            except (IOError, OSError) as exc:
                raise DashboardError('Cannot read the dashboard file %s: %s' % (source, to_native(exc)))
            data = parse_json(text, source)
        elif params['dashboard_url'] is not None:
            source = params['dashboard_url']
            data = parse_json(self.fetch(source), source)
        else:
            raise DashboardError('state=present needs the dashboard: set one of path, dashboard, content or dashboard_url')
        model = unwrap(data, source)
        model = apply_inputs(model, params['inputs'], source)
        if not isinstance(model.get('title'), str) or not model['title'].strip():
            raise DashboardError('The dashboard from %s has no title (Grafana refuses a dashboard without one)' % source)
        return normalise(model)

    def fetch(self, url):
        if not url.startswith(('http://', 'https://')):
            raise DashboardError('dashboard_url must be an http:// or https:// URL, got %r' % url)
        try:
            return fetch_text(url, timeout=self.params['timeout'], validate_certs=self.params['validate_certs'],
                              ca_path=self.params['ca_path'])
        except Exception as exc:  # pylint: disable=broad-except
            raise DashboardError('Cannot fetch the dashboard from %s: %s' % (url, to_native(exc)))

    def resolve_folder(self):
        if self.params['folder_title'] is None:
            return self.params['folder_uid'] or ''
        title = self.params['folder_title']
        if title.strip().lower() == 'general':
            return ''
        found = self.client.get('api/search', query={'type': 'dash-folder', 'query': title}) or []
        matches = [item for item in found if isinstance(item, dict) and item.get('title') == title]
        if len(matches) > 1:
            self.fail('More than one folder is titled %r (uids %s): use folder_uid' % (title, ', '.join(m.get('uid', '?') for m in matches)))
        if not matches:
            if self.module.check_mode:
                self.module.warn('No folder titled %r exists yet; in check mode the dashboard is reported as changed' % title)
                return '<folder titled %s>' % title
            self.fail('No folder titled %r exists in Grafana: create it first (llmops.vllm.grafana_folder) or use folder_uid' % title)
        return matches[0].get('uid') or ''

    def path(self):
        return 'api/dashboards/uid/%s' % path_quote(self.uid)

    def read(self):
        return self.client.get(self.path(), allow_404=True)

    def comparable(self, current):
        meta = current.get('meta') or {}
        return {'dashboard': normalise(current.get('dashboard') or {}), 'folderUid': meta.get('folderUid') or ''}

    def desired(self, current, have):
        if self.folder_uid is None:
            self.folder_uid = self.resolve_folder()
        return {'dashboard': self.model, 'folderUid': self.folder_uid}

    def save(self, want, version):
        dashboard = dict(want['dashboard'])
        dashboard['id'] = None
        if version is not None:
            dashboard['version'] = version
        body = {'dashboard': dashboard, 'folderUid': want['folderUid'], 'overwrite': self.params['overwrite']}
        if self.params['commit_message']:
            body['message'] = self.params['commit_message']
        self.client.post('api/dashboards/db', body)
        return self.read()

    def create(self, want):
        return self.save(want, None)

    def update(self, current, have, want):
        return self.save(want, (current.get('dashboard') or {}).get('version'))

    def delete(self, current):
        self.client.delete(self.path())

    def predict(self, current, want):
        if current:
            predicted = dict(current)
            predicted['dashboard'] = dict(want['dashboard'], id=(current.get('dashboard') or {}).get('id'),
                                          version=(current.get('dashboard') or {}).get('version'))
            predicted['meta'] = dict(current.get('meta') or {}, folderUid=want['folderUid'])
            return predicted
        return {'dashboard': dict(want['dashboard'], id=None, version=None), 'meta': {'folderUid': want['folderUid']}}

    def public(self, obj):
        dashboard = obj.get('dashboard') or {}
        meta = obj.get('meta') or {}
        return {
            'uid': dashboard.get('uid'),
            'id': dashboard.get('id'),
            'title': dashboard.get('title'),
            'url': meta.get('url'),
            'version': dashboard.get('version'),
            'folder_uid': meta.get('folderUid') or '',
        }


def main():
    GrafanaDashboard.main()


if __name__ == '__main__':
    main()
