# -*- coding: utf-8 -*-
# Copyright: llmops.vllm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who may reach which port of a host, from the fleet model.

``fleet_firewall`` lists, for one host, every port a service of the fleet listens
on there and the sources that need it: peers (as the fleet model addresses them:
fleet_address, else ansible_host, else the inventory name), the admin networks
and, for the gateway and Grafana, the client networks. Peer addresses may be
names; nftables needs IP addresses, and a name resolves to the right address
only where the traffic comes from (the fleet network), so the host_firewall role
resolves the names that ``fleet_firewall_names`` returns on the host itself and
``fleet_firewall_sets`` turns the rules into IPv4 and IPv6 address lists.

``fleet_prometheus_access`` tells a Grafana host how to reach its Prometheus:
the fleet model's URL with https when that Prometheus serves TLS, and the
credentials that Prometheus's basic auth expects.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.six import string_types

from ansible_collections.llmops.vllm.plugins.filter.fleet import fleet_model

# Ports of services the fleet model does not carry, read from the same host
# variables the roles use, with the roles' defaults.
DEFAULT_PORTS = {
    "node_exporter_port": 9100,
    "gpu_exporter_port": 9400,
    "vllm_gateway_metrics_port": 8405,
    "vllm_gateway_port": 8080,
    "vllm_gateway_tls_port": 8443,
    "prometheus_port": 9090,
    "grafana_http_port": 3000,
    "alertmanager_port": 9093,
    "alertmanager_cluster_port": 9094,
    "triton_metrics_port": 8002,
    "victoriametrics_port": 8428,
    "victoriametrics_vmalert_port": 8880,
}


def _fail(msg):
    raise AnsibleFilterError("fleet firewall: %s" % msg)


def _hv(hostvars, host):
    try:
        return hostvars[host]
    except KeyError:
        _fail("host %s is in a group but has no variables" % host)


def _get(hostvars, host, key, default=None):
    try:
        value = _hv(hostvars, host)[key]
    except KeyError:
        return default
    return default if value is None else value


def _port(hostvars, host, var, default=None):
    value = _get(hostvars, host, var, DEFAULT_PORTS[var] if default is None else default)
    if isinstance(value, string_types) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        _fail("%s of %s must be a port from 1 to 65535, got %r" % (var, host, value))
    return value


def _address(hostvars, host):
    """Where other hosts reach this one, as the fleet model says it."""
    return str(_get(hostvars, host, "fleet_address") or _get(hostvars, host, "ansible_host") or host)


def _list(value, what):
    if value is None:
        return []
    if isinstance(value, string_types) or not is_sequence(value):
        _fail("%s must be a list, got %r" % (what, value))
    return [str(v) for v in value]


def network(value):
    """An address or a CIDR as an ip_network, or None when it is neither (a name)."""
    try:
        return ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError:
        return None


def bad_networks(value):
    """Items of a list that are not an IPv4/IPv6 address or CIDR (for preflight messages)."""
    if value is None:
        return []
    if isinstance(value, string_types) or not is_sequence(value):
        return [str(value)]
    return [str(v) for v in value if not isinstance(v, string_types) or network(v) is None or v.strip() != v]


