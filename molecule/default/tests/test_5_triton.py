"""Triton: the optional `triton` group is scraped on Triton's metrics port, and every
query of the dashboard's Triton row has data from the real Prometheus.

No Triton runs here: the converge serves a page built from Triton's documented
metric names (tests/dashboards/fixtures/triton-metrics-built.txt, built, not
captured) with a static server on the hosts of group `triton`
(molecule/shared/triton_metrics.yml). The page is static, so rates are 0 and the
row's ratios and quantiles must show 0, not NaN and not nothing.
"""

import copy
import json
import os
import subprocess
import sys
import urllib.request

import pytest
from testinfra.utils.ansible_runner import AnsibleRunner

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from loadgen import container_ip  # noqa: E402
from prom import targets  # noqa: E402
from vllm_checks import wait_for  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
DASHBOARD = os.path.join(ROOT, "roles", "grafana", "files", "dashboards", "vllm-instance-detail.json")
TRITON_PORT = 8002  # Triton's default metrics port; the scenario sets no triton_metrics_port


@pytest.fixture(scope="module")
def groups():
    runner = AnsibleRunner(INVENTORY)
    return {"prometheus": runner.get_hosts("prometheus"), "triton": runner.get_hosts("triton")}


@pytest.fixture(scope="module")
def prom(groups):
    return "http://%s:9090" % container_ip(sorted(groups["prometheus"])[0])


def test_the_static_server_answers_with_the_built_page(groups):
    assert groups["triton"], "the scenario puts a host into group triton"
    for name in groups["triton"]:
        with urllib.request.urlopen("http://%s:%d/metrics" % (container_ip(name), TRITON_PORT), timeout=10) as r:
            page = r.read().decode()
        assert page.startswith("# BUILT, NOT CAPTURED"), page[:200]
        assert 'nv_inference_request_success{model="vllm_model",version="1"}' in page
        assert 'vllm:time_to_first_token_seconds_bucket{model="vllm_model",version="1",le="+Inf"}' in page


def test_triton_targets_up(prom, groups):
    def up():
        found = [t for t in targets(prom) if t["labels"]["job"] == "triton"]
        return found if found and all(t["health"] == "up" for t in found) else None
    found = wait_for(up, 180, interval=5, what="the triton targets up")
    assert sorted((t["labels"]["host"], t["labels"]["instance"]) for t in found) == sorted(
        (h, "%s:%d" % (h, TRITON_PORT)) for h in groups["triton"])
    assert all(t["scrapeUrl"].endswith(":%d/metrics" % TRITON_PORT) for t in found)


def triton_only(dashboard):
    """The dashboard with its Triton row's panels only (and its variables)."""
    rows = [p for p in dashboard["panels"] if p.get("type") == "row" and p["title"].startswith("Triton")]
    assert len(rows) == 1, [p["title"] for p in dashboard["panels"] if p.get("type") == "row"]
    out = copy.deepcopy(dashboard)
    out["panels"] = [dict(rows[0], panels=rows[0]["panels"])]
    out["templating"]["list"] = [v for v in dashboard["templating"]["list"]
                                 if v["name"] == "datasource" or v["name"].startswith("triton_")]
    return out, len(rows[0]["panels"])


def test_every_triton_panel_query_has_data(prom, tmp_path):
    with open(DASHBOARD, encoding="utf-8") as handle:
        dashboard, panels = triton_only(json.load(handle))
    assert panels >= 10
    (tmp_path / "triton-row.json").write_text(json.dumps(dashboard))
    # check_queries.py: every target (range queries for time series) and every
    # label_values variable must return data, with no NaN or infinite value.
    check = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "dashboards", "check_queries.py"),
                            "--prometheus", prom, "--dashboards", str(tmp_path), "--wait", "120"],
                           capture_output=True, text=True, timeout=600)
    assert check.returncode == 0, check.stdout[-4000:] + check.stderr[-2000:]
    summary = check.stdout.strip().splitlines()[-1]
    assert summary.endswith(" 0 failed") and int(summary.split()[0]) >= 25, summary
