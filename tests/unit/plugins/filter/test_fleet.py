"""The fleet model (plugins/filter/fleet.py) on the layouts and edge cases it must handle."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.vllm.plugins.filter.fleet import (
    fleet_bind_address, fleet_instances, fleet_model, fleet_urls, port_conflicts, server_name)
from ansible_collections.llmops.vllm.plugins.filter.vllm_server import vllm_instance_config


def inventory(groups, hostvars=None):
    hostvars = dict(hostvars or {})
    for members in groups.values():
        for h in members:
            hostvars.setdefault(h, {})
    groups = dict(groups)
    groups.setdefault("all", sorted(hostvars))
    return hostvars, groups


def test_default_instance_when_unset_and_empty_list_kept():
    hv, groups = inventory({"vllm": ["a", "b"]}, {"b": {"vllm_server_instances": []}})
    model = fleet_model(hv, groups)
    assert [(i["name"], i["port"]) for i in model["vllm"]["a"]] == [("main", 8000)]
    assert model["vllm"]["b"] == []
    # The gateway and Prometheus agree: no backend and no target for b.
    assert [b["name"] for b in model["gateway_backends"]] == ["a_main"]
    assert [tg["labels"]["host"] for tg in model["scrape_targets"]["vllm"]] == ["a"]


def test_several_instances_per_host_give_one_backend_and_target_each():
    hv, groups = inventory({"vllm": ["gpu1"]}, {"gpu1": {
        "ansible_host": "10.0.0.1", "vllm_server_model": "Qwen/Qwen3-8B",
        "vllm_server_instances": [{"name": "g01", "port": 8000, "cuda_visible_devices": "0,1"},
                                  {"name": "g23", "port": "8001"}]}})
    model = fleet_model(hv, groups)
    assert [(b["name"], b["address"], b["port"]) for b in model["gateway_backends"]] == [
        ("gpu1_g01", "10.0.0.1", 8000), ("gpu1_g23", "10.0.0.1", 8001)]
    tgs = model["scrape_targets"]["vllm"]
    assert [tg["targets"] for tg in tgs] == [["10.0.0.1:8000"], ["10.0.0.1:8001"]]
    assert tgs[1]["labels"] == {"host": "gpu1", "vllm_instance": "g23", "vllm_model": "Qwen/Qwen3-8B"}
    assert model["vllm"]["gpu1"][1]["unit"] == "vllm@g23.service"


def test_served_model_name_wins_and_fleet_address_wins():
    hv, groups = inventory({"vllm": ["h"]}, {"h": {
        "ansible_host": "203.0.113.1", "fleet_address": "10.1.0.1",
        "vllm_server_model": "/models/x", "vllm_server_served_model_name": "x"}})
    model = fleet_model(hv, groups)
    assert model["scrape_targets"]["vllm"][0] == {"targets": ["10.1.0.1:8000"],
                                                  "labels": {"host": "h", "vllm_instance": "main", "vllm_model": "x"}}


def test_split_layout():
    hv, groups = inventory({
        "gpu": ["gpu-1", "gpu-2"], "vllm": ["gpu-1", "gpu-2"], "gateway": ["gpu-1"],
        "prometheus": ["gpu-2"], "grafana": ["graf"], "monitoring": ["gpu-2", "graf"]},
        {"gpu-2": {"ansible_host": "10.0.10.12"}, "graf": {"ansible_host": "203.0.113.20"}})
    model = fleet_model(hv, groups)
    assert model["hosts"]["prometheus"] == ["gpu-2"]
    assert model["hosts"]["grafana"] == ["graf"]
    assert model["grafana_prometheus_url"] == {"graf": "http://10.0.10.12:9090"}
    assert model["services"]["gpu-2"] == ["gpu", "vllm", "node_exporter", "prometheus"]
    assert model["services"]["graf"] == ["node_exporter", "grafana"]
    assert [tg["targets"][0] for tg in model["scrape_targets"]["grafana"]] == ["203.0.113.20:3000"]
    assert [tg["targets"][0] for tg in model["scrape_targets"]["gpu"]] == ["gpu-1:9400", "10.0.10.12:9400"]


def test_all_in_one_layout_grafana_reads_its_own_prometheus():
    hv, groups = inventory({g: ["box"] for g in ("gpu", "vllm", "gateway", "prometheus", "grafana")},
                           {"box": {"ansible_host": "192.0.2.10", "prometheus_port": 9091}})
    model = fleet_model(hv, groups)
    # Prometheus listens on the host's fleet address, not on loopback.
    assert model["grafana_prometheus_url"] == {"box": "http://192.0.2.10:9091"}
    assert model["services"]["box"] == ["gpu", "vllm", "gateway", "node_exporter", "prometheus", "grafana"]


def test_host_in_several_groups_counted_once_per_job():
    hv, groups = inventory({"vllm": ["x"], "gateway": ["x"], "gpu": ["x"]})
    model = fleet_model(hv, groups)
    assert len(model["scrape_targets"]["node"]) == 1
    assert model["services"]["x"] == ["gpu", "vllm", "gateway", "node_exporter"]


def test_port_variables_of_a_host_win():
    hv, groups = inventory({"gateway": ["gw"], "alertmanager": ["am1", "am2"]},
                           {"gw": {"vllm_gateway_metrics_port": 9405, "node_exporter_port": "9101"},
                            "am2": {"ansible_host": "fd00::2"}})
    model = fleet_model(hv, groups, {"alertmanager_port": 9193})
    assert model["scrape_targets"]["gateway"][0]["targets"] == ["gw:9405"]
    assert [tg["targets"][0] for tg in model["scrape_targets"]["node"] if tg["labels"]["host"] == "gw"] == ["gw:9101"]
    assert model["alertmanager_targets"] == ["am1:9193", "[fd00::2]:9193"]


def test_names_with_odd_characters_make_valid_unique_server_names():
    assert server_name("gpu node/1", "main") == "gpu_node_1_main"
    hv, groups = inventory({"vllm": ["gpu node/1", "gpu node_1"]})
    with pytest.raises(AnsibleFilterError, match="gpu_node_1_main is shared"):
        fleet_model(hv, groups)


def test_missing_groups_give_empty_lists_and_no_jobs():
    hv, groups = inventory({"vllm": ["a"]})
    model = fleet_model(hv, groups)
    assert model["hosts"]["prometheus"] == [] and model["grafana_prometheus_url"] == {}
    assert sorted(model["scrape_targets"]) == ["node", "vllm"]


def test_triton_group_is_scraped_on_its_metrics_port():
    hv, groups = inventory({"vllm": ["gpu-1"], "triton": ["tr-1", "tr-2"]},
                           {"tr-1": {"ansible_host": "10.0.20.1"}, "tr-2": {"ansible_host": "fd00::7"}})
    model = fleet_model(hv, groups)
    assert model["hosts"]["triton"] == ["tr-1", "tr-2"]
    assert model["scrape_targets"]["triton"] == [
        {"targets": ["10.0.20.1:8002"], "labels": {"host": "tr-1"}},
        {"targets": ["[fd00::7]:8002"], "labels": {"host": "tr-2"}}]
    # Triton is scraped, not deployed: its hosts only get the node exporter (group all).
    assert model["services"]["tr-1"] == ["node_exporter"]


def test_no_triton_group_gives_no_triton_job():
    hv, groups = inventory({"vllm": ["a"], "triton": []})
    model = fleet_model(hv, groups)
    assert "triton" not in model["scrape_targets"] and model["hosts"]["triton"] == []
    hv, groups = inventory({"vllm": ["a"]})
    assert "triton" not in fleet_model(hv, groups)["scrape_targets"]
    # A triton_group option set to "" turns the job off whatever the inventory holds.
    hv, groups = inventory({"triton": ["t"]})
    assert "triton" not in fleet_model(hv, groups, {"triton_group": ""})["scrape_targets"]


def test_host_in_triton_and_vllm_groups_gets_both_jobs():
    hv, groups = inventory({"vllm": ["both"], "triton": ["both"]})
    targets = fleet_model(hv, groups)["scrape_targets"]
    assert targets["vllm"][0]["targets"] == ["both:8000"]
    assert targets["triton"] == [{"targets": ["both:8002"], "labels": {"host": "both"}}]
    assert len(targets["node"]) == 1


def test_triton_metrics_port_of_a_host_and_the_option():
    hv, groups = inventory({"triton": ["t1", "t2"]}, {"t1": {"triton_metrics_port": "9002"}})
    targets = fleet_model(hv, groups, {"triton_metrics_port": 8102})["scrape_targets"]["triton"]
    assert [tg["targets"] for tg in targets] == [["t1:9002"], ["t2:8102"]]
    hv, groups = inventory({"triton": ["t1"]}, {"t1": {"triton_metrics_port": 0}})
    with pytest.raises(AnsibleFilterError, match="triton_metrics_port of t1"):
        fleet_model(hv, groups)


@pytest.mark.parametrize("instances, message", [
    ("main", "must be a list"),
    ([{"name": "a", "port": 8000, "colour": "red"}], "unknown keys colour"),
    ([{"name": "Bad Name", "port": 8000}], "instance name 'Bad Name'"),
    ([{"name": "a", "port": 70000}], "port from 1 to 65535"),
    ([{"name": "a", "port": True}], "port from 1 to 65535"),
    ([{"name": "a", "port": 8000}, {"name": "a", "port": 8001}], "names must be unique"),
    ([{"name": "a", "port": 8000}, {"name": "b", "port": 8000}], "its own port"),
])
def test_bad_instance_lists_name_the_host_and_variable(instances, message):
    with pytest.raises(AnsibleFilterError, match=message) as err:
        fleet_instances(instances, "gpu-7")
    assert "vllm_server_instances of gpu-7" in str(err.value)


def test_fleet_instances_names_units_and_servers_as_the_model_does():
    hv, groups = inventory({"vllm": ["gpu-1"]}, {"gpu-1": {"vllm_server_instances": [{"name": "a", "port": 8001}]}})
    model = fleet_model(hv, groups)
    mine = fleet_instances([{"name": "a", "port": 8001}], "gpu-1")
    assert [(i["unit"], i["server"], i["port"]) for i in mine] == [
        (i["unit"], i["server"], i["port"]) for i in model["vllm"]["gpu-1"]]
    assert [i["name"] for i in fleet_instances(None, "gpu-1")] == ["main"]


def test_port_conflicts():
    assert port_conflicts({"vllm_server": [8000, "9100"], "node_exporter": [9100], "grafana": [3000]}) == [
        "port 9100 is wanted by node_exporter and vllm_server"]
    assert port_conflicts({"prometheus": [9090], "vllm_server": [8000]}) == []
    assert port_conflicts({}) == []


SETTINGS = {"model_arg": "/m/tiny", "served_name": "tiny", "host": "0.0.0.0", "shutdown_timeout": 5,
            "tensor_parallel_size": 1, "gpu_memory_utilization": 0.9, "max_model_len": 0, "dtype": "auto",
            "model_source": "path", "model_revision": "main", "extra_args": ["--enable-prefix-caching"],
            "env": {"A": "1"}}


def test_instance_config_instance_keys_win():
    out = vllm_instance_config([{"name": "g0", "port": 8001, "tensor_parallel_size": 2, "max_model_len": 4096,
                                 "cuda_visible_devices": "0,1", "extra_args": ["--seed=1"], "env": {"A": "2"}}],
                               dict(SETTINGS, model_source="hf", dtype="float32"))
    inst = out[0]
    assert inst["unit"] == "vllm@g0.service"
    assert inst["args"] == ["--model", "/m/tiny", "--served-model-name", "tiny", "--host", "0.0.0.0", "--port", "8001",
                            "--tensor-parallel-size", "2", "--gpu-memory-utilization", "0.9", "--shutdown-timeout", "5",
                            "--revision", "main", "--max-model-len", "4096", "--dtype", "float32",
                            "--enable-prefix-caching", "--seed=1"]
    assert inst["env"] == {"A": "2", "CUDA_VISIBLE_DEVICES": "0,1"}


def test_instance_config_defaults():
    inst = vllm_instance_config([{"name": "main", "port": 8000}], SETTINGS)[0]
    assert "--revision" not in inst["args"] and "--max-model-len" not in inst["args"] and "--dtype" not in inst["args"]
    assert inst["env"] == {"A": "1"}


def test_fleet_urls_read_one_group():
    hv, groups = inventory({"alertmanager": ["am1", "am2"], "prometheus": ["p"]},
                           {"am2": {"fleet_address": "10.0.0.2", "alertmanager_port": 9193}})
    assert fleet_urls(hv, groups, "alertmanager") == ["http://am1:9093", "http://10.0.0.2:9193"]
    assert fleet_urls(hv, groups, "grafana") == []
    assert fleet_urls(hv, groups, "prometheus") == ["http://p:9090"]
    with pytest.raises(AnsibleFilterError, match="not 'vllm'"):
        fleet_urls(hv, groups, "vllm")


# ---- Sites: a Prometheus beside each GPU site, one global store -------------------

def test_default_is_one_site_for_everything():
    hv, groups = inventory({"vllm": ["g1", "g2"], "prometheus": ["mon"]})
    model = fleet_model(hv, groups)
    assert list(model["sites"]) == ["default"]
    assert model["sites"]["default"]["prometheus"] == ["mon"]
    mon = model["prometheus"]["mon"]
    assert mon["external_labels"] == {"site": "default"}
    assert mon["shard"] is None
    # The one Prometheus scrapes every target, as before.
    assert mon["scrape_targets"] == model["scrape_targets"]
    assert model["remote_write_urls"] == []


def test_hosts_without_a_site_join_the_first_prometheus_site():
    hv, groups = inventory({"vllm": ["g1"], "prometheus": ["p"]}, {"p": {"fleet_site": "fra1"}})
    model = fleet_model(hv, groups)
    assert model["site_of"]["g1"] == "fra1"
    assert model["prometheus"]["p"]["external_labels"] == {"site": "fra1"}


def test_each_gpu_host_is_scraped_by_the_prometheus_of_its_site():
    hv, groups = inventory(
        {"vllm": ["a1", "b1"], "gpu": ["a1", "b1"], "prometheus": ["pa", "pb"], "grafana": ["graf"]},
        {"a1": {"fleet_site": "a"}, "pa": {"fleet_site": "a"}, "b1": {"fleet_site": "b"},
         "pb": {"fleet_site": "b"}})
    model = fleet_model(hv, groups)
    assert sorted(model["sites"]) == ["a", "b"]
    a = model["prometheus"]["pa"]["scrape_targets"]
    b = model["prometheus"]["pb"]["scrape_targets"]
    assert [tg["labels"]["host"] for tg in a["vllm"]] == ["a1"]
    assert [tg["labels"]["host"] for tg in b["gpu"]] == ["b1"]
    # graf has no site: the first Prometheus host's site (a) scrapes it.
    assert [tg["labels"]["host"] for tg in a["grafana"]] == ["graf"]
    assert "grafana" not in b
    assert sorted(tg["labels"]["host"] for tg in a["node"]) == ["a1", "graf", "pa"]
    # Every target of the fleet is in exactly one site.
    for job, tgs in model["scrape_targets"].items():
        assert len(tgs) == len(a.get(job, [])) + len(b.get(job, []))


def test_a_site_with_several_prometheus_shards_by_hashmod():
    hv, groups = inventory({"vllm": ["g1"], "prometheus": ["p1", "p2", "p3"]})
    model = fleet_model(hv, groups)
    shards = [model["prometheus"][p] for p in ("p1", "p2", "p3")]
    assert [s["shard"] for s in shards] == [{"modulus": 3, "index": i} for i in range(3)]
    assert [s["external_labels"] for s in shards] == [{"site": "default", "shard": str(i)} for i in range(3)]
    # Each shard gets the whole site's targets; hashmod keeps its own share.
    assert all(s["scrape_targets"] == model["scrape_targets"] for s in shards)


def test_an_ha_pair_scrapes_the_same_targets_with_a_replica_label():
    hv, groups = inventory({"vllm": ["g1"], "prometheus": ["p1", "p2"]})
    model = fleet_model(hv, groups, {"prometheus_site_mode": "ha"})
    assert model["sites"]["default"]["mode"] == "ha"
    assert [model["prometheus"][p]["external_labels"] for p in ("p1", "p2")] == [
        {"site": "default", "replica": "p1"}, {"site": "default", "replica": "p2"}]
    assert [model["prometheus"][p]["shard"] for p in ("p1", "p2")] == [None, None]


def test_site_mode_from_the_prometheus_hosts_wins_per_site():
    hv, groups = inventory({"prometheus": ["a1", "a2", "b1", "b2"]}, {
        "a1": {"fleet_site": "a", "prometheus_site_mode": "ha"}, "a2": {"fleet_site": "a"},
        "b1": {"fleet_site": "b"}, "b2": {"fleet_site": "b"}})
    model = fleet_model(hv, groups)
    assert (model["sites"]["a"]["mode"], model["sites"]["b"]["mode"]) == ("ha", "shard")
    with pytest.raises(AnsibleFilterError, match="prometheus_site_mode"):
        fleet_model(hv, groups, {"prometheus_site_mode": "mirror"})
    hv["a2"]["prometheus_site_mode"] = "shard"
    with pytest.raises(AnsibleFilterError, match="disagree"):
        fleet_model(hv, groups)


def test_a_site_without_prometheus_is_refused():
    hv, groups = inventory({"vllm": ["g1"], "prometheus": ["p"]}, {"g1": {"fleet_site": "b"}})
    with pytest.raises(AnsibleFilterError, match="g1 are in site b .*no host of the Prometheus group"):
        fleet_model(hv, groups)
    # Without any Prometheus (the gateway's view), sites do not matter.
    hv, groups = inventory({"vllm": ["g1"]}, {"g1": {"fleet_site": "b"}})
    assert fleet_model(hv, groups)["sites"] == {}
    hv, groups = inventory({"prometheus": ["p"]}, {"p": {"fleet_site": "a b"}})
    with pytest.raises(AnsibleFilterError, match="fleet_site of p"):
        fleet_model(hv, groups)


def test_global_store_urls_and_job():
    hv, groups = inventory({"prometheus": ["p"], "victoriametrics": ["vm"]},
                           {"vm": {"ansible_host": "10.0.0.9", "victoriametrics_port": 8429}})
    model = fleet_model(hv, groups)
    assert model["victoriametrics_urls"] == ["http://10.0.0.9:8429"]
    assert model["remote_write_urls"] == ["http://10.0.0.9:8429/api/v1/write"]
    assert model["scrape_targets"]["victoriametrics"] == [{"targets": ["10.0.0.9:8429"], "labels": {"host": "vm"}}]
    assert "victoriametrics" in model["services"]["vm"]
    assert fleet_urls(hv, groups, "victoriametrics") == ["http://10.0.0.9:8429"]


def test_grafana_datasources_global_store_first_then_each_site_prometheus():
    hv, groups = inventory({"prometheus": ["pa1", "pa2", "pb"], "victoriametrics": ["vm"], "grafana": ["g"]},
                           {"pa1": {"fleet_site": "a"}, "pa2": {"fleet_site": "a"}, "pb": {"fleet_site": "b"},
                            "vm": {"fleet_site": "a"}, "g": {"fleet_site": "a"}})
    ds = fleet_model(hv, groups)["grafana_datasources"]
    assert [(d["uid"], d["url"], d["is_default"]) for d in ds] == [
        ("global", "http://vm:8428", True),
        ("prometheus-a-0", "http://pa1:9090", False), ("prometheus-a-1", "http://pa2:9090", False),
        ("prometheus-b", "http://pb:9090", False)]
    # One Prometheus and no global store: nothing beyond the role's one datasource.
    hv, groups = inventory({"prometheus": ["p"], "grafana": ["g"]})
    assert fleet_model(hv, groups)["grafana_datasources"] == []


def test_grafana_default_datasource_is_the_global_store_with_its_basic_auth():
    hv, groups = inventory({"prometheus": ["p"], "victoriametrics": ["vm"], "grafana": ["g"]},
                           {"vm": {"ansible_host": "10.0.0.9", "victoriametrics_port": 8429,
                                   "victoriametrics_basic_auth_username": "fleet",
                                   "victoriametrics_basic_auth_password": "s3cret"}})
    ds = fleet_model(hv, groups)["grafana_datasources"]
    assert [d["is_default"] for d in ds] == [True, False]
    store, site = ds
    assert (store["uid"], store["kind"], store["url"]) == ("global", "victoriametrics", "http://10.0.0.9:8429")
    assert (store["basic_auth_user"], store["basic_auth_password"]) == ("fleet", "s3cret")
    # The site Prometheus stays available, not default, without the store's credentials.
    assert (site["uid"], site["url"], site["site"], site["kind"]) == ("prometheus-default", "http://p:9090",
                                                                      "default", "prometheus")
    assert (site["basic_auth_user"], site["basic_auth_password"]) == ("", "")
    # No user: no password either, even when one is set.
    del hv["vm"]["victoriametrics_basic_auth_username"]
    store = fleet_model(hv, groups)["grafana_datasources"][0]
    assert (store["basic_auth_user"], store["basic_auth_password"]) == ("", "")


def test_grafana_datasources_one_per_site_for_ha_pairs_and_per_shard_for_shards():
    hv, groups = inventory({"prometheus": ["pa1", "pa2", "pb1", "pb2"], "victoriametrics": ["vm"]},
                           {"pa1": {"fleet_site": "a", "prometheus_site_mode": "ha"}, "pa2": {"fleet_site": "a"},
                            "pb1": {"fleet_site": "b"}, "pb2": {"fleet_site": "b"}})
    ds = fleet_model(hv, groups)["grafana_datasources"]
    assert [(d["uid"], d["name"], d["host"], d["is_default"]) for d in ds] == [
        ("global", "Global store", "vm", True),
        ("prometheus-a", "Prometheus a", "pa1", False),
        ("prometheus-b-0", "Prometheus b shard 0", "pb1", False),
        ("prometheus-b-1", "Prometheus b shard 1", "pb2", False)]
    assert len({d["uid"] for d in ds}) == len(ds)


def test_grafana_datasources_without_a_store_the_first_site_is_default():
    hv, groups = inventory({"prometheus": ["pa", "pb"], "grafana": ["g"]},
                           {"pa": {"fleet_site": "a"}, "pb": {"fleet_site": "b"}})
    ds = fleet_model(hv, groups)["grafana_datasources"]
    assert [(d["uid"], d["is_default"]) for d in ds] == [("prometheus-a", True), ("prometheus-b", False)]
    assert sum(d["is_default"] for d in ds) == 1


def test_grafana_site_datasources_carry_each_prometheus_tls_and_basic_auth():
    hv, groups = inventory({"prometheus": ["pa", "pb"], "victoriametrics": ["vm"]}, {
        "pa": {"fleet_site": "a", "prometheus_web_tls_cert_file": "/etc/prometheus/tls.crt",
               "prometheus_web_basic_auth_users": {"grafana": "$2b$10$x"},
               "prometheus_web_client_username": "grafana", "prometheus_web_client_password": "pw-a"},
        # A client username without web users: Prometheus asks for no auth, none is sent.
        "pb": {"fleet_site": "b", "prometheus_web_client_username": "grafana",
               "prometheus_web_client_password": "pw-b"}})
    ds = {d["uid"]: d for d in fleet_model(hv, groups)["grafana_datasources"]}
    assert ds["prometheus-a"]["url"] == "https://pa:9090"
    assert (ds["prometheus-a"]["basic_auth_user"], ds["prometheus-a"]["basic_auth_password"]) == ("grafana", "pw-a")
    assert ds["prometheus-b"]["url"] == "http://pb:9090"
    assert (ds["prometheus-b"]["basic_auth_user"], ds["prometheus-b"]["basic_auth_password"]) == ("", "")


def test_grafana_port_is_the_grafana_roles_variable():
    hv, groups = inventory({"prometheus": ["p"], "grafana": ["g"]}, {"g": {"grafana_http_port": 3300}})
    model = fleet_model(hv, groups)
    assert model["scrape_targets"]["grafana"] == [{"targets": ["g:3300"], "labels": {"host": "g"}}]
    assert fleet_urls(hv, groups, "grafana") == ["http://g:3300"]
    # The old name is not read.
    hv, groups = inventory({"prometheus": ["p"], "grafana": ["g"]}, {"g": {"grafana_port": 3300}})
    assert fleet_model(hv, groups)["scrape_targets"]["grafana"][0]["targets"] == ["g:3000"]


def test_grafana_reaches_its_own_prometheus_where_it_listens():
    hv, groups = inventory({"prometheus": ["box"], "grafana": ["box"]}, {"box": {"ansible_host": "box.example"}})
    assert fleet_model(hv, groups)["grafana_prometheus_url"] == {"box": "http://box.example:9090"}
    # The bind address the preflight chose (the name may map to 127.0.1.1 on the host).
    hv["box"]["__fleet_bind_address"] = "10.0.0.7"
    assert fleet_model(hv, groups)["grafana_prometheus_url"] == {"box": "http://10.0.0.7:9090"}
    hv["box"]["prometheus_listen_address"] = "0.0.0.0"
    assert fleet_model(hv, groups)["grafana_prometheus_url"] == {"box": "http://127.0.0.1:9090"}
    hv["box"]["prometheus_listen_address"] = "fd00::9"
    assert fleet_model(hv, groups)["grafana_prometheus_url"] == {"box": "http://[fd00::9]:9090"}


@pytest.mark.parametrize("address, local, resolved, default, expected", [
    # An address of the host's own, IPv4 or IPv6.
    ("10.0.0.5", ["10.0.0.5", "172.17.0.1"], None, "10.0.0.5", "10.0.0.5"),
    ("fd00::5", ["10.0.0.5", "fd00::5"], None, "10.0.0.5", "fd00::5"),
    # Loopback asked for explicitly (a one-host lab).
    ("127.0.0.1", ["10.0.0.5"], None, "10.0.0.5", "127.0.0.1"),
    # A name: the first resolved address of the host's own that is not loopback.
    ("gpu-1", ["10.0.0.5", "10.1.0.5"], ["127.0.1.1", "10.1.0.5", "10.0.0.5"], "10.0.0.5", "10.1.0.5"),
    # A name that resolves only to Debian's 127.0.1.1 on the host: the default route's address.
    ("gpu-1", ["10.0.0.5"], ["127.0.1.1"], "10.0.0.5", "10.0.0.5"),
    # A NAT address in front of the host: the default route's address.
    ("203.0.113.9", ["10.0.0.5"], None, "10.0.0.5", "10.0.0.5"),
    ("gpu-1", ["10.0.0.5"], [], "10.0.0.5", "10.0.0.5"),
])
def test_bind_address(address, local, resolved, default, expected):
    assert fleet_bind_address(address, local, resolved, default) == expected


def test_bind_address_fails_naming_the_variables():
    with pytest.raises(AnsibleFilterError, match=r"10\.0\.0\.5.*fleet_address.*listen address"):
        fleet_bind_address("203.0.113.9", ["10.0.0.5"], [], "")
    with pytest.raises(AnsibleFilterError, match="none"):
        fleet_bind_address("gpu-1", [], ["127.0.1.1"], None)
