"""The ports node 1 publishes on this machine: checked before the cluster makes anything, and
a busy one named with what holds it (a container, a Swarm service, or a process)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ese.cluster.spec import Published
from ese.errors import EseError
from ese.host import ports, sdk

HINT = (
    "stop it (the compose stack: `invoke down`; the Swarm stack: `invoke swarm.down`), then "
    "run `invoke cluster.up` again"
)


def container_holding(cli: Any, port: int) -> Any | None:
    """The running container that publishes host port `port`, if one does."""
    for box in sdk.list_containers(cli, {"status": "running"}, every=False):
        published = ((box.attrs or {}).get("HostConfig") or {}).get("PortBindings") or {}
        for bindings in published.values():
            if any(str(b.get("HostPort")) == str(port) for b in bindings or []):
                return box
    return None


def service_holding(cli: Any, port: int) -> str:
    """The Swarm service of this engine that publishes `port`, or ''."""
    try:
        services = cli.api.services()
    except Exception:  # not a swarm manager: no services to ask about
        return ""
    for svc in services:
        for p in ((svc.get("Endpoint") or {}).get("Ports")) or []:
            if p.get("PublishedPort") == port:
                return str((svc.get("Spec") or {}).get("Name", ""))
    return ""


def describe(box: Any) -> str:
    project = (box.labels or {}).get(sdk.PROJECT_LABEL)
    return f"container {box.name}" + (f" (compose project {project})" if project else "")


def refuse_busy(
    cli: Any,
    wanted: Sequence[Published],
    own: str,
    is_free: Callable[[int, str], bool] | None = None,
    holder: Callable[[int], str] | None = None,
) -> None:
    """An EseError for the first busy port, unless the cluster's own node `own` holds it (a
    cluster.up run again)."""
    is_free, holder = is_free or ports.is_free, holder or ports.holder
    for p in wanted:
        if is_free(p.port, p.bind):
            continue
        box = container_holding(cli, p.port)
        if box is not None and box.name == own:
            continue
        who = describe(box) if box is not None else ""
        who = who or (
            f"Swarm service {s}" if (s := service_holding(cli, p.port)) else holder(p.port)
        )
        raise EseError(ports.busy_message(p.service, p.port, who), HINT)
