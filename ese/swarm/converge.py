"""Waiting until the stack's services run all their replicas; on a failure, their tasks and
logs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ese.engine import commands, waits
from ese.render import swarm_stack
from ese.swarm import state
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


def show_failures(topo: Topology, failing: Sequence[str], log_lines: int) -> None:
    """The failing services' tasks (with errors) and last log lines."""
    for short in failing[:3]:
        name = state.full_name(topo, short)
        commands.run(["docker", "service", "ps", "--no-trunc", name], check=False)
        argv = ["docker", "service", "logs", "--no-task-ids", "--tail", str(log_lines), name]
        commands.run(argv, check=False)


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
        show_failures(topo, exc.services, log_lines)
        raise
