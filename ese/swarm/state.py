"""What the Swarm tasks read from the engine (Docker SDK): this node's membership and the
stack's services with their replicas."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ese.topology import Topology

STACK_LABEL = "com.docker.stack.namespace"
SERVICE_LABEL = "com.docker.swarm.service.name"
# An update that is under way or stopped half way: the service is not converged yet.
_UPDATING = {"updating", "paused", "rollback_started", "rollback_paused"}


def full_name(topo: Topology, short: str) -> str:
    """The engine's name of stack service `short` (`<stack>_<service>`)."""
    return f"{topo.swarm.stack}_{short}"


def stack_filter(stack: str) -> dict[str, str]:
    """The SDK filter for what `docker stack deploy` made for `stack` (it labels everything)."""
    return {"label": f"{STACK_LABEL}={stack}"}


@dataclass(frozen=True)
class NodeState:
    """This engine's swarm membership (`docker info` .Swarm)."""

    state: str  # inactive, pending, active, error, locked
    manager: bool
    node_id: str


def node_state(cli: Any) -> NodeState:
    swarm = cli.info().get("Swarm") or {}
    return NodeState(
        str(swarm.get("LocalNodeState", "inactive")),
        bool(swarm.get("ControlAvailable")),
        str(swarm.get("NodeID", "")),
    )


@dataclass(frozen=True)
class ServiceState:
    """One service of the stack: replicas wanted and running, update state, newest error."""

    name: str  # full name, <stack>_<service>
    short: str  # the name in the stack file
    desired: int
    running: int
    update: str = ""  # UpdateStatus.State, "" when never updated
    error: str = ""  # the newest task error, e.g. "No such image: ..."
    image: str = ""

    @property
    def ok(self) -> bool:
        return self.running == self.desired and self.update not in _UPDATING

    @property
    def state(self) -> str:
        text = f"{self.running}/{self.desired}"
        if self.update:
            text += f", update {self.update}"
        return text + (f", last error: {self.error}" if self.error else "")


def _newest_error(tasks: Sequence[dict[str, Any]]) -> str:
    failed = [t for t in tasks if (t.get("Status") or {}).get("Err")]
    if not failed:
        return ""
    newest = max(failed, key=lambda t: str((t.get("Status") or {}).get("Timestamp", "")))
    if newest.get("DesiredState") == "running" and newest["Status"].get("State") == "running":
        return ""
    return str(newest["Status"]["Err"])


def ready_nodes(cli: Any) -> set[str]:
    """The ids of the swarm's nodes that are up (Status.State ready)."""
    return {
        str(n.get("ID")) for n in cli.api.nodes() if (n.get("Status") or {}).get("State") == "ready"
    }


def services(cli: Any, stack: str) -> list[ServiceState]:
    """Every service of stack `stack`, by name; [] when it is not deployed.

    A global service (node-exporter: one task per node) wants one task on every node that is
    up; a lost node's task counts neither as wanted nor as running until the node is back.
    """
    out = []
    ready: set[str] | None = None
    for svc in cli.api.services(filters=stack_filter(stack)):
        spec = svc.get("Spec") or {}
        name = str(spec.get("Name", ""))
        mode = spec.get("Mode") or {}
        tasks = cli.api.tasks(filters={"service": name})
        if "Global" in mode:
            ready = ready_nodes(cli) if ready is None else ready
            tasks = [t for t in tasks if t.get("NodeID") in ready]
            desired = sum(1 for t in tasks if t.get("DesiredState") == "running")
        else:
            desired = int((mode.get("Replicated") or {}).get("Replicas", 0))
        image = str(((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", ""))
        # Only tasks of the current image count: right after a deploy that changed it, the old
        # tasks still run and the update has not even started yet.
        running = sum(
            1
            for t in tasks
            if t.get("DesiredState") == "running"
            and (t.get("Status") or {}).get("State") == "running"
            and ((t.get("Spec") or {}).get("ContainerSpec") or {}).get("Image", image) == image
        )
        out.append(
            ServiceState(
                name=name,
                short=name.removeprefix(f"{stack}_"),
                desired=desired,
                running=running,
                update=str((svc.get("UpdateStatus") or {}).get("State", "")),
                error=_newest_error(tasks),
                image=image.split("@", 1)[0],  # without the digest stack deploy pins
            )
        )
    return sorted(out, key=lambda s: s.short)


def ingest_replicas(cli: Any, topo: Topology) -> int | None:
    """The ingest service's current replica count; None when the stack is not deployed."""
    for svc in services(cli, topo.swarm.stack):
        if svc.short == topo.swarm.ingest_service:
            return svc.desired
    return None
