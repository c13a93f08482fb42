"""The node labels that place the stack: a lone node gets them all, a larger swarm is checked."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from ese.errors import EseError
from ese.render import swarm_nodes
from ese.swarm import node_labels
from ese.topology import load


def _node(name: str, labels: dict[str, str] | None = None) -> Any:
    node = SimpleNamespace(id=f"id-{name}", updates=[])
    node.attrs = {"Description": {"Hostname": name}, "Spec": {"Role": "worker"}}
    if labels is not None:
        node.attrs["Spec"]["Labels"] = labels

    def update(spec: dict[str, Any]) -> bool:
        node.updates.append(spec)
        node.attrs["Spec"] = spec
        return True

    node.update = update
    return node


def _cli(*nodes: Any) -> Any:
    return SimpleNamespace(nodes=SimpleNamespace(list=lambda: list(nodes)))


def test_a_single_node_gets_every_label_once_and_keeps_its_own(capsys) -> None:
    topo = load()
    node = _node("box", {"owner": "me"})
    node_labels.ensure(_cli(node), topo)
    wanted = swarm_nodes.node_labels(topo, 1)[0]
    assert node.attrs["Spec"]["Labels"] == {"owner": "me", **{label: "true" for label in wanted}}
    assert node.attrs["Spec"]["Role"] == "worker"  # the rest of the spec is kept
    shown = capsys.readouterr().out.strip()
    assert shown.startswith("> docker node update --label-add ") and shown.endswith(" box")
    node_labels.ensure(_cli(node), topo)  # again: nothing to add, no update
    assert len(node.updates) == 1


def test_a_larger_swarm_is_checked_not_relabelled() -> None:
    topo = load()
    plan = swarm_nodes.node_labels(topo, 3)
    nodes = [_node(f"n{i}", {label: "true" for label in labels}) for i, labels in enumerate(plan)]
    node_labels.ensure(_cli(*nodes), topo)
    assert all(not n.updates for n in nodes)
    bare = [_node("a"), _node("b", {topo.swarm.edge_label: "true"})]
    with pytest.raises(EseError) as err:
        node_labels.ensure(_cli(*bare), topo)
    assert "no node of this 2-node swarm has the label(s)" in str(err.value)
    assert "docker node update --label-add" in str(err.value)
    assert all(not n.updates for n in bare)
