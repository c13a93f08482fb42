"""cluster.up refuses a busy published port with one line naming the port and its holder."""

from __future__ import annotations

import pytest

from ese.cluster import host_ports, spec
from ese.errors import EseError
from tests.cluster.conftest import Box, Host

ELB = Box(
    "ese-backend_elb_1",
    labels={"com.docker.compose.project": "ese-backend"},
    bindings={"8100/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8100"}]},
)


def busy(*held: int):
    return lambda port, bind: port not in held


def test_a_port_of_the_compose_stack_names_its_container(topo):
    with pytest.raises(EseError) as err:
        host_ports.refuse_busy(Host([ELB]), spec.published(topo), "ese-node-1", busy(8100))
    assert str(err.value) == (
        "port 8100 for elb is busy: held by container ese-backend_elb_1 (compose project "
        f"ese-backend); {host_ports.HINT}"
    )


def test_a_port_held_by_a_process_names_the_process(topo):
    with pytest.raises(EseError) as err:
        host_ports.refuse_busy(
            Host([ELB]), spec.published(topo), "ese-node-1", busy(3000), lambda p: "nc (pid 7)"
        )
    assert str(err.value).startswith("port 3000 for grafana-server is busy: held by nc (pid 7);")


def test_a_port_of_a_swarm_service_names_the_service(topo):
    host = Host()
    host.api.services = lambda: [
        {
            "Spec": {"Name": "ese_prometheus-server"},
            "Endpoint": {"Ports": [{"PublishedPort": 9090}]},
        }
    ]
    with pytest.raises(EseError, match="held by Swarm service ese_prometheus-server;"):
        host_ports.refuse_busy(host, spec.published(topo), "ese-node-1", busy(9090))


def test_the_clusters_own_node_1_may_hold_them(topo):
    node1 = Box("ese-node-1", bindings={"2003/tcp": [{"HostIp": "0.0.0.0", "HostPort": "2003"}]})
    host_ports.refuse_busy(Host([node1]), spec.published(topo), "ese-node-1", busy(2003))
    with pytest.raises(EseError, match="port 2003"):
        host_ports.refuse_busy(Host([node1]), spec.published(topo), "ese-node-9", busy(2003))
