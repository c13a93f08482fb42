"""What cluster.up made (`Cluster`) and the lines that report it: the nodes, the registry and
the line that points the docker CLI at the cluster; the node list for `invoke status`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ese.cluster import membership, spec
from ese.host import shells
from ese.topology import Topology


@dataclass
class Cluster:
    """What cluster.up made; a deploy goes through `manager` (or the CLI with `docker_host`)
    with the images in `image_refs`."""

    topo: Topology
    names: list[str]
    manager: Any  # the SDK client of node 1's engine, a swarm manager
    docker_host: str  # DOCKER_HOST for the docker CLI and `invoke swarm.*`
    registry_port: int  # this machine pushes to 127.0.0.1:<port>
    image_refs: dict[str, str] = field(default_factory=dict)  # ESE_*_IMAGE -> what nodes pull


def node_rows(manager: Any) -> list[str]:
    """Each node as `manager` sees it, one indented line each."""
    rows = membership.rows(manager)
    width = max(len(r.name) for r in rows)
    return ["  " + r.line(width) for r in rows]


def lines(cluster: Cluster, shell: str | None = None) -> list[str]:
    """The nodes, the registry and the line that points the docker CLI at the cluster (in
    `shell`'s syntax, else in every shell's)."""
    topo = cluster.topo
    out = [f"cluster {topo.cluster.network}: {len(cluster.names)} node(s)"]
    out += node_rows(cluster.manager)
    out.append(
        f"registry {spec.registry_address(topo)} on the cluster network "
        f"(this machine pushes to 127.0.0.1:{cluster.registry_port})"
    )
    out.append("point the docker CLI and `invoke swarm.*` at the cluster:")
    if shell:
        return [*out, "  " + shells.set_line(shell, cluster.docker_host, var="DOCKER_HOST")]
    width = max(len(s) for s in shells.SHELLS)
    for name in shells.SHELLS:
        line = shells.set_line(name, cluster.docker_host, var="DOCKER_HOST")
        out.append(f"  {name + ':':<{width + 1}}  {line}")
    return out


def node_lines(manager: Any | None, boxes: Sequence[Any]) -> list[str]:
    """Each node, Ready or Down, manager or worker, as `manager` sees it; the containers' own
    states when no manager answers."""
    if manager is None:
        head = ["Cluster nodes (no manager answers; containers only)"]
        return head + [f"  {b.name:<12}  container {b.status}" for b in boxes]
    return ["Cluster nodes (as the swarm's managers see them)", *node_rows(manager)]
