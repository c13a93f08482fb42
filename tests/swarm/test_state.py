"""What the Swarm waits read from the engine: a global service across nodes, one of them lost."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ese.swarm import state


def _engine(node_states: dict[str, str], tasks: list[tuple[str, str]]) -> Any:
    """One global service `ese_node-exporter`; `tasks` are (node id, task state)."""

    def services(filters: Any = None) -> list[dict[str, Any]]:
        spec = {"Name": "ese_node-exporter", "Mode": {"Global": {}}, "TaskTemplate": {}}
        return [{"Spec": spec}]

    def task_list(filters: Any = None) -> list[dict[str, Any]]:
        return [
            {"NodeID": node, "DesiredState": "running", "Status": {"State": st}}
            for node, st in tasks
        ]

    def nodes() -> list[dict[str, Any]]:
        return [{"ID": n, "Status": {"State": st}} for n, st in node_states.items()]

    return SimpleNamespace(api=SimpleNamespace(services=services, tasks=task_list, nodes=nodes))


def test_a_global_service_wants_one_task_per_node_that_is_up() -> None:
    cli = _engine(
        {"n1": "ready", "n2": "ready", "n3": "down"},
        [("n1", "running"), ("n2", "running"), ("n3", "running")],
    )
    (svc,) = state.services(cli, "ese")
    # The lost node's task is neither wanted nor running: the stack has converged.
    assert (svc.desired, svc.running, svc.ok) == (2, 2, True)


def test_a_global_service_is_not_converged_while_a_ready_node_lacks_its_task() -> None:
    cli = _engine(
        {"n1": "ready", "n2": "ready"},
        [("n1", "running"), ("n2", "starting")],
    )
    (svc,) = state.services(cli, "ese")
    assert (svc.desired, svc.running, svc.ok) == (2, 1, False)
