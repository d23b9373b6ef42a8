"""Bad input fails before any host changes (README.md, "Security").

A table of bad inputs across the roles: wrong types, ports out of range or
taken by another role of the host, injection attempts in every value that
reaches a systemd unit, an environment file, haproxy.cfg, prometheus.yml or
grafana.ini, unknown keys, bad PromQL, broken dashboards, a datasource of an
unknown kind, weak passwords, http where https is required. Each case runs
site.yml against the running stack with the case's extra vars, limited to a
host whose preflight checks that input, and must fail with a message that names
the variable. Around the whole battery, a checksum of every file under the
services' configuration directories and the start of every llmops unit on each
host show that nothing changed and nothing restarted.

The runs are independent, so a few run at once (each is mostly waiting for its
one host); the battery's wall time is printed.
"""

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from playbook import ansible_playbook  # noqa: E402

HOSTS = ["stack-vllm-1", "stack-vllm-2", "stack-mon-1"]
VLLM, PROM, MON = HOSTS  # vllm | vllm + prometheus | gateway, grafana, alertmanager
WATCHED = ["/etc/vllm", "/etc/prometheus", "/etc/grafana", "/etc/haproxy", "/etc/alertmanager", "/etc/systemd/system"]
UNITS = ["vllm@*.service", "haproxy.service", "prometheus.service", "prometheus-node-exporter.service",
         "prometheus-alertmanager.service", "grafana-server.service", "victoria-metrics.service", "vmalert.service",
         "nvidia-dcgm-exporter.service", "nftables.service"]
WORKERS = 4
BCRYPT = "$2b$10$uDpx8DTdDzSJYeKixWyXzeid7mIY4.V2FMrz1.pR9VzMjuBUm42aq"
INJECT = "x\nExecStartPre=/bin/sh -c id"
RULE = {"groups": [{"name": "bad", "rules": [{"record": "job:up:bad", "expr": "sum(rate(up[5m]) by (job)"}]}]}
DASHBOARDS = {"broken.json": '{"uid": "broken", "title": "Broken", "panels": [', "no-uid.json": '{"title": "No uid"}'}

