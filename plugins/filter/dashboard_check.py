# -*- coding: utf-8 -*-
# Copyright: llmops.vllm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is wrong with a Grafana dashboard file, checked before any host changes.

``grafana_dashboard_problem`` takes the text of a dashboard JSON file and returns
an empty string when it is a JSON object with a uid Grafana accepts (1 to 40
letters, digits, ``-`` and ``_``) and a title, else one sentence saying what is
wrong (not JSON, where the parser stopped; not an object; no uid; a bad uid).
The grafana role's preflight names the file in its message; a template error
from ``from_json`` would not.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible.module_utils.six import string_types

UID = re.compile(r"^[a-zA-Z0-9_-]{1,40}$")


def grafana_dashboard_problem(text):
    if not isinstance(text, string_types):
        return "it is not text"
    try:
        dashboard = json.loads(text)
    except ValueError as exc:
        return "it is not valid JSON (%s)" % exc
    if not isinstance(dashboard, dict):
        return "it is not a JSON object"
    # An export wrapped as {"dashboard": {...}} is read the same way.
    if isinstance(dashboard.get("dashboard"), dict):
        dashboard = dashboard["dashboard"]
    uid = dashboard.get("uid")
    if uid in (None, ""):
        return "it has no uid (the role keys dashboards by uid)"
    if not isinstance(uid, string_types) or not UID.match(uid):
        return "its uid %s is not 1 to 40 letters, digits, '-' or '_'" % json.dumps(uid)
    if not isinstance(dashboard.get("title"), string_types) or not dashboard["title"].strip():
        return "it has no title"
    return ""


class FilterModule(object):
    def filters(self):
        return {"grafana_dashboard_problem": grafana_dashboard_problem}
