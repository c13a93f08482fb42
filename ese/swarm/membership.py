"""This engine in a swarm: made a manager when it is in none, and left again only when
`invoke swarm.up` made the swarm.

A marker file records that swarm.up made the swarm: the node id the swarm gave this engine
(first line) and, when a docker_gwbridge network was there before `swarm init` (perhaps made by
hand with its own subnet), a line saying so: that bridge is kept when the swarm is left.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ese.errors import EseError
from ese.paths import DOCKER_DIR
from ese.swarm import calls, gwbridge, state

# Written when swarm.up initialised the swarm: `swarm.down --leave` leaves only that swarm.
MARKER = DOCKER_DIR / ".swarm-created"
HAD_BRIDGE = f"had {gwbridge.NAME}"


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
    had_bridge = gwbridge.find(cli) is not None
    calls.call(
        f"docker swarm init --advertise-addr {address}",
        lambda: cli.swarm.init(advertise_addr=address),
    )
    lines = [state.node_state(cli).node_id, *([HAD_BRIDGE] if had_bridge else [])]
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(
        f"initialised a single-node swarm advertised on {address} "
        f"(`invoke swarm.down --leave` leaves it again)"
    )
    return True


def _recorded(marker: Path) -> list[str]:
    text = marker.read_text(encoding="utf-8") if marker.exists() else ""
    return [line.strip() for line in text.splitlines() if line.strip()]


def created_here(cli: Any, marker: Path | None = None) -> bool:
    """True when swarm.up created the swarm this engine is in (marker holds its node id)."""
    recorded = _recorded(marker or MARKER)
    return bool(recorded) and recorded[0] == state.node_state(cli).node_id


def leave(cli: Any, marker: Path | None = None) -> None:
    """Leave the swarm swarm.up created, and remove the docker_gwbridge its `swarm init` made
    (or say in one line why it stays). Call it once the stack's containers are gone: each
    holds an endpoint on that bridge."""
    marker = marker or MARKER
    if not created_here(cli, marker):
        print("not leaving the swarm: `invoke swarm.up` did not create it")
        return
    had_bridge = HAD_BRIDGE in _recorded(marker)[1:]
    calls.call("docker swarm leave --force", lambda: cli.swarm.leave(force=True))
    marker.unlink(missing_ok=True)
    if not had_bridge:
        print(gwbridge.remove(cli)[1])
    elif gwbridge.find(cli) is not None:
        print(f"kept network {gwbridge.NAME}: it was there before `invoke swarm.up` made the swarm")
