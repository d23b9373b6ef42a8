# -*- coding: utf-8 -*-
# Copyright: llmops.vllm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet model: one place that turns the inventory into the fleet's shape.

Every role and playbook reads the fleet from here instead of walking ``groups``
and ``hostvars`` in Jinja: which hosts run which service, each vLLM host's
resolved instances (the one default instance list lives here), the gateway's
backends and their names, Prometheus's target groups, the sites (each vLLM or
GPU host is scraped by the Prometheus of its site, sharded by hashmod or run as
an HA pair), the global store (VictoriaMetrics), Grafana's datasources and the
URLs services use to reach each other.

Only inventory variables (and extra vars and facts) are visible in ``hostvars``;
role defaults are not. Values a role may default (ports, groups) therefore come
in through ``options``, which each role fills from its own variables.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.six import string_types

# The single default: a vLLM host that does not set vllm_server_instances runs
# one instance called "main" on port 8000.
DEFAULT_INSTANCES = ({"name": "main", "port": 8000},)

INSTANCE_KEYS = frozenset((
    "name", "port", "cuda_visible_devices", "tensor_parallel_size",
    "gpu_memory_utilization", "max_model_len", "extra_args", "env",
))
INSTANCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
# HAProxy server names: letters, digits, '-', '_', '.' and ':'.
SERVER_NAME_BAD = re.compile(r"[^A-Za-z0-9_.:-]")

DEFAULT_OPTIONS = {
    # Inventory groups of each service.
    "vllm_group": "vllm",
    "gpu_group": "gpu",
    "gateway_group": "gateway",
    "prometheus_group": "prometheus",
    "grafana_group": "grafana",
    "alertmanager_group": "alertmanager",
    # The global store every Prometheus remote-writes to (VictoriaMetrics single-node).
    "victoriametrics_group": "victoriametrics",
    # Optional: hosts running NVIDIA Triton Inference Server (scraped, not deployed).
    "triton_group": "triton",
    "node_group": "all",
    # Ports, used when a host does not set the service's own port variable.
    "node_exporter_port": 9100,
    "gpu_exporter_port": 9400,
    "gateway_metrics_port": 8405,
    "gateway_metrics_path": "/metrics",
    "prometheus_port": 9090,
    "grafana_port": 3000,
    "alertmanager_port": 9093,
    "victoriametrics_port": 8428,
    # Triton's metrics port (tritonserver --metrics-port, 8002 by default).
    "triton_metrics_port": 8002,
    # Name of Prometheus's job for the vLLM instances.
    "vllm_job": "vllm",
    # Sites: the host variable naming a host's site, and the site of hosts that
    # do not set it ("": the site of the first Prometheus host, else "default").
    "site_var": "fleet_site",
    "default_site": "",
    # A site with several Prometheus hosts: "shard" (hashmod: each target scraped
    # by exactly one of them) or "ha" (every one scrapes every target, labelled
    # replica=<host>). A Prometheus host's own prometheus_site_mode variable wins.
    "prometheus_site_mode": "shard",
}

# Listen addresses that mean every interface of the host.
WILDCARDS = ("0.0.0.0", "::", "[::]")

SITE_MODES = ("shard", "ha")
SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

# Host variable that each service's port is read from, when the inventory sets it.
PORT_VARS = {
    "node_exporter_port": "node_exporter_port",
    "gpu_exporter_port": "gpu_exporter_port",
    "gateway_metrics_port": "vllm_gateway_metrics_port",
    "prometheus_port": "prometheus_port",
    # The grafana role's own variable (grafana_http_port), as its firewall rule reads it.
    "grafana_port": "grafana_http_port",
    "alertmanager_port": "alertmanager_port",
    "victoriametrics_port": "victoriametrics_port",
    "triton_metrics_port": "triton_metrics_port",
}


def _fail(msg):
    raise AnsibleFilterError("fleet model: %s" % msg)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _port(value, what):
    """A TCP port given as an integer or a string of digits."""
    if isinstance(value, string_types) and value.strip().isdigit():
        value = int(value)
    if not _is_int(value) or not 1 <= value <= 65535:
        _fail("%s must be a port from 1 to 65535, got %r" % (what, value))
    return value