# (case id, host, extra vars, text the failure must show: the variable's name first)
CASES = [
    # vLLM servers
    ("vllm-wrong-type", VLLM, {"vllm_server_max_model_len": "lots"}, ["vllm_server_max_model_len"]),
    ("vllm-port-out-of-range", VLLM, {"vllm_server_instances": [{"name": "main", "port": 70000}]},
     ["vllm_server_instances", "1 to 65535"]),
    ("vllm-unknown-instance-key", VLLM, {"vllm_server_instances": [{"name": "main", "port": 8000, "gpus": 2}]},
     ["vllm_server_instances.gpus", "Supported parameters include"]),
    ("vllm-port-of-node-exporter", VLLM, {"vllm_server_instances": [{"name": "main", "port": 9100}]},
     ["vllm_server_instances, node_exporter_port", "port 9100 is wanted by node_exporter and vllm_server"]),
    ("vllm-served-name-injection", VLLM, {"vllm_server_served_model_name": 'tiny"\nLD_PRELOAD=/tmp/x.so'},
     ["vllm_server_served_model_name"]),
    ("vllm-env-key", VLLM, {"vllm_server_env": {"LD_PRELOAD=/tmp/x.so #": "1"}}, ["vllm_server_env", "must match"]),
    ("vllm-env-value-newline", VLLM, {"vllm_server_env": {"FOO": "1\nLD_PRELOAD=/tmp/x.so"}},
     ["vllm_server_env", "line break"]),
    ("vllm-extra-args-split", VLLM, {"vllm_server_extra_args": ["--max-num-seqs 4 --api-key leaked"]},
     ["vllm_server_extra_args"]),
    ("vllm-api-key-in-env", VLLM, {"vllm_server_env": {"VLLM_API_KEY": "k" * 24}}, ["vllm_server_api_key"]),
    ("vllm-weak-api-key", VLLM, {"vllm_server_api_key": "short"}, ["vllm_server_api_key", "shorter than 16"]),
    # node exporter (every host)
    ("node-port-out-of-range", VLLM, {"node_exporter_port": 70000}, ["node_exporter_port"]),
    ("node-archive-over-http", VLLM, {"node_exporter_install_method": "archive",
                                      "node_exporter_archive_base_url": "http://mirror.example/ne"},
     ["node_exporter_archive_base_url must be https:// or file://", "node_exporter_allow_insecure_mirror"]),
    ("node-listen-injection", VLLM, {"node_exporter_listen_address": "0.0.0.0 --collector.textfile.directory=/tmp"},
     ["node_exporter_listen_address"]),
    ("node-extra-args-specifier", VLLM, {"node_exporter_extra_args": ["--web.config.file=%h/web.yml"]},
     ["node_exporter_extra_args"]),
    # Prometheus
    ("prom-wrong-type", PROM, {"prometheus_port": "ninety"}, ["prometheus_port"]),
    ("prom-port-of-node-exporter", PROM, {"prometheus_port": 9100},
     ["prometheus_port", "port 9100 is wanted by node_exporter and prometheus"]),
    ("prom-external-url-newline", PROM, {"prometheus_external_url": "http://prom.example/" + INJECT},
     ["prometheus_external_url"]),
    ("prom-external-url-percent", PROM, {"prometheus_external_url": "http://prom.example/%i"},
     ["prometheus_external_url"]),
    ("prom-external-url-http-with-tls", PROM,
     {"prometheus_web_tls_cert_file": "/etc/prometheus/tls.crt", "prometheus_web_tls_key_file": "/etc/prometheus/tls.key",
      "prometheus_external_url": "http://prom.example:9090/"},
     ["prometheus_external_url must be an https:// URL"]),
    ("prom-data-dir-space", PROM, {"prometheus_data_dir": "/var/lib/prometheus /etc"}, ["prometheus_data_dir"]),
    ("prom-user-newline", PROM, {"prometheus_user": "prometheus\nUser=root"}, ["prometheus_user"]),
    ("prom-bad-promql", PROM, {"prometheus_extra_rule_files": {"bad": RULE}},
     ['prometheus_extra_rule_files["bad"]', "parse error"]),
    ("prom-rule-file-name-traversal", PROM, {"prometheus_extra_rule_files": {"../../systemd/system/x": RULE}},
     ["prometheus_extra_rule_files"]),
    ("prom-weak-password", PROM,
     {"prometheus_web_basic_auth_users": {"prom": BCRYPT}, "prometheus_web_client_username": "prom",
      "prometheus_web_client_password": "short"},
     ["prometheus_web_client_password"]),
    # gateway
    ("gw-extra-line-newline", MON, {"vllm_gateway_extra_global": ["maxconn 10\n    stats socket /tmp/s level admin"]},
     ["vllm_gateway_extra_global"]),
    ("gw-health-path-injection", MON, {"vllm_gateway_health_path": "/health\n    http-request return status 200"},
     ["vllm_gateway_health_path"]),
    ("gw-timeout-injection", MON, {"vllm_gateway_timeout_client": "10m\n    option forwardfor"},
     ["vllm_gateway_timeout_client"]),
    ("gw-allowed-path-space", MON, {"vllm_gateway_allowed_paths": ["/v1/ /pause"]}, ["vllm_gateway_allowed_paths"]),
    ("gw-backend-address-injection", MON,
     {"vllm_gateway_backends": [{"name": "b1", "address": "10.0.0.1:80 backup", "port": 8000}]},
     ["vllm_gateway_backends"]),
    ("gw-weak-key", MON, {"vllm_gateway_api_keys": [{"name": "team-a", "key": "short"}]}, ["vllm_gateway_api_keys"]),
    ("gw-port-of-grafana", MON, {"vllm_gateway_port": 3000},
     ["vllm_gateway_port", "port 3000 is wanted by"]),
    # Alertmanager
    ("am-port-out-of-range", MON, {"alertmanager_cluster_port": 0}, ["alertmanager_cluster_port"]),
    ("am-external-url-injection", MON, {"alertmanager_external_url": "http://am.example/ --cluster.peer=evil:9094"},
     ["alertmanager_external_url"]),
    ("am-receiver-unknown-key", MON,
     {"alertmanager_receivers": [{"name": "default", "raw": {"bogus": [{"url": "http://x"}]}}],
      "alertmanager_watchdog_receiver": ""},
     ["alertmanager_receivers"]),
    # Grafana
    ("grafana-wrong-type", MON, {"grafana_http_port": "three thousand"}, ["grafana_http_port"]),
    ("grafana-weak-password", MON, {"grafana_admin_password": "admin"}, ["grafana_admin_password"]),
    ("grafana-malformed-dashboard", MON, {"grafana_dashboards": ["@broken.json"]},
     ["grafana_dashboards", "not valid JSON"]),
    ("grafana-dashboard-without-uid", MON, {"grafana_dashboards": ["@no-uid.json"]}, ["grafana_dashboards", "no uid"]),
    ("grafana-unknown-datasource-kind", MON,
     {"grafana_fleet_datasources": [{"name": "Influx", "uid": "influx", "kind": "influxdb", "url": "http://influx:8086",
                                     "is_default": True, "basic_auth_user": "", "basic_auth_password": ""}]},
     ["grafana_fleet_datasources", "kind must be prometheus or victoriametrics"]),
    ("grafana-ini-newline", MON, {"grafana_ini_extra": {"users": {"allow_sign_up": "false\n[security]\nadmin_user = x"}}},
     ["grafana_ini_extra", "users.allow_sign_up"]),
    ("grafana-root-url-http-with-https", MON,
     {"grafana_protocol": "https", "grafana_cert_file": "/etc/grafana/tls.crt", "grafana_cert_key": "/etc/grafana/tls.key",
      "grafana_root_url": "http://grafana.example/"},
     ["grafana_root_url"]),
]


