"""The `docker_gwbridge` network: `docker swarm init` makes it (the overlay tasks' way out and
the published ports), and leaving the swarm keeps it.

The engine refuses to remove it while an endpoint is on it: the gateway endpoints of task
containers that are still stopping, and the ingress sandbox's, which leaving the swarm tears
down in the background. So the removal waits, bounded, until the network lists no endpoint,
and only then removes it. An engine can also keep counting an endpoint that is no longer there
("has active endpoints" with nothing attached; only a restart of dockerd clears it): then the
bridge is left, and one line says so and why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ese.swarm import calls

NAME = "docker_gwbridge"
WAIT = 30.0  # seconds for its endpoints to go and the engine to let it be removed


def find(cli: Any) -> Any | None:
    """The bridge with its endpoints (inspected), or None. The engine's name filter matches
    parts of names, so the name is compared as well."""
    for network in cli.networks.list(names=[NAME]):
        if network.name == NAME:
            network.reload()  # a listed network leaves its endpoints out
            return network
    return None


def endpoints(network: Any) -> list[str]:
    """The names of the endpoints on `network`, e.g. gateway_ingress-sbox."""
    attached = (network.attrs or {}).get("Containers") or {}
    return sorted(str(ep.get("Name") or key) for key, ep in attached.items())


def remove(
    cli: Any,
    wait: float = WAIT,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> tuple[bool, str]:
    """Remove the bridge once no endpoint is on it, waiting at most `wait` seconds; whether it
    is gone, and the one line that says what happened."""
    clock, sleep = clock or time.monotonic, sleep or time.sleep
    start, why, shown, last = clock(), "", False, ""
    while True:
        try:
            network = find(cli)
            if network is None:
                return True, f"removed network {NAME}" if shown else f"network {NAME} is gone"
            attached = endpoints(network)
            if attached:
                why = f"endpoints still on it: {', '.join(attached)}"
            else:
                if not shown:
                    print(f"> docker network rm {NAME}", flush=True)
                    shown = True
                network.remove()
                return True, f"removed network {NAME}"
        except Exception as exc:  # docker.errors.APIError: "... has active endpoints"
            why = calls.reason(exc)
        if why != last:
            print(f"[{clock() - start:4.0f}s] waiting to remove network {NAME}: {why}")
            last = why
        if clock() - start >= wait:
            return False, (
                f"left network {NAME}: {why} (after {wait:.0f}s); harmless, the next "
                f"`docker swarm init` uses it again; after a restart of the Docker engine "
                f"`docker network rm {NAME}` removes it"
            )
        sleep(1.0)
