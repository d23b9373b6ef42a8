"""Prometheus's basic auth and TLS reach Grafana's datasource: the grafana role's
defaults, read from the Prometheus host's variables, rendered into the
provisioning file (the "files" method; the "modules" method passes the same
variables to llmops.vllm.grafana_datasource)."""

import json
import os
import subprocess
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ROLE = os.path.join(ROOT, "roles", "grafana")
PLAYBOOK = """
- hosts: graf
  connection: local
  gather_facts: false
  vars_files: [{role}/defaults/main.yml, {role}/vars/main.yml]
  tasks:
    - ansible.builtin.template:
        src: {role}/templates/datasource.yaml.j2
        dest: {dest}
"""


def render(tmp_path, prom_vars, grafana_vars=None, vm_vars=None):
    """The first datasource; every one with vm_vars (a global store host "vm" is then in the inventory)."""
    inventory = {"all": {"hosts": {
        "prom": dict({"ansible_host": "10.0.0.3"}, **prom_vars),
        "graf": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
        "children": {"prometheus": {"hosts": {"prom": {}}}, "grafana": {"hosts": {"graf": {}}}}}}
    if vm_vars is not None:
        inventory["all"]["hosts"]["vm"] = dict({"ansible_host": "10.0.0.9"}, **vm_vars)
        inventory["all"]["children"]["victoriametrics"] = {"hosts": {"vm": {}}}
    (tmp_path / "hosts.json").write_text(json.dumps(inventory))
    # The role's settings as extra vars: vars_files (the defaults here) outrank the inventory.
    (tmp_path / "extra.json").write_text(json.dumps(grafana_vars or {}))
    dest = tmp_path / "datasource.yaml"
    (tmp_path / "play.yml").write_text(PLAYBOOK.format(role=ROLE, dest=dest))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "collections"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
                           str(tmp_path / "hosts.json"), str(tmp_path / "play.yml"),
                           "-e", "@" + str(tmp_path / "extra.json")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    datasources = yaml.safe_load(dest.read_text())["datasources"]
    return datasources if vm_vars is not None else datasources[0]


def test_plain_prometheus_gets_no_credentials(tmp_path):
    ds = render(tmp_path, {})
    assert ds["url"] == "http://10.0.0.3:9090"
    assert "basicAuth" not in ds and "secureJsonData" not in ds


def test_basic_auth_and_tls_of_the_prometheus_host(tmp_path):
    ds = render(tmp_path, {"prometheus_web_basic_auth_users": {"grafana": "$2b$10$x"},
                           "prometheus_web_client_username": "grafana",
                           "prometheus_web_client_password": "s3cret-pass",
                           "prometheus_web_tls_cert_file": "/etc/prometheus/tls.crt"},
                {"grafana_prometheus_tls_ca_cert": "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----"})
    assert ds["url"] == "https://10.0.0.3:9090"
    assert ds["basicAuth"] is True and ds["basicAuthUser"] == "grafana"
    assert ds["secureJsonData"]["basicAuthPassword"] == "s3cret-pass"
    assert ds["secureJsonData"]["tlsCACert"].startswith("-----BEGIN CERTIFICATE-----")
    assert ds["jsonData"]["tlsAuthWithCACert"] is True and ds["jsonData"]["httpMethod"] == "POST"


def test_global_store_is_the_default_with_its_basic_auth_and_the_site_stays(tmp_path):
    store, site = render(tmp_path, {"prometheus_web_basic_auth_users": {"grafana": "$2b$10$x"},
                                    "prometheus_web_client_username": "grafana",
                                    "prometheus_web_client_password": "prom-pass"},
                         {"grafana_prometheus_tls_ca_cert": "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----"},
                         vm_vars={"victoriametrics_basic_auth_username": "fleet",
                                  "victoriametrics_basic_auth_password": "vm-pass"})
    assert (store["uid"], store["url"], store["isDefault"], store["type"]) == (
        "global", "http://10.0.0.9:8428", True, "prometheus")
    assert store["basicAuthUser"] == "fleet" and store["secureJsonData"] == {"basicAuthPassword": "vm-pass"}
    assert "tlsAuthWithCACert" not in store["jsonData"]
    assert (site["uid"], site["url"], site["isDefault"]) == ("prometheus-default", "http://10.0.0.3:9090", False)
    assert site["basicAuthUser"] == "grafana" and site["secureJsonData"]["basicAuthPassword"] == "prom-pass"
    assert site["secureJsonData"]["tlsCACert"].startswith("-----BEGIN") and site["jsonData"]["tlsAuthWithCACert"]


def test_global_store_without_auth_and_the_one_datasource_when_set_empty(tmp_path):
    store, site = render(tmp_path, {}, vm_vars={})
    assert store["isDefault"] is True and "basicAuth" not in store and "secureJsonData" not in store
    assert site["isDefault"] is False
    only = render(tmp_path, {}, {"grafana_fleet_datasources": []}, vm_vars={})
    assert [(d["uid"], d["url"], d["isDefault"]) for d in only] == [("prometheus", "http://10.0.0.3:9090", True)]


def test_datasources_given_by_hand_may_leave_out_the_optional_keys(tmp_path):
    """Only uid, name, url and kind: not the default, and no basic auth."""
    given = [{"uid": "east", "name": "East", "url": "http://10.0.1.3:9090", "kind": "prometheus"},
             {"uid": "west", "name": "West", "url": "http://10.0.2.3:9090", "kind": "prometheus", "is_default": True}]
    east, west = render(tmp_path, {}, {"grafana_fleet_datasources": given}, vm_vars={})
    assert (east["uid"], east["isDefault"], west["uid"], west["isDefault"]) == ("east", False, "west", True)
    assert "basicAuth" not in east and "secureJsonData" not in east
