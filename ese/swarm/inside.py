"""Prometheus and Alertmanager asked inside their task containers: the Swarm stack does not
publish their ports (Swarm cannot bind 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ese.engine import readings
from ese.engine.readings import Fetch
from ese.errors import EseError
from ese.host import sdk
from ese.swarm import state
from ese.topology import Topology


def service_container(cli: Any, topo: Topology, short: str) -> Any:
    """The running task container of stack service `short` on this node (the singletons are
    placed on a manager)."""
    name = state.full_name(topo, short)
    found = sdk.list_containers(
        cli, {"label": f"{state.SERVICE_LABEL}={name}", "status": "running"}, every=False
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


def unpublished(topo: Topology) -> dict[str, tuple[str, int]]:
    """The base URL the compose stack publishes each on -> (service, its own port)."""
    prom, am = topo.prometheus, topo.alertmanager
    return {
        readings.local_url(prom.bind, prom.port, ""): (prom.name, prom.port),
        readings.local_url(am.bind, am.port, ""): (am.name, am.port),
    }


def routed(cli: Any, topo: Topology, get: Fetch) -> Fetch:
    """`get`, except that Prometheus' and Alertmanager's URLs are asked inside their
    containers: the compose stack's readers work on the Swarm stack unchanged."""
    inside = unpublished(topo)

    def fetch(url: str, headers: Mapping[str, str]) -> str:
        for base, (short, port) in inside.items():
            if url.startswith(base + "/"):
                return service_get(cli, topo, short, port, url.removeprefix(base))
        return get(url, headers)

    return fetch


def relabel(topo: Topology, lines: list[str]) -> list[str]:
    """Report headings that name a compose URL name the `docker exec` that asked instead."""
    for base, (short, _) in unpublished(topo).items():
        shown = f"docker exec {state.full_name(topo, short)}.* wget {base}"
        lines = [line if line.startswith(" ") else line.replace(base, shown) for line in lines]
    return lines
