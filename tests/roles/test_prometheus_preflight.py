"""Bad input to the prometheus role fails in preflight, before any task that
changes a host, with a message that names the variable to fix.

Runs the role against the controller itself with only its preflight tag
(argument_specs validation runs too), so nothing can be installed here
(tests/roles/conftest.py, role_preflight). The cases cover the alert-rule
variables (issue 11) and the vLLM job's drop list.
"""

import pytest

# The package method needs a Debian-family controller; the archive method runs anywhere.
BASE = {"prometheus_install_method": "archive"}


def run_preflight(role_preflight, overrides):
    return role_preflight("prometheus", dict(BASE, **overrides))


def test_good_input_passes(role_preflight):
    rc, out = run_preflight(role_preflight, {})
    assert rc == 0, out
    assert "changed=0" in out


def test_no_slo_window_passes_with_the_slo_rules_off(role_preflight):
    rc, out = run_preflight(role_preflight, {"prometheus_slo_alert_rules_enabled": False,
                                             "prometheus_alert_slo_fast_burn_windows": [],
                                             "prometheus_alert_slo_slow_burn_windows": []})
    assert rc == 0, out


WINDOW = {"long": "1h", "short": "5m", "factor": 14.4}


@pytest.mark.parametrize("overrides, expected", [
    ({"prometheus_alert_vllm_stalled_lookback": "1 hour"}, "prometheus_alert_vllm_stalled_lookback must be a Prometheus duration"),
    ({"prometheus_alert_gpu_xid_window": "15"}, "prometheus_alert_gpu_xid_window must be a Prometheus duration"),
    ({"prometheus_alert_target_down_for": "5min"}, "prometheus_alert_target_down_for must be a Prometheus duration"),
    ({"prometheus_alert_gateway_down_for": ""}, "prometheus_alert_gateway_down_for must be a Prometheus duration"),
    ({"prometheus_alert_gateway_no_backend_for": "-1m"}, "prometheus_alert_gateway_no_backend_for must be"),
    ({"prometheus_alert_gateway_server_down_for": "m5"}, "prometheus_alert_gateway_server_down_for must be"),
    ({"prometheus_alert_gateway_error_for": "5 m"}, "prometheus_alert_gateway_error_for must be"),
    ({"prometheus_alert_monitoring_for": "10M"}, "prometheus_alert_monitoring_for must be"),
    ({"prometheus_alert_slo_fast_burn_for": "2mins"}, "prometheus_alert_slo_fast_burn_for must be"),
    ({"prometheus_alert_slo_slow_burn_for": "1.5h"}, "prometheus_alert_slo_slow_burn_for must be"),
    ({"prometheus_alert_slo_fast_burn_windows": [dict(WINDOW, long="1h30m")]},
     "prometheus_alert_slo_fast_burn_windows item"),
    ({"prometheus_alert_slo_slow_burn_windows": [dict(WINDOW, short="2 h")]},
     "prometheus_alert_slo_slow_burn_windows item"),
    ({"prometheus_alert_slo_slow_burn_windows": [dict(WINDOW, factor=0)]},
     "prometheus_alert_slo_slow_burn_windows item"),
    ({"prometheus_alert_slo_fast_burn_windows": [], "prometheus_alert_slo_slow_burn_windows": []},
     "prometheus_alert_slo_slow_burn_windows are both"),
    ({"prometheus_alert_vllm_start_grace_seconds": 0}, "prometheus_alert_vllm_start_grace_seconds must be a number of seconds above 0"),
    ({"prometheus_alert_min_requests": -1}, "prometheus_alert_min_requests must be a number of requests above 0"),
    ({"prometheus_alert_gateway_error_ratio": 1.0}, "prometheus_alert_gateway_error_ratio must be a share in (0, 1)"),
    ({"prometheus_alert_gateway_error_ratio": 0}, "prometheus_alert_gateway_error_ratio must be a share in (0, 1)"),
    ({"prometheus_alert_slo_error_objective": 99}, "prometheus_alert_slo_error_objective must be a share in (0, 1)"),
    ({"prometheus_alert_slo_ttft_objective": 0.0}, "prometheus_alert_slo_ttft_objective must be a share in (0, 1)"),
    ({"prometheus_vllm_drop_metrics": [".+_created", ""]}, "prometheus_vllm_drop_metrics must be a list of non-empty"),
])
def test_bad_input_fails_in_preflight(role_preflight, overrides, expected):
    rc, out = run_preflight(role_preflight, overrides)
    assert rc != 0, out
    assert expected in out, out
    assert "changed=0" in out or "changed=" not in out
