"""What cluster.up refuses before it makes anything: a node count that would leave existing
nodes out, more managers than nodes, and a node 1 that publishes other ports than asked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ese.cluster import spec
from ese.errors import EseError
from ese.topology import Topology


def check_shape(topo: Topology, count: int, managers: int, existing: Sequence[Any]) -> list[str]:
    """The node names for `count` nodes; an EseError when the shape asked for cannot be made."""
    if managers > count:
        raise EseError(
            f"--managers {managers} is more than --nodes {count}",
            "e.g. --nodes 3 --managers 1 (or 3: an odd count keeps a majority when one is lost)",
        )
    names = spec.node_names(topo, count)
    extra = [b.name for b in existing if b.name not in names]
    if extra:
        raise EseError(
            f"the cluster has {len(existing)} nodes; --nodes {count} would leave out "
            f"{', '.join(extra)}",
            f"run `invoke cluster.down` first, or ask for --nodes {len(existing)}",
        )
    return names


def check_published(first: Any | None, wanted: Sequence[spec.Published]) -> None:
    """A node 1 made earlier publishes what this run asks for (a container cannot change it)."""
    if first is None:
        return
    bindings = ((first.attrs or {}).get("HostConfig") or {}).get("PortBindings") or {}
    have = sorted(
        f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}"
        for v in bindings.values()
        for b in v or []
    )
    want = sorted(f"{bind}:{port}" for bind, port in spec.port_bindings(wanted).values())
    if have != want:
        raise EseError(
            f"{first.name} publishes {', '.join(have) or 'no port'}, "
            f"not {', '.join(want) or 'none'}",
            "run `invoke cluster.down` first (the volumes stay), then `invoke cluster.up`",
        )
