"""Waiting until the stack's services run all their replicas; on a failure, their tasks and
logs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ese.engine import waits
from ese.render import swarm_stack
from ese.swarm import calls, state
from ese.topology import Topology


class NotConverged(waits.NotHealthy):
    """Services without all their replicas running at the deadline; `services` names them."""


CONVERGED = waits.Wording(
    "services have their replicas running",
    "ready",
    "replicas not running",
    "see the tasks and logs above; raise the deadline with INVOKE_ESE_HEALTH_TIMEOUT",
)


def expected_services(topo: Topology) -> list[str]:
    """The stack file's services (the optional ones too)."""
    return sorted(swarm_stack.services(topo))


def wait_converged(
    poll: Callable[[], Sequence[state.ServiceState]],
    expected: Sequence[str],
    timeout: float,
    pace: waits.Pace = waits.DEFAULT_PACE,
) -> float:
    """Wait until every expected service has all replicas running (healthy: Swarm reports a
    task with a healthcheck running only once it passed); return the seconds it took."""

    def look() -> waits.Round:
        found = {s.short: s for s in poll()}
        bad = {
            n: (found[n].state if n in found else "missing")
            for n in expected
            if n not in found or not found[n].ok
        }
        rolled = [n for n in bad if n in found and found[n].update.startswith("rollback")]
        if rolled:
            what = "update rolled back: " + ", ".join(f"{n} ({bad[n]})" for n in rolled)
            hint = "see the task errors and logs above; fix and run `invoke swarm.up` again"
            return waits.Round(bad, (what, hint, rolled))
        return waits.Round(bad)

    return waits.wait_for(look, len(expected), timeout, CONVERGED, NotConverged, pace)


def task_lines(name: str, tasks: Sequence[dict[str, Any]], nodes: Mapping[str, str]) -> list[str]:
    """`docker service ps --no-trunc`'s table (without IDs and ports): each slot's newest task
    first, the older ones under it marked `\\_`, as the CLI shows them."""

    def when(task: dict[str, Any]) -> str:
        return str((task.get("Status") or {}).get("Timestamp", ""))

    def slot(task: dict[str, Any]) -> str:
        return str(task.get("Slot") or task.get("NodeID", ""))

    rows = [("NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR")]
    newest_first = sorted(tasks, key=when, reverse=True)
    seen: set[str] = set()
    for task in sorted(newest_first, key=lambda t: slot(t).zfill(8)):
        status = task.get("Status") or {}
        spec = (task.get("Spec") or {}).get("ContainerSpec") or {}
        node = str(task.get("NodeID", ""))
        rows.append(
            (
                ("\\_ " if slot(task) in seen else "") + f"{name}.{slot(task)}",
                str(spec.get("Image", "")).split("@", 1)[0],
                nodes.get(node, node[:12]),
                str(task.get("DesiredState", "")),
                f"{status.get('State', '')} {when(task)[:19]}".strip(),
                str(status.get("Err", "")),
            )
        )
        seen.add(slot(task))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def node_names(cli: Any) -> dict[str, str]:
    """Node id -> hostname, as `docker node ls` shows them ({} when the engine says none)."""
    try:
        found = cli.nodes.list()
    except Exception:  # docker.errors.APIError: not a manager; the ids will do
        return {}
    return {
        n.id: str(((n.attrs or {}).get("Description") or {}).get("Hostname", "")) for n in found
    }


def show_tasks(cli: Any, name: str) -> None:
    """Service `name`'s tasks with their errors (`docker service ps --no-trunc`)."""
    print(f"> docker service ps --no-trunc {name}", flush=True)
    try:
        tasks = cli.services.get(name).tasks()
    except Exception as exc:  # docker.errors.NotFound: the deploy did not make it
        print(f"no tasks: {calls.reason(exc)}")
        return
    print("\n".join(task_lines(name, tasks, node_names(cli))))


def show_logs(cli: Any, name: str, lines: int) -> None:
    """Service `name`'s last log lines, of every task (`docker service logs --raw --tail`)."""
    print(f"> docker service logs --raw --tail {lines} {name}", flush=True)
    try:
        chunks = cli.services.get(name).logs(stdout=True, stderr=True, tail=lines)
        text = b"".join(chunks).decode("utf-8", "replace")
    except Exception as exc:  # docker.errors.APIError, requests' connection errors
        print(f"no logs: {calls.reason(exc)}")
        return
    if text.strip():
        print(text.rstrip("\n"))


def show_failures(cli: Any, topo: Topology, failing: Sequence[str], log_lines: int) -> None:
    """The failing services' tasks (with errors) and last log lines (the first three)."""
    for short in failing[:3]:
        name = state.full_name(topo, short)
        show_tasks(cli, name)
        show_logs(cli, name, log_lines)


def wait_stack(
    cli: Any, topo: Topology, timeout: float, log_lines: int, only: Sequence[str] = ()
) -> float:
    """Wait until the stack's services (`only` these) run all their replicas; on a failure,
    show their tasks and logs first."""
    expected = list(only) or expected_services(topo)

    def found() -> list[state.ServiceState]:
        return state.services(cli, topo.swarm.stack)

    try:
        return wait_converged(found, expected, timeout)
    except NotConverged as exc:
        show_failures(cli, topo, exc.services, log_lines)
        raise