def resolve_instances(value, host="this host"):
    """A host's vLLM instances: its vllm_server_instances, or the default.

    ``None`` (the variable is not set) gives the default; an empty list is kept
    as it is (a host that runs no instance), and the vllm_server role's preflight
    rejects it on a host of the vLLM group.
    """
    if value is None:
        return [dict(i) for i in DEFAULT_INSTANCES]
    if not is_sequence(value):
        _fail("vllm_server_instances of %s must be a list, got %s" % (host, type(value).__name__))
    out = []
    for item in value:
        if not isinstance(item, dict):
            _fail("vllm_server_instances of %s holds %r, which is not a mapping" % (host, item))
        unknown = sorted(set(item) - INSTANCE_KEYS)
        if unknown:
            _fail("vllm_server_instances of %s: unknown keys %s (allowed: %s)"
                  % (host, ", ".join(unknown), ", ".join(sorted(INSTANCE_KEYS))))
        name = item.get("name")
        if not isinstance(name, string_types) or not INSTANCE_NAME.match(name):
            _fail("vllm_server_instances of %s: instance name %r must match %s"
                  % (host, name, INSTANCE_NAME.pattern))
        resolved = dict(item)
        resolved["port"] = _port(item.get("port"), "vllm_server_instances of %s, instance %s: port" % (host, name))
        out.append(resolved)
    names = [i["name"] for i in out]
    ports = [i["port"] for i in out]
    if len(set(names)) != len(names):
        _fail("vllm_server_instances of %s: instance names must be unique (%s)" % (host, ", ".join(names)))
    if len(set(ports)) != len(ports):
        _fail("vllm_server_instances of %s: every instance needs its own port (%s)"
              % (host, ", ".join(str(p) for p in ports)))
    return out


def server_name(host, instance):
    """The gateway's server name of one instance: <host>_<instance>."""
    return SERVER_NAME_BAD.sub("_", "%s_%s" % (host, instance))


def url_host(address):
    """An address as it goes into a URL or host:port (IPv6 in brackets)."""
    address = str(address)
    return "[%s]" % address if ":" in address and not address.startswith("[") else address


def _groups_get(groups, name):
    if not name:
        return []
    return list(groups.get(name) or [])


class _Hosts:
    """Reads each host's variables once: hostvars resolves every variable on access."""

    def __init__(self, hostvars):
        self._hostvars = hostvars
        self._cache = {}

    def vars(self, host):
        if host not in self._cache:
            try:
                self._cache[host] = self._hostvars[host]
            except KeyError:
                _fail("host %s is in a group but has no variables" % host)
        return self._cache[host]

    def get(self, host, key, default=None):
        hv = self.vars(host)
        try:
            value = hv[key]
        except KeyError:
            return default
        return default if value is None else value

    def address(self, host):
        """Where other hosts reach this one: fleet_address, else ansible_host, else its name."""
        return str(self.get(host, "fleet_address") or self.get(host, "ansible_host") or host)

    def local_address(self, host, listen_var):
        """Where a client on the host itself reaches the service that listens on ``listen_var``:
        that address when the inventory sets one, 127.0.0.1 for a wildcard, else
        the address the host's services bind to by default (__fleet_bind_address,
        set by each role's preflight), else the fleet address."""
        listen = str(self.get(host, listen_var, "") or "")
        if listen in WILDCARDS:
            return "127.0.0.1"
        return listen or str(self.get(host, "__fleet_bind_address") or self.address(host))


