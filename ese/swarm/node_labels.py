"""The node labels that place the stack's services (ese/render/swarm_nodes.py says which).

A single-node swarm's node gets every label, so the one stack file deploys there unchanged. A
swarm of several nodes is labelled by whoever made it (`invoke cluster.up` labels its nodes;
on real machines, `docker node update --label-add`): `invoke swarm.up` only checks that every
label is on some node, since a label on no node leaves its service pending for ever.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ese.errors import EseError
from ese.render import swarm_nodes
from ese.swarm import calls
from ese.topology import Topology


def labels_of(node: Any) -> dict[str, str]:
    return dict((node.attrs.get("Spec") or {}).get("Labels") or {})


def hostname(node: Any) -> str:
    return str((node.attrs.get("Description") or {}).get("Hostname") or node.id)


def add(node: Any, wanted: Sequence[str]) -> None:
    """Give `node` each of the `wanted` labels (value "true") it lacks, in one update."""
    have = labels_of(node)
    missing = [label for label in wanted if have.get(label) != "true"]
    if not missing:
        return
    spec = dict(node.attrs.get("Spec") or {})
    spec["Labels"] = {**have, **{label: "true" for label in missing}}
    flags = " ".join(f"--label-add {label}=true" for label in missing)
    calls.call(f"docker node update {flags} {hostname(node)}", lambda: node.update(spec))


def ensure(cli: Any, topo: Topology) -> None:
    """Label a single-node swarm's node; in a larger swarm, check that every label is placed."""
    nodes = cli.nodes.list()
    wanted = swarm_nodes.node_labels(topo, 1)[0]  # the one node of a 1-node swarm has them all
    if len(nodes) == 1:
        add(nodes[0], wanted)
        return
    lacking = [
        label for label in wanted if not any(labels_of(n).get(label) == "true" for n in nodes)
    ]
    if lacking:
        raise EseError(
            f"no node of this {len(nodes)}-node swarm has the label(s) {', '.join(lacking)}, "
            "so the services placed by them would never start",
            "label one node for each: docker node update --label-add LABEL=true NODE "
            '(README, "More than one machine"); `invoke cluster.up` labels its own nodes',
        )