def fleet_firewall(hostvars, groups, host, admin_networks=None, client_networks=None, extra_rules=None,
                   ssh_ports=None, ssh_sources=None, options=None):
    """The ports of ``host`` and who may reach each: a list of
    ``{name, proto, port, sources}``, one per (proto, port), sorted by port.

    Admin networks reach every port listed here, SSH (``ssh_ports``) included;
    ``ssh_sources`` are further sources of SSH alone (the controller's address).
    """
    admin = _list(admin_networks, "host_firewall_admin_networks")
    clients = _list(client_networks, "host_firewall_client_networks")
    model = fleet_model(hostvars, groups, options)
    members = dict(model["hosts"])
    opts = options or {}
    members["victoriametrics"] = list(groups.get(opts.get("victoriametrics_group", "victoriametrics")) or [])

    def addresses(*roles):
        out = []
        for role in roles:
            for peer in members.get(role) or []:
                out.append(_address(hostvars, peer))
        return out

    rules = {}

    def allow(name, port, sources, proto="tcp"):
        key = (proto, port)
        rule = rules.setdefault(key, {"name": [], "proto": proto, "port": port, "sources": []})
        if name not in rule["name"]:
            rule["name"].append(name)
        for source in list(sources) + admin:
            if source not in rule["sources"]:
                rule["sources"].append(source)

    prometheus = addresses("prometheus")
    if host in members["vllm"]:
        for inst in model["vllm"].get(host) or []:
            allow("vllm %s" % inst["name"], inst["port"], addresses("gateway") + prometheus)
    if host in members["node"]:
        allow("node exporter", _port(hostvars, host, "node_exporter_port"), prometheus)
    if host in members["gpu"]:
        allow("gpu exporter", _port(hostvars, host, "gpu_exporter_port"), prometheus)
    if host in members["gateway"]:
        allow("gateway", _port(hostvars, host, "vllm_gateway_port"), clients)
        if _get(hostvars, host, "vllm_gateway_tls_enabled", False):
            allow("gateway tls", _port(hostvars, host, "vllm_gateway_tls_port"), clients)
        allow("gateway metrics", _port(hostvars, host, "vllm_gateway_metrics_port"), prometheus)
    if host in members["prometheus"]:
        # Grafana reads it; other Prometheus servers may federate from it.
        allow("prometheus", _port(hostvars, host, "prometheus_port"), addresses("grafana") + prometheus)
    if host in members["grafana"]:
        allow("grafana", _port(hostvars, host, "grafana_http_port"), clients + prometheus)
    if host in members["alertmanager"]:
        peers = [_address(hostvars, p) for p in members["alertmanager"] if p != host]
        # vmalert on the global store's hosts sends alerts too.
        allow("alertmanager", _port(hostvars, host, "alertmanager_port"),
              prometheus + addresses("victoriametrics") + peers)
        if peers:
            port = _port(hostvars, host, "alertmanager_cluster_port")
            allow("alertmanager cluster", port, peers, "tcp")
            allow("alertmanager cluster", port, peers, "udp")
    if host in members["triton"]:
        allow("triton metrics", _port(hostvars, host, "triton_metrics_port"), prometheus)
    if host in members["victoriametrics"]:
        allow("victoriametrics", _port(hostvars, host, "victoriametrics_port"),
              prometheus + addresses("grafana"))
        allow("vmalert", _port(hostvars, host, "victoriametrics_vmalert_port"), prometheus)

    for port in ssh_ports or []:
        if isinstance(port, string_types) and port.strip().isdigit():
            port = int(port)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            _fail("host_firewall_ssh_ports must hold ports from 1 to 65535, got %r" % (port,))
        allow("ssh", port, _list(ssh_sources, "ssh sources"))

    for i, extra in enumerate(extra_rules or []):
        if not isinstance(extra, dict) or "port" not in extra:
            _fail("host_firewall_extra_rules[%d] must be a mapping with port and sources, got %r" % (i, extra))
        proto = extra.get("proto", "tcp")
        if proto not in ("tcp", "udp"):
            _fail("host_firewall_extra_rules[%d]: proto must be tcp or udp, got %r" % (i, proto))
        port = extra["port"]
        if isinstance(port, string_types) and port.strip().isdigit():
            port = int(port)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            _fail("host_firewall_extra_rules[%d]: port must be from 1 to 65535, got %r" % (i, port))
        name = re.sub(r"[^\w .,/:-]", "_", str(extra.get("name") or "extra %s/%d" % (proto, port)))
        allow(name, port, _list(extra.get("sources"), "host_firewall_extra_rules[%d].sources" % i), proto)

    out = []
    for key in sorted(rules, key=lambda k: (k[1], k[0])):
        rule = rules[key]
        rule["name"] = ", ".join(rule["name"])
        out.append(rule)
    return out


