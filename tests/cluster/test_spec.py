"""What a cluster is made of: names, addresses, engine flags, published ports, labels."""

from __future__ import annotations

import ipaddress

import pytest

from ese.cluster import spec


def test_node_names_and_numbers_speak_of_one_thing(topo):
    names = spec.node_names(topo, 3)
    assert names == ["ese-node-1", "ese-node-2", "ese-node-3"]
    assert [spec.node_number(topo, n) for n in names] == [1, 2, 3]
    for other in ("ese-node-", "ese-node-01", "ese-registry", "node-1", "ese-node-x"):
        assert spec.node_number(topo, other) is None


def test_nodes_sit_in_the_lower_half_and_the_engine_hands_out_the_upper(topo):
    plan = spec.addresses("172.30.0.0/16", "172.30.0.1")
    net = ipaddress.IPv4Network(plan.subnet)
    dynamic = ipaddress.IPv4Network(plan.ip_range)
    nodes = [ipaddress.ip_address(plan.node(n)) for n in range(1, 10)]
    assert str(nodes[0]) == "172.30.0.11"
    assert all(
        a in net and a not in dynamic and a != ipaddress.ip_address(plan.gateway) for a in nodes
    )
    assert dynamic.subnet_of(net) and dynamic.num_addresses == net.num_addresses // 2


def test_a_subnet_too_small_for_nodes_is_refused():
    assert spec.addresses("10.9.0.0/24", "").gateway == "10.9.0.1"
    with pytest.raises(ValueError, match="smaller than a /24"):
        spec.addresses("10.9.0.0/25", "10.9.0.1")


def test_a_node_engine_listens_on_unix_sockets_only(topo):
    args = spec.dockerd_args(topo, "ese-node-2", 109)
    hosts = [a for a in args if a.startswith("--host=")]
    assert hosts and all(h.startswith("--host=unix://") for h in hosts)
    assert f"--host=unix://{spec.NODE_SOCKET_DIR}/docker.sock" in hosts
    assert "--group=109" in args  # never the node's own docker group id
    assert "--cgroup-parent=/ese-node-2" in args
    assert "--insecure-registry=ese-registry:5000" in args
    assert spec.docker_host("ese-node-2") == "unix:///run/ese-cluster/ese-node-2/docker.sock"


def test_node_1_publishes_the_lb_analytics_grafana_and_prometheus_as_compose_does(topo):
    wanted = {p.port: p.bind for p in spec.published(topo)}
    assert wanted == {
        topo.balancer.port: topo.balancer.bind,
        topo.analytics_shard.port: topo.analytics_shard.bind,
        topo.grafana.port: topo.grafana.bind,
        topo.prometheus.port: topo.prometheus.bind,
    }
    assert set(wanted) == {8100, 2003, 3000, 9090}
    assert wanted[9090] == "127.0.0.1" and wanted[8100] == "0.0.0.0"
    assert spec.port_bindings(spec.published(topo))["9090/tcp"] == ("127.0.0.1", 9090)


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_the_edge_is_on_node_1_and_every_placing_label_on_one_node(topo, count):
    names = spec.node_names(topo, count)
    labels = spec.labels(topo, names)
    assert [n for n in names if labels[n].get(topo.swarm.edge_label) == "true"] == ["ese-node-1"]
    for label in spec.managed_labels(topo):
        assert sum(labels[n].get(label) == "true" for n in names) == 1, label
    redis_nodes = {
        n for n in names for label in labels[n] if label.startswith(topo.swarm.redis_label + "-")
    }
    # each copy of the store on its own node, as far as there are nodes
    assert len(redis_nodes) == min(count, len(topo.swarm.redis_services))
    assert set(spec.managed_labels(topo)) == {k for n in names for k in labels[n]}


def test_the_first_nodes_are_the_managers(topo):
    names = spec.node_names(topo, 4)
    assert spec.roles(names, 3) == {
        "ese-node-1": "manager",
        "ese-node-2": "manager",
        "ese-node-3": "manager",
        "ese-node-4": "worker",
    }
