"""What a cluster is made of: names, each node's engine flags and address, the ports node 1
publishes on this machine, the node labels. Pure: nothing here talks to an engine."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from ese.render import swarm_nodes
from ese.topology import Topology

# On every container, volume and network of the cluster; the value is the cluster's network.
CLUSTER_LABEL = "org.ese.cluster"
ROLE_LABEL = "org.ese.cluster.role"  # node | registry
# On a node's volume: the network's subnet when it was made. A later cluster.up (after a down
# that kept the volumes) asks for it again, so the nodes keep their addresses and their swarm.
SUBNET_LABEL = "org.ese.cluster.subnet"
REGISTRY_PORT = 5000  # the registry's port on the cluster network (registry:2's own)
# A node's engine socket: dockerd makes it in NODE_SOCKET_DIR, a bind mount of a directory
# under SOCKET_ROOT on this machine. /run: a tmpfs on Linux, so nothing outlives a reboot.
SOCKET_ROOT = PurePosixPath("/run/ese-cluster")
NODE_SOCKET_DIR = "/run/ese"
SOCKET_NAME = "docker.sock"
ENTRYPOINT = "/usr/local/bin/ese-node-entrypoint"
SWARM_PORT = 2377
# Node N gets host address FIRST_NODE_HOST + N of the network's lower half; the engine hands
# out addresses to anything else (the registry) from the upper half only, so a node that is
# down never finds its address taken when it comes back.
FIRST_NODE_HOST = 10


def node_name(topo: Topology, number: int) -> str:
    return f"{topo.cluster.node_prefix}{number}"


def node_names(topo: Topology, count: int) -> list[str]:
    return [node_name(topo, n) for n in range(1, count + 1)]


def node_number(topo: Topology, name: str) -> int | None:
    """N for `<prefix>N`, else None."""
    rest = name.removeprefix(topo.cluster.node_prefix)
    return int(rest) if rest != name and rest.isdigit() and not rest.startswith("0") else None


def socket_dir(name: str) -> str:
    return str(SOCKET_ROOT / name)


def socket_path(name: str) -> str:
    return str(SOCKET_ROOT / name / SOCKET_NAME)


def docker_host(name: str) -> str:
    """The DOCKER_HOST value that reaches node `name`'s engine from this machine."""
    return f"unix://{socket_path(name)}"


def docker_volume(name: str) -> str:
    """The volume that holds a node's /var/lib/docker (images, containers, swarm state)."""
    return f"{name}-docker"


def registry_volume(topo: Topology) -> str:
    return f"{topo.cluster.registry}-data"


def registry_address(topo: Topology) -> str:
    """The registry as the nodes reach it: by name, on the cluster network."""
    return f"{topo.cluster.registry}:{REGISTRY_PORT}"


def dockerd_args(topo: Topology, name: str, group: int) -> list[str]:
    """The node engine's flags: unix sockets only (never TCP), owned by `group`."""
    return [
        f"--host=unix://{NODE_SOCKET_DIR}/{SOCKET_NAME}",  # the one this machine uses
        "--host=unix:///var/run/docker.sock",  # `docker exec NODE docker ...`
        f"--group={group}",
        f"--cgroup-parent=/{name}",
        f"--insecure-registry={registry_address(topo)}",
        "--storage-driver=overlay2",
    ]


@dataclass(frozen=True)
class Published:
    """A port of the stack that node 1 publishes on this machine, at `bind`."""

    service: str
    port: int
    bind: str


def published(topo: Topology) -> list[Published]:
    """The load balancer, the analytics shard, Grafana and Prometheus, on the host addresses
    the compose stack uses for them."""
    shard = topo.analytics_shard
    return [
        Published(s.name, s.port, s.bind)
        for s in (topo.balancer, shard, topo.grafana, topo.prometheus)
    ]


def port_bindings(ports: Sequence[Published]) -> dict[str, tuple[str, int]]:
    """`-p BIND:PORT:PORT` for each, as the SDK takes them."""
    return {f"{p.port}/tcp": (p.bind, p.port) for p in ports}


@dataclass(frozen=True)
class Addresses:
    """The cluster network's addresses: nodes in the lower half, the rest in `ip_range`."""

    subnet: str
    gateway: str
    ip_range: str

    def node(self, number: int) -> str:
        net = ipaddress.ip_network(self.subnet)
        return str(net.network_address + FIRST_NODE_HOST + number)


def addresses(subnet: str, gateway: str) -> Addresses:
    """The plan for a subnet the engine picked; ValueError when it is too small for nodes."""
    net = ipaddress.ip_network(subnet)
    if net.prefixlen > 24:
        raise ValueError(f"subnet {subnet} is smaller than a /24")
    _, upper = net.subnets(prefixlen_diff=1)
    return Addresses(str(net), gateway or str(net.network_address + 1), str(upper))


def roles(names: Sequence[str], managers: int) -> dict[str, str]:
    """The first `managers` nodes are swarm managers (node 1 always), the rest workers."""
    return {name: "manager" if i < managers else "worker" for i, name in enumerate(names)}


def labels(topo: Topology, names: Sequence[str]) -> dict[str, dict[str, str]]:
    """Node labels the stack places by, as `swarm_nodes.node_labels` deals them: node 1 is the
    edge (it publishes the ports), Redis slot k and Sentinel k go to node k+1, wrapping."""
    dealt = swarm_nodes.node_labels(topo, len(names))
    return {name: dict.fromkeys(dealt[i], "true") for i, name in enumerate(names)}


def managed_labels(topo: Topology) -> tuple[str, ...]:
    """The node labels cluster.up owns: set where `labels` says, removed elsewhere."""
    return tuple(swarm_nodes.node_labels(topo, 1)[0])


AGAIN = "run `invoke cluster.down`, then `invoke cluster.up` again"


def on(host: str) -> str:
    """`docker -H HOST` (a node's engine), the prefix of the commands sent there."""
    return f"docker -H {host}"