def fleet_model(hostvars, groups, options=None):
    """The fleet's shape from the inventory. See the module docstring."""
    opts = dict(DEFAULT_OPTIONS)
    opts.update(options or {})
    hosts = _Hosts(hostvars)

    def port_of(host, key):
        var = PORT_VARS.get(key)
        value = hosts.get(host, var) if var else None
        return _port(value if value is not None else opts[key], "%s of %s" % (var or key, host))

    members = {}
    for role in ("vllm", "gpu", "gateway", "prometheus", "grafana", "alertmanager", "victoriametrics", "triton"):
        members[role] = _groups_get(groups, opts[role + "_group"])
    members["node"] = _groups_get(groups, opts["node_group"])

    # vLLM instances and the gateway's backends.
    vllm = {}
    backends = []
    seen_servers = {}
    for host in members["vllm"]:
        address = hosts.address(host)
        model = hosts.get(host, "vllm_server_served_model_name") or hosts.get(host, "vllm_server_model") or ""
        instances = []
        for inst in resolve_instances(hosts.get(host, "vllm_server_instances"), host):
            name = server_name(host, inst["name"])
            if name in seen_servers:
                _fail("gateway server name %s is shared by %s and %s/%s; rename a host or an instance"
                      % (name, seen_servers[name], host, inst["name"]))
            seen_servers[name] = "%s/%s" % (host, inst["name"])
            entry = {
                "host": host,
                "name": inst["name"],
                "port": inst["port"],
                "unit": "vllm@%s.service" % inst["name"],
                "server": name,
                "address": address,
                "target": "%s:%d" % (url_host(address), inst["port"]),
                "model": str(model),
            }
            instances.append(entry)
            backends.append({"name": name, "address": address, "port": inst["port"],
                             "host": host, "instance": inst["name"]})
        vllm[host] = instances

    # Prometheus target groups, by job.
    targets = {}
    vllm_tgs = []
    for host in members["vllm"]:
        for inst in vllm[host]:
            labels = {"host": host, "vllm_instance": inst["name"]}
            if inst["model"]:
                labels["vllm_model"] = inst["model"]
            vllm_tgs.append({"targets": [inst["target"]], "labels": labels})
    if vllm_tgs:
        targets[opts["vllm_job"]] = vllm_tgs

    def host_job(job, group, port_key):
        tgs = [{"targets": ["%s:%d" % (url_host(hosts.address(h)), port_of(h, port_key))], "labels": {"host": h}}
               for h in members[group]]
        if tgs:
            targets[job] = tgs

    host_job("node", "node", "node_exporter_port")
    host_job("gpu", "gpu", "gpu_exporter_port")
    host_job("gateway", "gateway", "gateway_metrics_port")
    host_job("grafana", "grafana", "grafana_port")
    host_job("alertmanager", "alertmanager", "alertmanager_port")
    host_job("victoriametrics", "victoriametrics", "victoriametrics_port")
    # Triton's /metrics: its own inference and GPU metrics, and the vLLM backend's
    # vllm:* series (labelled model and version) from Triton 24.08 on.
    host_job("triton", "triton", "triton_metrics_port")

    # How each Grafana reaches a Prometheus: its own when it runs one, else the first.
    prometheus_urls = {h: "http://%s:%d" % (url_host(hosts.address(h)), port_of(h, "prometheus_port"))
                       for h in members["prometheus"]}
    grafana_prometheus_url = {}
    for host in members["grafana"]:
        if host in prometheus_urls:
            grafana_prometheus_url[host] = "http://%s:%d" % (
                url_host(hosts.local_address(host, "prometheus_listen_address")), port_of(host, "prometheus_port"))
        elif members["prometheus"]:
            grafana_prometheus_url[host] = prometheus_urls[members["prometheus"][0]]

    services = {}
    for role, label in (("gpu", "gpu"), ("vllm", "vllm"), ("gateway", "gateway"), ("node", "node_exporter"),
                        ("prometheus", "prometheus"), ("grafana", "grafana"), ("alertmanager", "alertmanager"),
                        ("victoriametrics", "victoriametrics")):
        for host in members[role]:
            services.setdefault(host, [])
            if label not in services[host]:
                services[host].append(label)

    sites, site_prometheus, host_sites = _sites(hosts, members, targets, opts)
    vm_urls = ["http://%s:%d" % (url_host(hosts.address(h)), port_of(h, "victoriametrics_port"))
               for h in members["victoriametrics"]]

    datasources = _grafana_datasources(hosts, members, sites, prometheus_urls, vm_urls)

    return {
        "hosts": members,
        "services": services,
        "sites": sites,
        "grafana_datasources": datasources,
        "site_of": host_sites,
        "prometheus": site_prometheus,
        "victoriametrics_urls": vm_urls,
        "remote_write_urls": [u + "/api/v1/write" for u in vm_urls],
        "vllm": vllm,
        "gateway_backends": backends,
        "scrape_targets": targets,
        "prometheus_urls": prometheus_urls,
        "grafana_prometheus_url": grafana_prometheus_url,
        "alertmanager_targets": ["%s:%d" % (url_host(hosts.address(h)), port_of(h, "alertmanager_port"))
                                 for h in members["alertmanager"]],
    }


def _prometheus_access(hosts, host, url):
    """``url`` with https when the Prometheus on ``host`` serves TLS, and the
    credentials of its web config's basic auth (prometheus_web_client_*) when it has users."""
    if hosts.get(host, "prometheus_web_tls_cert_file") and url.startswith("http://"):
        url = "https://" + url[len("http://"):]
    user = password = ""
    if hosts.get(host, "prometheus_web_basic_auth_users"):
        user = str(hosts.get(host, "prometheus_web_client_username", ""))
        password = str(hosts.get(host, "prometheus_web_client_password", ""))
    return url, user, password


