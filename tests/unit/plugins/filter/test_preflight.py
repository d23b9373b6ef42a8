"""A role's preflight problems, all at once (plugins/filter/preflight.py)."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.vllm.plugins.filter.preflight import preflight_problems, preflight_unmatched


def test_messages_of_failed_rules_in_order_and_none_when_all_pass():
    rules = [{"ok": False, "msg": "first\n"}, {"ok": True, "msg": "fine"}, {"ok": False, "msg": "  third"}]
    assert preflight_problems(rules) == ["first", "third"]
    assert preflight_problems([{"ok": True, "msg": "fine"}]) == []
    assert preflight_problems([]) == []


@pytest.mark.parametrize("ok", ["False", "false", "", 0, 1, None, "True"])
def test_a_rule_that_is_not_a_boolean_is_refused(ok):
    # "False" as text is truthy: such a rule could never fail.
    with pytest.raises(AnsibleFilterError, match="not a boolean"):
        preflight_problems([{"ok": ok, "msg": "port must be 1-65535"}])


@pytest.mark.parametrize("rules, error", [
    ("ok", "expects a list"),
    ({"ok": True, "msg": "x"}, "expects a list"),
    (["ok"], "must be a mapping"),
    ([{"ok": True}], "keys ok and msg"),
    ([{"ok": True, "msg": "x", "when": True}], "keys ok and msg"),
])
def test_malformed_rules_are_refused(rules, error):
    with pytest.raises(AnsibleFilterError, match=error):
        preflight_problems(rules)


def test_unmatched_values_named_with_the_value_as_json():
    fields = [
        {"key": "x_user", "value": "vllm", "what": "a user name", "rx": "^[a-z_][a-z0-9_-]{0,31}$"},
        {"key": "x_user2", "value": "Root Me", "what": "a user name", "rx": "^[a-z_][a-z0-9_-]{0,31}$"},
        {"key": "x_dir", "value": ["/a"], "what": "an absolute path", "rx": "^/"},
        {"key": "x_port", "value": 9090, "what": "text", "rx": ".*"},
    ]
    assert preflight_unmatched(fields) == [
        'x_user2 must be a user name (got "Root Me").',
        'x_dir must be an absolute path (got ["/a"]).',
        "x_port must be text (got 9090).",
    ]


def test_match_is_anchored_at_the_start_only_like_jinja_match():
    fields = [{"key": "k", "value": "abc def", "what": "w", "rx": "abc"}]
    assert preflight_unmatched(fields) == []
    fields = [{"key": "k", "value": "xabc", "what": "w", "rx": "abc"}]
    assert preflight_unmatched(fields) == ['k must be w (got "xabc").']


def test_own_message_format():
    fields = [{"key": "p_interval", "value": "5 min", "rx": "^([0-9]+(ms|s|m|h|d|w|y))+$",
               "msg": "{key} must be a Prometheus duration such as 30s (got {value})."}]
    assert preflight_unmatched(fields) == ["p_interval must be a Prometheus duration such as 30s (got 5 min)."]


@pytest.mark.parametrize("field", [
    {"key": "k", "value": "v", "rx": "v"},
    {"key": "k", "value": "v", "what": "w"},
    {"key": "k", "value": "v", "rx": "v", "what": "w", "label": "x"},
])
def test_malformed_fields_are_refused(field):
    with pytest.raises(AnsibleFilterError, match="a field has"):
        preflight_unmatched([field])
