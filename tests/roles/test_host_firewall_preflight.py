"""The host_firewall role's preflight: the firewall is refused without admin networks,
and every network is checked, with messages that name the variable."""


def test_disabled_by_default_needs_nothing(role_preflight):
    rc, out = role_preflight("host_firewall", {})
    assert rc == 0, out[-3000:]


def test_enabled_without_admin_networks_fails(role_preflight):
    rc, out = role_preflight("host_firewall", {"host_firewall_enabled": True})
    assert rc != 0
    assert "set host_firewall_admin_networks" in out, out[-3000:]


def test_bad_networks_are_named(role_preflight):
    rc, out = role_preflight("host_firewall", {"host_firewall_enabled": True,
                                               "host_firewall_admin_networks": ["10.0.0.0/33", "192.0.2.0/24"]})
    assert rc != 0 and "10.0.0.0/33" in out, out[-3000:]
    rc, out = role_preflight("host_firewall", {"host_firewall_enabled": True,
                                               "host_firewall_admin_networks": ["192.0.2.0/24"],
                                               "host_firewall_client_networks": ["everyone"]})
    assert rc != 0 and "host_firewall_client_networks" in out and "everyone" in out, out[-3000:]


def test_good_settings_and_a_bad_extra_rule(role_preflight):
    good = {"host_firewall_enabled": True, "host_firewall_admin_networks": ["192.0.2.0/24", "2001:db8::/32"]}
    rc, out = role_preflight("host_firewall", good)
    assert rc == 0, out[-3000:]
    rc, out = role_preflight("host_firewall", dict(good, host_firewall_extra_rules=[{"port": 53, "proto": "icmp"}]))
    assert rc != 0 and "host_firewall_extra_rules[0]: proto must be tcp or udp" in out, out[-3000:]