def _grafana_datasources(hosts, members, sites, prometheus_urls, vm_urls):
    """Grafana's datasources beyond one Prometheus.

    With a global store (group victoriametrics): the store first, as the default
    datasource (a Prometheus-type datasource at its URL, with its basic auth when
    the store's host sets victoriametrics_basic_auth_username), then one per site
    Prometheus, not default: one per shard of a sharded site (each holds its own
    share of the site's targets), one per site for an HA pair (its first replica;
    the replicas hold the same series). Without a store but with several
    Prometheus hosts: the same per-site list, the first one default. One
    Prometheus and no store: empty (the grafana role's one datasource).
    """
    datasources = []
    if vm_urls:
        store = members["victoriametrics"][0]
        user = str(hosts.get(store, "victoriametrics_basic_auth_username", ""))
        datasources.append({
            "name": "Global store", "uid": "global", "url": vm_urls[0], "site": "", "host": store,
            "kind": "victoriametrics", "is_default": True, "basic_auth_user": user,
            "basic_auth_password": str(hosts.get(store, "victoriametrics_basic_auth_password", "")) if user else "",
        })
    if vm_urls or len(sites) > 1 or len(members["prometheus"]) > 1:
        for name, site in sites.items():
            proms = site["prometheus"][:1] if site["mode"] == "ha" else site["prometheus"]
            for index, host in enumerate(proms):
                shard = len(proms) > 1
                url, user, password = _prometheus_access(hosts, host, prometheus_urls[host])
                datasources.append({
                    "name": "Prometheus %s%s" % (name, " shard %d" % index if shard else ""),
                    "uid": "prometheus-%s%s" % (name, "-%d" % index if shard else ""), "url": url,
                    "site": name, "host": host, "kind": "prometheus", "is_default": not datasources,
                    "basic_auth_user": user, "basic_auth_password": password if user else "",
                })
    return datasources


def _sites(hosts, members, targets, opts):
    """Sites, each Prometheus host's share of the targets and its external labels.

    A host's site is its ``fleet_site`` variable (``options.site_var``), else the
    default site. Every target goes to the Prometheus hosts of its host's site; a
    site with targets but no Prometheus is an inventory error (only when there is
    a Prometheus at all). With several Prometheus hosts a site either shards
    (each keeps the targets whose address hashes, modulo their number, to its
    index) or runs an HA pair (each scrapes all, labelled replica=<host>).
    """
    def site_var(host):
        value = hosts.get(host, opts["site_var"])
        if value in (None, ""):
            return None
        value = str(value)
        if not SITE_NAME.match(value):
            _fail("%s of %s must match %s, got %r" % (opts["site_var"], host, SITE_NAME.pattern, value))
        return value

    prom = members["prometheus"]
    default = opts.get("default_site") or (site_var(prom[0]) if prom else None) or "default"
    host_sites = {}

    def site_of(host):
        if host not in host_sites:
            host_sites[host] = site_var(host) or default
        return host_sites[host]

    sites = {}
    for host in prom:
        site = sites.setdefault(site_of(host), {"prometheus": [], "mode": None, "hosts": []})
        site["prometheus"].append(host)
        mode = hosts.get(host, "prometheus_site_mode")
        if mode is not None:
            if mode not in SITE_MODES:
                _fail("prometheus_site_mode of %s must be one of %s, got %r" % (host, ", ".join(SITE_MODES), mode))
            if site["mode"] not in (None, mode):
                _fail("the Prometheus hosts of site %s disagree on prometheus_site_mode" % site_of(host))
            site["mode"] = mode
    for name, site in sites.items():
        site["mode"] = site["mode"] or opts["prometheus_site_mode"]
        if site["mode"] not in SITE_MODES:
            _fail("prometheus_site_mode must be one of %s, got %r" % (", ".join(SITE_MODES), site["mode"]))

    # Each site's target groups, by job (the order of the fleet's targets kept).
    site_targets = {name: {} for name in sites}
    orphans = {}
    seen = set()
    for job, tgs in targets.items():
        for tg in tgs:
            site = site_of(tg["labels"]["host"])
            if site in site_targets:
                site_targets[site].setdefault(job, []).append(tg)
                if tg["labels"]["host"] not in seen:
                    seen.add(tg["labels"]["host"])
                    sites[site]["hosts"].append(tg["labels"]["host"])
            else:
                orphans.setdefault(site, set()).add(tg["labels"]["host"])
    if prom and orphans:
        _fail("; ".join("hosts %s are in site %s (%s), which has no host of the Prometheus group"
                        % (", ".join(sorted(hs)), site, opts["site_var"]) for site, hs in sorted(orphans.items()))
              + ": give that site a Prometheus host or move the hosts to a site that has one")

    per_host = {}
    for name, site in sites.items():
        count = len(site["prometheus"])
        for index, host in enumerate(site["prometheus"]):
            labels = {"site": name}
            shard = None
            if count > 1 and site["mode"] == "ha":
                labels["replica"] = host
            elif count > 1:
                labels["shard"] = str(index)
                shard = {"modulus": count, "index": index}
            per_host[host] = {
                "site": name,
                "mode": site["mode"],
                "index": index,
                "count": count,
                "shard": shard,
                "external_labels": labels,
                "scrape_targets": site_targets[name],
            }
    return sites, per_host, host_sites


