"""What is wrong with a dashboard file (plugins/filter/dashboard_check.py)."""

import glob
import os

import pytest

from ansible_collections.llmops.vllm.plugins.filter.dashboard_check import grafana_dashboard_problem

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


DASHBOARDS = sorted(glob.glob(os.path.join(ROOT, "roles", "grafana", "files", "dashboards", "*.json")))


def test_the_collection_has_dashboards():
    assert len(DASHBOARDS) >= 3


@pytest.mark.parametrize("path", DASHBOARDS, ids=os.path.basename)
def test_the_collections_dashboards_pass(path):
    with open(path) as f:
        assert grafana_dashboard_problem(f.read()) == ""


@pytest.mark.parametrize("text, problem", [
    ('{"uid": "a", "title": "A", "panels": [', "not valid JSON"),
    ("[]", "not a JSON object"),
    ('{"title": "No uid"}', "no uid"),
    ('{"uid": "", "title": "Empty uid"}', "no uid"),
    ('{"uid": "has space", "title": "A"}', 'uid "has space" is not'),
    ('{"uid": "' + "u" * 41 + '", "title": "A"}', "is not 1 to 40"),
    ('{"uid": 7, "title": "A"}', "uid 7 is not"),
    ('{"uid": "a"}', "no title"),
    (None, "not text"),
])
def test_problems_are_named(text, problem):
    assert problem in grafana_dashboard_problem(text)


def test_the_api_form_is_read_inside_its_wrapper():
    assert grafana_dashboard_problem('{"dashboard": {"uid": "a", "title": "A"}, "meta": {}}') == ""
    assert "no uid" in grafana_dashboard_problem('{"dashboard": {"title": "A"}, "meta": {}}')
