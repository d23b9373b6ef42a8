# -*- coding: utf-8 -*-
# Copyright: llmops.vllm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The problems a role's preflight finds, all at once.

A role's preflight is one ``assert`` over the list these filters return, not
one ``assert`` task per rule: the operator reads every problem of a host in one
run, and a run pays for one task instead of a dozen.

``preflight_problems`` takes rules ``{ok: <bool>, msg: <text>}`` and returns the
messages of those whose ``ok`` is false. ``ok`` must be a real boolean: a
rule written so that it renders as text (``"False"``) would always pass, so it
is refused instead.

``preflight_unmatched`` takes values bound for a unit or a configuration file,
``{key, value, what, rx}`` (and an optional ``msg``), and returns a message for
each value that is not a string matching ``rx`` from its start (Jinja's
``match`` test): ``"<key> must be <what> (got <value as JSON>)."``, or ``msg``
formatted with ``key``, ``what``, ``value`` and ``value_json``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six import string_types


def _rules(value, name):
    if isinstance(value, string_types) or not is_sequence(value):
        raise AnsibleFilterError("%s expects a list of rules, got %r" % (name, value))
    for rule in value:
        if not isinstance(rule, dict):
            raise AnsibleFilterError("%s: a rule must be a mapping, got %r" % (name, rule))
    return value


def preflight_problems(rules):
    """Messages of the rules whose ``ok`` is false, in their order."""
    problems = []
    for rule in _rules(rules, "preflight_problems"):
        if set(rule) != {"ok", "msg"}:
            raise AnsibleFilterError("preflight_problems: a rule has the keys ok and msg, got %s" % sorted(rule))
        if not isinstance(rule["ok"], bool):
            raise AnsibleFilterError(
                "preflight_problems: the rule %r has ok=%r, not a boolean (a rule that renders as text "
                "cannot fail)" % (to_text(rule["msg"])[:80], rule["ok"]))
        if not rule["ok"]:
            problems.append(to_text(rule["msg"]).strip())
    return problems


def _json(value):
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return json.dumps(to_text(value))


def preflight_unmatched(fields):
    """A message for each field whose value is not a string matching its pattern."""
    problems = []
    for field in _rules(fields, "preflight_unmatched"):
        missing = {"key", "value", "rx"} - set(field)
        unknown = set(field) - {"key", "value", "rx", "what", "msg"}
        if missing or unknown or ("what" not in field and "msg" not in field):
            raise AnsibleFilterError(
                "preflight_unmatched: a field has key, value, rx and what or msg, got %s" % sorted(field))
        value = field["value"]
        if isinstance(value, string_types) and re.match(field["rx"], value):
            continue
        text = field.get("msg") or "{key} must be {what} (got {value_json})."
        problems.append(text.format(key=field["key"], what=field.get("what", ""),
                                    value=to_text(value), value_json=_json(value)))
    return problems


class FilterModule(object):
    def filters(self):
        return {"preflight_problems": preflight_problems, "preflight_unmatched": preflight_unmatched}
