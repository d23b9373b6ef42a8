#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: alertmanager_silence
short_description: Create or expire an Alertmanager silence, idempotently
version_added: 0.1.0
author: llmops.vllm maintainers (!UNKNOWN)
description:
  - Manages one silence through Alertmanager's API v2 (C(/api/v2/silences), C(/api/v2/silence/<id>)).
  - A silence is identified by its O(matchers) (all of them, in any order) and its O(comment), or by its
    O(matchers) and a O(tag) that its comment contains. With O(state=present), an active (or pending) silence that
    matches is returned as it is, so a rerun creates no second silence; otherwise a new one is created.
  - Alertmanager instances of one cluster share their silences by gossip. The module reads from the first URL of
    O(urls) that answers and creates the silence there; with O(state=absent) it expires the matching silences on
    every URL where they are still active.
extends_documentation_fragment:
  - llmops.vllm.attributes
  - llmops.vllm.http_options
  - llmops.vllm.http_options.notes
options:
  urls:
    description:
      - Root URLs of the Alertmanager instances of one cluster, such as V(http://alertmanager-1:9093).
      - Tried in order; an instance that does not answer is skipped (and reported as a warning with O(state=absent)).
    type: list
    elements: str
    required: true
    aliases: [url]
  url_username:
    description:
      - User name for HTTP basic authentication (Alertmanager's C(--web.config.file) C(basic_auth_users), or a proxy).
    type: str
  url_password:
    description:
      - Password for HTTP basic authentication.
    type: str
  matchers:
    description:
      - The label matchers of the silence. Required with O(state=present), and with O(state=absent) unless
        O(silence_id) is given.
    type: list
    elements: dict
    suboptions:
      name:
        description: Label name.
        type: str
        required: true
      value:
        description: Label value, or a regular expression when O(matchers[].is_regex=true).
        type: str
        required: true
      is_regex:
        description: Whether O(matchers[].value) is a regular expression (anchored, RE2 syntax).
        type: bool
        default: false
        aliases: [isRegex]
      is_equal:
        description: V(false) makes a negative matcher (C(!=) or C(!~)).
        type: bool
        default: true
        aliases: [isEqual]
  duration:
    description:
      - How long a new silence lasts from O(starts_at) (or now), such as V(30m), V(2h) or V(1h30m) (units C(ms),
        C(s), C(m), C(h), C(d), C(w)), or a number of seconds.
      - An existing matching silence is kept as it is; the duration is not compared.
      - Ignored when O(ends_at) is given.
    type: str
    default: 1h
  starts_at:
    description:
      - RFC 3339 start time of a new silence. Defaults to now.
    type: str
  ends_at:
    description:
      - RFC 3339 end time, such as V(2025-01-31T18:00:00Z). When given, it is compared with the end of an existing
        matching silence, which is updated (same id) when they differ.
    type: str
  created_by:
    description:
      - The C(createdBy) of a new silence.
    type: str
    default: ansible
  comment:
    description:
      - The comment of the silence; required by Alertmanager for a new silence.
      - Part of the identity of the silence unless O(tag) is given. With O(tag), the tag is appended as C([<tag>])
        when the comment does not already contain it.
    type: str
  tag:
    description:
      - A marker, such as V(rollout-42-gpu-3), that identifies the silence within its comment instead of the whole comment.
        Matching silences are those with the same O(matchers) whose comment contains it.
    type: str
  silence_id:
    description:
      - With O(state=absent), the id of the silence to expire, instead of finding it by O(matchers).
    type: str
  state:
    description:
      - V(present) makes sure a matching silence is active, V(absent) expires every matching active or pending silence.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - Shows the silence that would be created, the end time that would change, or the ids that would be expired.
notes:
  - Alertmanager 0.25 answers a DELETE of an unknown silence with 500 "silence not found"; the module treats that, like
    404, as already expired.
  - Expired silences stay listed by Alertmanager for its C(--data.retention); they never match.
seealso:
  - name: Alertmanager API v2
    description: The OpenAPI specification of the endpoints this module uses.
    link: https://github.com/prometheus/alertmanager/blob/main/api/v2/openapi.yaml
"""

EXAMPLES = r"""
- name: Silence the alerts of the instances a rollout batch drains
  llmops.vllm.alertmanager_silence:
    urls:
      - http://alertmanager-1:9093
      - http://alertmanager-2:9093
    matchers:
      - name: instance
        value: "gpu-3:8000|gpu-4:8000"
        is_regex: true
    duration: 30m
    comment: Rolling upgrade of vLLM
    tag: "rollout-{{ rollout_id }}-batch-1"
  delegate_to: localhost
  register: silence

- name: Expire it after the batch is healthy again
  llmops.vllm.alertmanager_silence:
    urls:
      - http://alertmanager-1:9093
      - http://alertmanager-2:9093
    silence_id: "{{ silence.silence_id }}"
    state: absent
  delegate_to: localhost

- name: Maintenance window with a fixed end, behind basic auth
  llmops.vllm.alertmanager_silence:
    url: https://alertmanager.example.com
    url_username: ops
    url_password: "{{ alertmanager_password }}"
    matchers:
      - {name: site, value: fra1}
      - {name: severity, value: critical, is_equal: false}
    ends_at: "2025-02-01T06:00:00Z"
    comment: fra1 maintenance
    created_by: ops-team
"""

RETURN = r"""
silence_id:
  description:
    - Id of the silence found, created or updated; with O(state=absent), the first id expired.
    - V(null) in check mode for a silence that would be created, and when nothing matched.
  returned: always
  type: str
  sample: 0d5bd15b-8e43-4bd2-a44a-5d5e7a6a4b5e
silence_ids:
  description: Ids of all matching silences (O(state=present)) or of the silences expired (O(state=absent)).
  returned: always
  type: list
  elements: str
silence:
  description:
    - The silence (O(state=present)), as Alertmanager returns it, or as it would be created.
    - Empty with O(state=absent).
  returned: always
  type: dict
  sample:
    id: 0d5bd15b-8e43-4bd2-a44a-5d5e7a6a4b5e
    status: {state: active}
    matchers: [{name: instance, value: "gpu-3:8000", isRegex: false, isEqual: true}]
    startsAt: "2025-01-31T17:00:00.000Z"
    endsAt: "2025-01-31T17:30:00.000Z"
    createdBy: ansible
    comment: Rolling upgrade of vLLM [rollout-42-batch-1]
url:
  description: The Alertmanager the state was read from (O(state=present)).
  returned: when O(state=present)
  type: str
  sample: http://alertmanager-1:9093
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.vllm.plugins.module_utils.alertmanager_client import (
    ALERTMANAGER_ARGUMENT_SPEC,
    SilenceTask,
)


def main():
    argument_spec = dict(
        matchers=dict(type='list', elements='dict', options=dict(
            name=dict(type='str', required=True),
            value=dict(type='str', required=True),
            is_regex=dict(type='bool', default=False, aliases=['isRegex']),
            is_equal=dict(type='bool', default=True, aliases=['isEqual']),
        )),
        duration=dict(type='str', default='1h'),
        starts_at=dict(type='str'),
        ends_at=dict(type='str'),
        created_by=dict(type='str', default='ansible'),
        comment=dict(type='str'),
        tag=dict(type='str'),
        silence_id=dict(type='str'),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
    )
    argument_spec.update(ALERTMANAGER_ARGUMENT_SPEC)
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[('state', 'present', ['matchers', 'comment'])],
        required_one_of=[('matchers', 'silence_id')],
        required_together=[('url_username', 'url_password')],
        supports_check_mode=True,
    )
    if module.params['silence_id'] and module.params['state'] == 'present':
        module.fail_json(msg='silence_id is for state=absent; a silence to keep is found by matchers and comment or tag')
    try:
        task = SilenceTask(module)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    task.execute()


if __name__ == '__main__':
    main()
