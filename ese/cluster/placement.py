"""Which replicas of the stack run where: each node with the tasks the swarm runs on it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ese.swarm import converge, state
from ese.topology import Topology


def running_tasks(manager: Any, topo: Topology) -> dict[str, list[str]]:
    """Node hostname -> the stack's tasks meant to run there (`service.slot` or `service`),
    with their state when it is not `running`."""
    names = converge.node_names(manager)
    out: dict[str, list[str]] = {}
    prefix = f"{topo.swarm.stack}_"
    for service in manager.services.list(filters=state.stack_filter(topo.swarm.stack)):
        short = service.name.removeprefix(prefix)
        for task in service.tasks(filters={"desired-state": "running"}):
            node = names.get(task.get("NodeID", ""), "") or "(not placed)"
            slot = task.get("Slot")
            label = f"{short}.{slot}" if slot else short
            current = (task.get("Status") or {}).get("State", "")
            out.setdefault(node, []).append(
                label if current == "running" else f"{label} ({current})"
            )
    return {node: sorted(tasks) for node, tasks in sorted(out.items())}


def lines(placed: Mapping[str, Sequence[str]]) -> list[str]:
    """`invoke status`'s block: each node and its replicas."""
    if not placed:
        return ["Replicas per node: none (no stack deployed on the cluster)"]
    width = max(len(n) for n in placed)
    return ["Replicas per node"] + [
        f"  {node:<{width}}  {', '.join(tasks)}" for node, tasks in placed.items()
    ]
