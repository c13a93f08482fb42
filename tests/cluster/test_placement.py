"""`invoke status` on a cluster: each node with the stack's replicas the swarm runs there."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ese.cluster import placement


@dataclass
class Service:
    name: str
    answer: list[dict[str, Any]]
    asked: list[dict[str, str]] = field(default_factory=list)

    def tasks(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        self.asked.append(filters)
        return [t for t in self.answer if t["DesiredState"] == filters["desired-state"]]


@dataclass
class Node:
    id: str
    attrs: dict[str, Any]


class Manager:
    """A manager's answers in the engine's own shapes (`docker service ps`, `docker node ls`)."""

    def __init__(self, services: list[Service], nodes: dict[str, str]) -> None:
        self.services = self
        self.nodes = self
        self._services = services
        self._nodes = [Node(i, {"Description": {"Hostname": h}}) for i, h in nodes.items()]
        self.filters: dict[str, Any] = {}

    def list(self, filters: dict[str, Any] | None = None) -> list[Any]:
        if filters is None:
            return self._nodes
        self.filters = filters
        return self._services


def task(node: str, slot: int | None, state: str, desired: str = "running") -> dict[str, Any]:
    out: dict[str, Any] = {"NodeID": node, "DesiredState": desired, "Status": {"State": state}}
    if slot is not None:
        out["Slot"] = slot
    return out


def test_each_node_lists_the_replicas_meant_to_run_there(topo):
    ingest = Service(
        "ese_ese-ingest",
        [
            task("n2", 1, "running"),
            task("n3", 2, "starting"),
            task("n2", 3, "shutdown", desired="shutdown"),  # gone: not listed
        ],
    )
    exporter = Service(
        "ese_node-exporter", [task("n1", None, "running"), task("", None, "pending")]
    )
    manager = Manager(
        [ingest, exporter], {"n1": "ese-node-1", "n2": "ese-node-2", "n3": "ese-node-3"}
    )
    placed = placement.running_tasks(manager, topo)
    assert manager.filters == {"label": f"com.docker.stack.namespace={topo.swarm.stack}"}
    assert placed == {
        "(not placed)": ["node-exporter (pending)"],
        "ese-node-1": ["node-exporter"],
        "ese-node-2": ["ese-ingest.1"],
        "ese-node-3": ["ese-ingest.2 (starting)"],
    }
    lines = placement.lines(placed)
    assert lines[0] == "Replicas per node"
    assert lines[3].split() == ["ese-node-2", "ese-ingest.1"]


def test_no_stack_says_so():
    assert placement.lines({}) == ["Replicas per node: none (no stack deployed on the cluster)"]
