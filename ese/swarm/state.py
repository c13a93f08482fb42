"""What the Swarm tasks read from the engine (Docker SDK), and waits with deadlines.

Reads go through the SDK (easy to fake in tests); commands that change something are printed
and run as `docker ...` lines by the flows (ese/flows/swarm.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ese.engine import readings, waits
from ese.errors import EseError
from ese.host import sdk
from ese.topology import Topology

STACK_LABEL = "com.docker.stack.namespace"
SERVICE_LABEL = "com.docker.swarm.service.name"
# An update that is under way or stopped half way: the service is not converged yet.
_UPDATING = {"updating", "paused", "rollback_started", "rollback_paused"}


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


def services(cli: Any, stack: str) -> list[ServiceState]:
    """Every service of stack `stack`, by name; [] when it is not deployed."""
    out = []
    for svc in cli.api.services(filters={"label": f"{STACK_LABEL}={stack}"}):
        spec = svc.get("Spec") or {}
        name = str(spec.get("Name", ""))
        desired = int(((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", 0))
        tasks = cli.api.tasks(filters={"service": name})
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


class NotConverged(waits.NotHealthy):
    """Services without all their replicas running at the deadline; `services` names them."""


CONVERGED = waits.Wording(
    "services have their replicas running",
    "ready",
    "replicas not running",
    "see the tasks and logs above; raise the deadline with INVOKE_ESE_HEALTH_TIMEOUT",
)


def wait_converged(
    poll: Callable[[], Sequence[ServiceState]],
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


# --- HAProxy and Prometheus, as the scale flow checks them ------------------------------


def lb_stats_url(topo: Topology) -> str:
    lb = topo.balancer
    return readings.local_url(lb.bind, lb.port, f"{lb.stats_path};csv")


def lb_servers(text: str, backend: str = "ingest") -> dict[str, str]:
    """Slot name -> status of the backend's servers, from HAProxy's stats CSV."""
    return {s: st for b, s, st, _ in readings.haproxy_servers(text) if b == backend}


def lb_view(servers: dict[str, str], n: int) -> tuple[bool, str]:
    """Exactly `n` servers UP and none half way (DOWN, DRAIN, NOLB); empty slots are MAINT."""
    up = sorted(s for s, st in servers.items() if st == "UP")
    other = sorted(f"{s} {st}" for s, st in servers.items() if st != "UP" and "MAINT" not in st)
    return len(up) == n and not other, f"{len(up)} UP" + (f", {', '.join(other)}" if other else "")


def service_container(cli: Any, topo: Topology, short: str) -> Any:
    """The running task container of stack service `short` on this node (the singletons are
    placed on a manager)."""
    name = f"{topo.swarm.stack}_{short}"
    found = sdk.list_containers(
        cli, {"label": f"{SERVICE_LABEL}={name}", "status": "running"}, every=False
    )
    if not found:
        hint = "run the task on the swarm manager; `invoke status` shows the services"
        raise EseError(f"no running {name} container on this node", hint)
    return found[0]


def service_get(cli: Any, topo: Topology, short: str, port: int, path: str) -> str:
    """GET `path` from a service's own port inside its container (busybox wget; the port is
    unpublished): Prometheus' and Alertmanager's APIs.

    No `-T` timeout: Debian's busybox wget (the offline stand-ins) crashes with it.
    """
    url = f"http://127.0.0.1:{port}{path}"
    code, output = service_container(cli, topo, short).exec_run(["wget", "-qO-", url])
    text = output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output)
    if code != 0:
        raise OSError(f"wget {url} in the {short} container exited {code}: {text.strip()}")
    return text


def prometheus_get(cli: Any, topo: Topology, path: str) -> str:
    """GET a Prometheus API path inside its container."""
    return service_get(cli, topo, topo.prometheus.name, topo.prometheus.port, path)


def ingest_targets(text: str) -> dict[str, str]:
    """shard label -> health of the ingest replicas' scrape targets (/api/v1/targets)."""
    data = json.loads(text).get("data", {})
    return {
        t["labels"].get("shard", t["labels"].get("instance", "?")): t.get("health", "?")
        for t in data.get("activeTargets", [])
        if t.get("labels", {}).get("job") == "ese-server"
        and t.get("labels", {}).get("role") == "ingest"
    }


def prometheus_view(targets: dict[str, str], n: int) -> tuple[bool, str]:
    """Exactly `n` ingest targets, all scraped successfully."""
    up = sum(1 for h in targets.values() if h == "up")
    return len(targets) == n and up == n, f"{len(targets)} ingest targets, {up} up"
