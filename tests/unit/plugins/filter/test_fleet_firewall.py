"""The host firewall's rules from the fleet model (plugins/filter/fleet_firewall.py)."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.vllm.plugins.filter.fleet_firewall import (
    bad_networks, fleet_firewall, fleet_firewall_names, fleet_firewall_sets, fleet_getent_ahosts,
    fleet_prometheus_access)
from ansible_collections.llmops.vllm.tests.unit.plugins.filter.test_fleet import inventory

ADMIN = ["192.0.2.0/24"]
CLIENTS = ["0.0.0.0/0", "::/0"]


def ports(rules):
    return {(r["proto"], r["port"]): r["sources"] for r in rules}


SPLIT = inventory(
    {"vllm": ["gpu1", "gpu2"], "gpu": ["gpu1", "gpu2"], "prometheus": ["gpu2"],
     "gateway": ["mon"], "grafana": ["mon"], "alertmanager": ["mon"], "triton": ["mon"]},
    {"gpu1": {"ansible_host": "10.0.0.1", "vllm_server_instances": [
        {"name": "main", "port": 8000}, {"name": "second", "port": 8001}]},
     "gpu2": {"ansible_host": "10.0.0.2"},
     "mon": {"fleet_address": "10.0.1.1", "ansible_host": "203.0.113.9"}})


def test_split_layout_vllm_host_with_several_instances():
    hv, groups = SPLIT
    rules = ports(fleet_firewall(hv, groups, "gpu1", ADMIN, CLIENTS))
    # both instances: gateway (fleet_address, not ansible_host) and Prometheus, and the admins
    assert rules[("tcp", 8000)] == ["10.0.1.1", "10.0.0.2"] + ADMIN
    assert rules[("tcp", 8001)] == ["10.0.1.1", "10.0.0.2"] + ADMIN
    assert rules[("tcp", 9100)] == ["10.0.0.2"] + ADMIN
    assert rules[("tcp", 9400)] == ["10.0.0.2"] + ADMIN
    # nothing else: no Prometheus, Grafana or gateway port on this host
    assert set(rules) == {("tcp", 8000), ("tcp", 8001), ("tcp", 9100), ("tcp", 9400)}


def test_host_in_several_groups():
    hv, groups = SPLIT
    prom = ports(fleet_firewall(hv, groups, "gpu2", ADMIN, CLIENTS, ssh_ports=[22]))
    assert prom[("tcp", 9090)] == ["10.0.1.1", "10.0.0.2"] + ADMIN  # Grafana (and Prometheus) only
    assert prom[("tcp", 8000)] == ["10.0.1.1", "10.0.0.2"] + ADMIN
    assert prom[("tcp", 22)] == ADMIN
    mon = ports(fleet_firewall(hv, groups, "mon", ADMIN, CLIENTS))
    assert mon[("tcp", 8080)] == CLIENTS + ADMIN
    assert mon[("tcp", 3000)] == CLIENTS + ["10.0.0.2"] + ADMIN
    assert mon[("tcp", 8405)] == ["10.0.0.2"] + ADMIN
    assert mon[("tcp", 9093)] == ["10.0.0.2"] + ADMIN
    assert mon[("tcp", 8002)] == ["10.0.0.2"] + ADMIN  # Triton's metrics
    assert ("tcp", 9094) not in mon  # a single Alertmanager: no cluster port
    assert ("tcp", 8443) not in mon  # TLS off
    assert ("tcp", 8000) not in mon


def test_all_in_one_layout_gives_loopback_peers_their_own_address():
    hv, groups = inventory({g: ["box"] for g in ("vllm", "prometheus", "gateway", "grafana", "alertmanager")},
                           {"box": {"ansible_host": "10.0.0.5"}})
    rules = ports(fleet_firewall(hv, groups, "box", ADMIN, CLIENTS))
    assert rules[("tcp", 8000)] == ["10.0.0.5"] + ADMIN
    assert rules[("tcp", 9090)] == ["10.0.0.5"] + ADMIN
    assert rules[("tcp", 8080)] == CLIENTS + ADMIN


def test_alertmanager_peers_tls_port_and_custom_ports():
    hv, groups = inventory({"alertmanager": ["am1", "am2"], "prometheus": ["p"], "gateway": ["am1"]},
                           {"am1": {"ansible_host": "10.0.0.1", "alertmanager_port": 9193,
                                    "vllm_gateway_tls_enabled": True, "vllm_gateway_tls_port": "8444"},
                            "am2": {"ansible_host": "10.0.0.2"}, "p": {"ansible_host": "10.0.0.3"}})
    rules = ports(fleet_firewall(hv, groups, "am1", ADMIN, ["198.51.100.0/24"]))
    assert rules[("tcp", 9193)] == ["10.0.0.3", "10.0.0.2"] + ADMIN
    assert rules[("tcp", 9094)] == ["10.0.0.2"] + ADMIN
    assert rules[("udp", 9094)] == ["10.0.0.2"] + ADMIN
    assert rules[("tcp", 8444)] == ["198.51.100.0/24"] + ADMIN


def test_ipv6_names_and_sets():
    hv, groups = inventory({"vllm": ["gpu1"], "prometheus": ["prom"], "gateway": ["gw"]},
                           {"gpu1": {"ansible_host": "2001:db8::1"}, "prom": {"ansible_host": "2001:db8::2"}})
    rules = fleet_firewall(hv, groups, "gpu1", ["2001:db8:ff::/48", "192.0.2.7"], CLIENTS, ssh_ports=["22"],
                           ssh_sources=["198.51.100.4"])
    assert fleet_firewall_names(rules) == ["gw"]  # the gateway has no address: resolved on the host
    sets = {(r["proto"], r["port"]): r for r in fleet_firewall_sets(rules, {"gw": ["10.9.0.1", "2001:db8::3"]})}
    assert sets[("tcp", 8000)]["ipv4"] == ["10.9.0.1", "192.0.2.7"]
    # adjacent addresses collapse into one prefix
    assert sets[("tcp", 8000)]["ipv6"] == ["2001:db8::2/127", "2001:db8:ff::/48"]
    assert sets[("tcp", 22)]["ipv4"] == ["192.0.2.7", "198.51.100.4"]
    with pytest.raises(AnsibleFilterError, match="gw .*resolves to no address"):
        fleet_firewall_sets(rules, {})


def test_sets_collapse_duplicates_and_covered_addresses():
    rules = [{"name": "x", "proto": "tcp", "port": 1, "sources": ["10.0.0.1", "10.0.0.0/24", "10.0.0.1", "::/0"]}]
    out = fleet_firewall_sets(rules)[0]
    assert out["ipv4"] == ["10.0.0.0/24"] and out["ipv6"] == ["::/0"]


def test_extra_rules_and_their_errors():
    hv, groups = inventory({"vllm": ["a"]})
    rules = ports(fleet_firewall(hv, groups, "a", ADMIN, CLIENTS, [
        {"port": 5353, "proto": "udp", "sources": ["10.1.0.0/16"], "name": "mdns\n} bad"}]))
    assert rules[("udp", 5353)] == ["10.1.0.0/16"] + ADMIN
    names = [r["name"] for r in fleet_firewall(hv, groups, "a", ADMIN, CLIENTS, [{"port": 1, "sources": []}])]
    assert "extra tcp/1" in names
    with pytest.raises(AnsibleFilterError, match="proto must be tcp or udp"):
        fleet_firewall(hv, groups, "a", ADMIN, CLIENTS, [{"port": 1, "proto": "icmp"}])
    with pytest.raises(AnsibleFilterError, match=r"host_firewall_extra_rules\[0\]: port"):
        fleet_firewall(hv, groups, "a", ADMIN, CLIENTS, [{"port": 70000}])
    with pytest.raises(AnsibleFilterError, match="host_firewall_ssh_ports"):
        fleet_firewall(hv, groups, "a", ADMIN, CLIENTS, ssh_ports=[0])
    with pytest.raises(AnsibleFilterError, match="host_firewall_admin_networks must be a list"):
        fleet_firewall(hv, groups, "a", "10.0.0.0/8", CLIENTS)


def test_bad_networks_and_getent():
    assert bad_networks(["10.0.0.0/8", "::1", "2001:db8::/32", "10.0.0.5/24"]) == []
    assert bad_networks(["10.0.0.0/33", "bastion", " 10.0.0.1", 5]) == ["10.0.0.0/33", "bastion", " 10.0.0.1", "5"]
    assert bad_networks("10.0.0.0/8") == ["10.0.0.0/8"]
    out = "172.18.0.3      STREAM stack-vllm-2\n172.18.0.3      DGRAM\n172.18.0.3      RAW\nfd00::3 STREAM\n"
    assert fleet_getent_ahosts(out) == ["172.18.0.3", "fd00::3"]


def test_prometheus_access_for_grafana():
    hv, groups = inventory({"prometheus": ["p"], "grafana": ["g", "p"]}, {
        "p": {"ansible_host": "10.0.0.3", "prometheus_web_tls_cert_file": "/etc/prometheus/tls.crt",
              "prometheus_web_basic_auth_users": {"grafana": "$2b$..."},
              "prometheus_web_client_username": "grafana", "prometheus_web_client_password": "s3cret"}})
    remote = fleet_prometheus_access(hv, groups, "g")
    assert remote == {"host": "p", "url": "https://10.0.0.3:9090", "basic_auth_user": "grafana",
                      "basic_auth_password": "s3cret", "tls": True}
    assert fleet_prometheus_access(hv, groups, "p")["url"] == "https://10.0.0.3:9090"
    hv["p"] = {"ansible_host": "10.0.0.3", "prometheus_web_client_username": "grafana"}
    plain = fleet_prometheus_access(hv, groups, "g")
    assert plain["url"] == "http://10.0.0.3:9090" and plain["basic_auth_user"] == "" and not plain["tls"]
    none = fleet_prometheus_access(*inventory({"grafana": ["g"]}), host="g")
    assert none["host"] == "" and none["url"] == ""


def test_global_store_reaches_alertmanager_and_is_read_by_prometheus_and_grafana():
    hv, groups = inventory({"victoriametrics": ["vm"], "alertmanager": ["vm"], "prometheus": ["p1", "p2"],
                            "grafana": ["g"]},
                           {"vm": {"ansible_host": "10.0.2.1"}, "p1": {"ansible_host": "10.0.0.1"},
                            "p2": {"ansible_host": "10.0.0.2"}, "g": {"ansible_host": "10.0.3.1"}})
    rules = ports(fleet_firewall(hv, groups, "vm", ADMIN, CLIENTS))
    assert rules[("tcp", 8428)] == ["10.0.0.1", "10.0.0.2", "10.0.3.1"] + ADMIN
    assert rules[("tcp", 8880)] == ["10.0.0.1", "10.0.0.2"] + ADMIN
    assert rules[("tcp", 9093)] == ["10.0.0.1", "10.0.0.2", "10.0.2.1"] + ADMIN


def test_grafana_port_from_the_grafana_roles_variable_only():
    hv, groups = inventory({"grafana": ["g"], "prometheus": ["p"]}, {"g": {"grafana_http_port": 3300}})
    rules = ports(fleet_firewall(hv, groups, "g", ADMIN, CLIENTS))
    assert ("tcp", 3300) in rules and ("tcp", 3000) not in rules
    # The fleet model scrapes Grafana on the same port the firewall opens.
    assert ("tcp", 3000) in ports(fleet_firewall(*inventory({"grafana": ["g"]}, {"g": {"grafana_port": 3300}}),
                                                 host="g", admin_networks=ADMIN, client_networks=CLIENTS))