def fleet_urls(hostvars, groups, service, options=None):
    """URLs of every host of one service's group (prometheus, grafana, alertmanager or victoriametrics).

    Reads only that group's hosts, so a role on every vLLM host can ask for the
    Alertmanagers without walking the whole fleet.
    """
    ports = {"prometheus": "prometheus_port", "grafana": "grafana_port", "alertmanager": "alertmanager_port",
             "victoriametrics": "victoriametrics_port"}
    if service not in ports:
        _fail("fleet_urls knows prometheus, grafana, alertmanager and victoriametrics, not %r" % service)
    opts = dict(DEFAULT_OPTIONS)
    opts.update(options or {})
    hosts = _Hosts(hostvars)
    key = ports[service]
    out = []
    for host in _groups_get(groups, opts[service + "_group"]):
        value = hosts.get(host, PORT_VARS[key])
        port = _port(value if value is not None else opts[key], "%s of %s" % (PORT_VARS[key], host))
        out.append("http://%s:%d" % (url_host(hosts.address(host)), port))
    return out


def fleet_local_host(hostvars, host, listen_var):
    """Where a client on ``host`` reaches that host's service listening on ``listen_var``,
    as it goes into a URL (see _Hosts.local_address)."""
    return url_host(_Hosts(hostvars).local_address(host, listen_var))


def fleet_instances(value, host):
    """One host's resolved instances, as fleet_model gives them to the gateway and Prometheus.

    Each item keeps the inventory's keys and gains ``unit`` and ``server`` (the
    gateway's name for it). The vllm_server role reads its own host through this,
    so it never needs the whole fleet.
    """
    out = []
    for inst in resolve_instances(value, host):
        inst["unit"] = "vllm@%s.service" % inst["name"]
        inst["server"] = server_name(host, inst["name"])
        out.append(inst)
    return out


def _ip(value):
    try:
        return ipaddress.ip_address(str(value).strip().strip("[]"))
    except ValueError:
        return None


def fleet_bind_address(address, local_addresses, resolved=None, default_address=""):
    """The address a host's services listen on when their role's listen variable is "".

    ``address`` is the host's fleet address (fleet_address, else ansible_host,
    else its inventory name), ``local_addresses`` the host's own addresses (its
    network facts), ``resolved`` what the name resolves to on the host itself
    (`getent ahosts`, a list) and ``default_address`` the address of its default
    route. The fleet address wins when it is one of the host's own (a loopback
    address counts: a one-host lab may ask for it); for a name, the first address
    it resolves to that is the host's own and not loopback (Debian maps the host
    name to 127.0.1.1, where no peer can reach it); otherwise the default route's
    address (the fleet address is then a NAT or proxy in front of the host).
    Fails, naming the variables to set, when none of these exists.
    """
    own = set()
    for item in local_addresses or []:
        ip = _ip(item)
        if ip is not None:
            own.add(ip)
    literal = _ip(address)
    if literal is not None and (literal in own or literal.is_loopback):
        return str(literal)
    if literal is None:
        for item in resolved or []:
            ip = _ip(item)
            if ip is not None and ip in own and not ip.is_loopback:
                return str(ip)
    if _ip(default_address) is not None:
        return str(_ip(default_address))
    _fail("no address of this host to listen on: its fleet address %r is not one of its own addresses (%s) "
          "and it has no default route; set fleet_address to one of them, or set the role's listen address "
          "variable (0.0.0.0 listens everywhere)"
          % (str(address), ", ".join(sorted(str(a) for a in own)) or "none"))


def port_conflicts(ports_by_service):
    """Ports of one host that more than one service (or instance) would listen on.

    ``ports_by_service`` maps a service name to the list of ports it listens on;
    returns one message per port wanted twice.
    """
    owners = {}
    for service, ports in sorted((ports_by_service or {}).items()):
        for port in ports or []:
            owners.setdefault(int(port), []).append(str(service))
    return ["port %d is wanted by %s" % (port, " and ".join(names))
            for port, names in sorted(owners.items()) if len(names) > 1]


class FilterModule(object):
    def filters(self):
        return {
            "fleet_model": fleet_model,
            "fleet_instances": fleet_instances,
            "fleet_urls": fleet_urls,
            "fleet_port_conflicts": port_conflicts,
            "fleet_bind_address": fleet_bind_address,
            "fleet_local_host": fleet_local_host,
        }
