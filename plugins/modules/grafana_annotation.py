#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: grafana_annotation
short_description: Create or delete a Grafana annotation, found by its tags and text
version_added: 0.1.0
author: llmops.vllm maintainers (!UNKNOWN)
description:
  - Manages one annotation through Grafana's HTTP API (C(/api/annotations)), such as the mark of a rollout or a
    maintenance window on the dashboards.
  - Annotations have no uid. The module identifies one by its O(tags) (exactly that set, in any order) and its O(text);
    give each annotation a unique tag, such as V(rollout-42). A rerun finds the annotation instead of adding another.
  - When O(time) or O(time_end) is given and differs from the annotation found, the annotation is updated
    (C(PATCH /api/annotations/<id>)).
extends_documentation_fragment:
  - llmops.vllm.grafana
  - llmops.vllm.http_options
  - llmops.vllm.attributes
options:
  tags:
    description:
      - Tags of the annotation; with O(text), its identity. At least one.
    type: list
    elements: str
    required: true
  text:
    description:
      - Text of the annotation. Required when O(state=present).
      - With O(state=absent), only annotations with this text are deleted; without it, every annotation with exactly
        the O(tags) is.
    type: str
  time:
    description:
      - Start of the annotation, in milliseconds since the epoch. Grafana uses the current time when it is not set.
    type: int
  time_end:
    description:
      - End of a region annotation, in milliseconds since the epoch. When not set, the annotation is a point in time.
    type: int
  dashboard_uid:
    description:
      - Uid of the dashboard to put a new annotation on. Without it, the annotation belongs to the organisation and
        shows on every dashboard that displays annotations with its tags.
      - Grafana silently makes an organisation annotation when the uid is unknown.
      - Used when the annotation is created; not compared afterwards.
    type: str
  panel_id:
    description:
      - Id of the panel of O(dashboard_uid) to put a new annotation on.
    type: int
  state:
    description:
      - V(present) creates the annotation when none matches, V(absent) deletes every matching annotation.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
notes:
  - Needs the Editor role (or C(annotations:create/write/delete)) for organisation annotations.
  - Only annotations of type C(annotation) (not alert annotations) are searched, at most 1000 with the given tags.
seealso:
  - module: llmops.vllm.grafana_dashboard
  - name: Grafana annotations HTTP API
    description: The endpoints this module uses.
    link: https://grafana.com/docs/grafana/latest/developers/http_api/annotations/
"""

EXAMPLES = r"""
- name: Mark the start of a rollout on every dashboard
  llmops.vllm.grafana_annotation:
    url: http://grafana:3000
    token: "{{ grafana_token }}"
    tags: [vllm, rollout, "rollout-{{ rollout_id }}"]
    text: "vLLM {{ vllm_version }} rollout started"
    time: "{{ (now().timestamp() * 1000) | int }}"
  delegate_to: localhost
  run_once: true

- name: A region on one dashboard
  llmops.vllm.grafana_annotation:
    url: http://grafana:3000
    token: "{{ grafana_token }}"
    tags: [maintenance, fra1-2025-02]
    text: fra1 maintenance window
    time: 1738396800000
    time_end: 1738404000000
    dashboard_uid: vllm-fleet-overview

- name: Remove it
  llmops.vllm.grafana_annotation:
    url: http://grafana:3000
    token: "{{ grafana_token }}"
    tags: [maintenance, fra1-2025-02]
    state: absent
"""

RETURN = r"""
annotation:
  description:
    - The annotation found, created or updated; in check mode, as it would be (C(id) V(null) when it would be
      created). Empty when O(state=absent).
  returned: always
  type: dict
  sample:
    id: 42
    text: vLLM 0.32.0 rollout started
    tags: [rollout, rollout-42, vllm]
    time: 1738342800000
    timeEnd: 1738342800000
    dashboardUID: null
    panelId: 0
annotation_ids:
  description: Ids of all annotations that matched (before a deletion, those deleted).
  returned: always
  type: list
  elements: int
  sample: [42]
"""

from ansible_collections.llmops.vllm.plugins.module_utils.grafana_client import (
    GrafanaResource,
    ResourceError,
)

PUBLIC_FIELDS = ('id', 'text', 'tags', 'time', 'timeEnd', 'dashboardUID', 'panelId')


class GrafanaAnnotation(GrafanaResource):
    kind = 'annotation'
    argument_spec = dict(
        tags=dict(type='list', elements='str', required=True),
        text=dict(type='str'),
        time=dict(type='int'),
        time_end=dict(type='int'),
        dashboard_uid=dict(type='str'),
        panel_id=dict(type='int'),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
    )
    required_if = [('state', 'present', ['text'])]

    def __init__(self, module, client):
        super(GrafanaAnnotation, self).__init__(module, client)
        self.tags = sorted(set(tag for tag in self.params['tags'] if tag))
        if not self.tags:
            raise ResourceError('tags must name at least one tag: the tags (with the text) identify the annotation')
        self.matches = []

    def read(self):
        query = [('tags', tag) for tag in self.tags] + [('type', 'annotation'), ('limit', 1000)]
        found = self.client.get('api/annotations', query=query) or []
        text = self.params['text']
        self.matches = [item for item in found if isinstance(item, dict)
                        and sorted(set(item.get('tags') or [])) == self.tags
                        and (text is None or item.get('text') == text)
                        and item.get('id')]
        return self.matches[0] if self.matches else None

    def comparable(self, current):
        have = {'text': current.get('text'), 'tags': sorted(current.get('tags') or [])}
        if self.params['time'] is not None:
            have['time'] = current.get('time')
        if self.params['time_end'] is not None:
            have['timeEnd'] = current.get('timeEnd')
        return have

    def desired(self, current, have):
        want = {'text': self.params['text'], 'tags': self.tags}
        if self.params['time'] is not None:
            want['time'] = self.params['time']
        if self.params['time_end'] is not None:
            want['timeEnd'] = self.params['time_end']
        return want

    def create(self, want):
        body = dict(want)
        if self.params['dashboard_uid']:
            body['dashboardUID'] = self.params['dashboard_uid']
        if self.params['panel_id'] is not None:
            body['panelId'] = self.params['panel_id']
        answer = self.client.post('api/annotations', body) or {}
        created = self.read()
        if created is None:
            return dict(body, id=answer.get('id'))
        return created

    def update(self, current, have, want):
        body = dict((key, want[key]) for key in ('time', 'timeEnd') if key in want)
        self.client.patch('api/annotations/%d' % int(current['id']), body)
        return self.read() or dict(current, **body)

    def delete(self, current):
        for item in self.matches:
            # never DELETE /api/annotations/0 (grafana/grafana#99685)
            if int(item['id']) > 0:
                self.client.delete('api/annotations/%d' % int(item['id']), allow_404=True)

    def predict(self, current, want):
        obj = dict(current) if current else {'id': None, 'dashboardUID': self.params['dashboard_uid'],
                                             'panelId': self.params['panel_id'] or 0}
        obj.update(want)
        return obj

    def public(self, obj):
        return dict((key, obj.get(key)) for key in PUBLIC_FIELDS)

    def _execute(self):
        result = super(GrafanaAnnotation, self)._execute()
        result['annotation_ids'] = [item['id'] for item in self.matches]
        if result.get('annotation', {}).get('id') and result['annotation']['id'] not in result['annotation_ids']:
            result['annotation_ids'].append(result['annotation']['id'])
        return result


def main():
    GrafanaAnnotation.main()


if __name__ == '__main__':
    main()