def sh(host, script):
    return subprocess.run(["docker", "exec", host, "sh", "-c", script], capture_output=True, text=True,
                          check=True).stdout


def state():
    """Per host: sha256 of every file under the watched directories, and which
    process of each llmops unit runs (its invocation and start)."""
    files = ("find %s -type f -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum" % " ".join(WATCHED))
    units = "systemctl show -p Id,InvocationID,ExecMainStartTimestampMonotonic,ActiveState %s" % " ".join(
        "'%s'" % u for u in UNITS)
    return {h: {"files": sh(h, files), "units": sh(h, units)} for h in HOSTS}


def run_case(case, extra_dir):
    name, host, extra, _ = case
    text = json.dumps(extra)
    for dashboard in DASHBOARDS:  # dashboard files on the controller
        text = text.replace('"@%s"' % dashboard, json.dumps(os.path.join(extra_dir, dashboard)))
    path = os.path.join(extra_dir, name + ".json")
    with open(path, "w") as f:
        f.write(text)
    return ansible_playbook("site.yml", "--limit", host, "-e", "@" + path, timeout=600)


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    extra_dir = str(tmp_path_factory.mktemp("bad-input"))
    for dashboard, text in DASHBOARDS.items():
        with open(os.path.join(extra_dir, dashboard), "w") as f:
            f.write(text)
    before = state()
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = dict(zip([c[0] for c in CASES], pool.map(lambda c: run_case(c, extra_dir), CASES)))
    wall = time.monotonic() - start
    after = state()
    print("bad-input battery: %d cases, %d at a time, %.0f s wall, %.0f s per run on average" % (
        len(CASES), WORKERS, wall, sum(r[2] for r in results.values()) / len(results)))
    return results, before, after


def test_the_battery_has_cases_across_the_roles():
    assert len(CASES) >= 25
    assert len({c[0] for c in CASES}) == len(CASES)
    prefixes = {c[0].split("-")[0] for c in CASES}
    assert {"vllm", "node", "prom", "gw", "am", "grafana"} <= prefixes


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_fails_naming_the_variable(battery, case):
    name, host, _, expected = case
    rc, out, _ = battery[0][name]
    assert rc != 0, "%s passed on %s:\n%s" % (name, host, out[-3000:])
    # It failed in the preflight play, on the host, before any other play.
    recap = out.split("PLAY RECAP")[-1]
    assert "failed=1" in recap, out[-3000:]
    assert "PLAY [Check every input before any host changes]" in out
    assert out.count("PLAY [") == 1, "a play after the preflight ran:\n" + out[-3000:]
    for text in expected:
        assert text in out, "%r not in the output of %s:\n%s" % (text, name, out[-3000:])


def test_nothing_changed_and_nothing_restarted(battery):
    _, before, after = battery
    for host in HOSTS:
        assert after[host]["files"] == before[host]["files"], host
        assert after[host]["units"] == before[host]["units"], host