def fleet_firewall_names(rules):
    """Sources of the rules that are names, not addresses: the role resolves them on the host."""
    names = set()
    for rule in rules or []:
        for source in rule.get("sources") or []:
            if network(source) is None:
                names.add(str(source))
    return sorted(names)


def _collapse(nets):
    return [str(n) if n.prefixlen != n.max_prefixlen else str(n.network_address)
            for n in ipaddress.collapse_addresses(nets)]


def fleet_firewall_sets(rules, resolved=None):
    """The rules with their sources as collapsed IPv4 and IPv6 lists (``ipv4``, ``ipv6``).

    ``resolved`` maps each name to the addresses it resolves to; a name without
    any address is an error (its peer would be locked out).
    """
    resolved = resolved or {}
    out = []
    for rule in rules or []:
        v4, v6 = [], []
        for source in rule.get("sources") or []:
            net = network(source)
            if net is not None:
                nets = [net]
            else:
                addrs = resolved.get(str(source)) or []
                nets = [n for n in (network(a) for a in addrs) if n is not None]
                if not nets:
                    _fail("%s (a source of %s, port %s) resolves to no address on this host; set the peer's "
                          "fleet_address to an IP address or make the name resolvable"
                          % (source, rule.get("name"), rule.get("port")))
            for n in nets:
                (v4 if n.version == 4 else v6).append(n)
        entry = dict(rule)
        entry["ipv4"] = _collapse(v4)
        entry["ipv6"] = _collapse(v6)
        out.append(entry)
    return out


def fleet_getent_ahosts(stdout):
    """Unique addresses of `getent ahosts NAME` output, in order."""
    out = []
    for line in (stdout or "").splitlines():
        parts = line.split()
        if parts and network(parts[0]) is not None and parts[0] not in out:
            out.append(parts[0])
    return out


def fleet_prometheus_access(hostvars, groups, host, options=None):
    """How the Grafana on ``host`` reaches its Prometheus (the fleet model's choice).

    Returns ``{host, url, basic_auth_user, basic_auth_password, tls}``; ``url`` is
    the fleet model's, with https when that Prometheus has a TLS certificate, and
    the credentials are that host's prometheus_web_client_username/password when
    its web config has basic auth users. ``host`` is "" when there is no Prometheus.
    """
    model = fleet_model(hostvars, groups, options)
    proms = model["hosts"]["prometheus"]
    url = model["grafana_prometheus_url"].get(host, "")
    if host in proms:
        prom = host
    elif proms:
        prom = proms[0]
    else:
        return {"host": "", "url": url, "basic_auth_user": "", "basic_auth_password": "", "tls": False}
    tls = bool(_get(hostvars, prom, "prometheus_web_tls_cert_file", ""))
    if tls and url.startswith("http://"):
        url = "https://" + url[len("http://"):]
    users = _get(hostvars, prom, "prometheus_web_basic_auth_users", {}) or {}
    user = str(_get(hostvars, prom, "prometheus_web_client_username", "") or "") if users else ""
    password = str(_get(hostvars, prom, "prometheus_web_client_password", "") or "") if users else ""
    return {"host": prom, "url": url, "basic_auth_user": user, "basic_auth_password": password, "tls": tls}


class FilterModule(object):
    def filters(self):
        return {
            "fleet_firewall": fleet_firewall,
            "fleet_firewall_names": fleet_firewall_names,
            "fleet_firewall_sets": fleet_firewall_sets,
            "fleet_firewall_bad_networks": bad_networks,
            "fleet_getent_ahosts": fleet_getent_ahosts,
            "fleet_prometheus_access": fleet_prometheus_access,
        }
