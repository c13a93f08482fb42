"""This engine in a swarm: made a manager when it is in none, and left again only when
`invoke swarm.up` made the swarm (a marker file holds the node id it got)."""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Any

from ese.errors import EseError
from ese.paths import DOCKER_DIR
from ese.swarm import calls, state

# Written when swarm.up initialised the swarm: `swarm.down --leave` leaves only that swarm.
MARKER = DOCKER_DIR / ".swarm-created"
GWBRIDGE = "docker_gwbridge"


def ensure_swarm(cli: Any, advertise: str | None, marker: Path | None = None) -> bool:
    """Make this engine a swarm manager advertised on `advertise` (else 127.0.0.1); True when
    this call created the swarm."""
    marker = marker or MARKER
    node = state.node_state(cli)
    if node.state == "active":
        if not node.manager:
            raise EseError(
                "this engine is a swarm worker, not a manager",
                "run `invoke swarm.up` on a manager node",
            )
        return False
    if node.state != "inactive":
        hint = "fix it (`docker info`, `docker swarm unlock`) or `docker swarm leave`"
        raise EseError(f"this engine's swarm state is {node.state!r}", hint)
    address = advertise or "127.0.0.1"
    calls.call(
        f"docker swarm init --advertise-addr {address}",
        lambda: cli.swarm.init(advertise_addr=address),
    )
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(state.node_state(cli).node_id + "\n", encoding="utf-8")
    print(
        f"initialised a single-node swarm advertised on {address} "
        f"(`invoke swarm.down --leave` leaves it again)"
    )
    return True


def created_here(cli: Any, marker: Path | None = None) -> bool:
    """True when swarm.up created the swarm this engine is in (marker holds its node id)."""
    marker = marker or MARKER
    if not marker.exists():
        return False
    return marker.read_text(encoding="utf-8").strip() == state.node_state(cli).node_id


def leave(cli: Any, marker: Path | None = None) -> None:
    """Leave the swarm swarm.up created, and remove the bridge its `swarm init` made."""
    marker = marker or MARKER
    if not created_here(cli, marker):
        print("not leaving the swarm: `invoke swarm.up` did not create it")
        return
    calls.call("docker swarm leave --force", lambda: cli.swarm.leave(force=True))
    marker.unlink(missing_ok=True)
    # `swarm init` made this bridge for the published ports; leaving keeps it.
    for bridge in cli.networks.list(names=[GWBRIDGE]):
        print(f"removing network {GWBRIDGE}")
        with suppress(Exception):  # docker.errors.APIError: still in use; harmless
            bridge.remove()
