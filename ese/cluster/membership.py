"""The swarm across the cluster's nodes, made through each node's engine: initialised on node 1,
joined by the others (as managers or workers), labelled for placement; and the node list as a
manager sees it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from ese.cluster import nodes, spec
from ese.engine import waits
from ese.swarm import calls
from ese.swarm.state import node_state
from ese.topology import Topology


@dataclass(frozen=True)
class NodeRow:
    """One swarm node as the manager sees it (`docker node ls`)."""

    name: str
    node_id: str
    state: str  # ready, down, unknown, disconnected
    role: str  # manager, worker
    leader: bool = False
    address: str = ""
    labels: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def line(self, width: int = 12) -> str:
        role = self.role + (" (leader)" if self.leader else "")
        marks = f"  labels {', '.join(self.labels)}" if self.labels else ""
        return (
            f"{self.name:<{width}}  {self.state.capitalize():<7} {role:<16} {self.address}{marks}"
        )


def rows(manager: Any) -> list[NodeRow]:
    """Every node of the swarm, by name."""
    out = []
    for node in manager.nodes.list():
        attrs = node.attrs or {}
        desc, status, node_spec = (attrs.get(k) or {} for k in ("Description", "Status", "Spec"))
        out.append(
            NodeRow(
                name=str(desc.get("Hostname", "")),
                node_id=str(attrs.get("ID", "")),
                state=str(status.get("State", "unknown")),
                role=str(node_spec.get("Role", "worker")),
                leader=bool((attrs.get("ManagerStatus") or {}).get("Leader")),
                address=str(status.get("Addr", "")),
                labels=tuple(
                    f"{k}={v}" for k, v in sorted((node_spec.get("Labels") or {}).items())
                ),
            )
        )
    return sorted(out, key=lambda r: (r.name, r.state != "ready"))


def leave(client: Any, name: str) -> None:
    calls.call(
        f"{spec.on(spec.docker_host(name))} swarm leave --force",
        lambda: client.swarm.leave(force=True),
        hint=spec.AGAIN,
    )


def init(client: Any, name: str, address: str) -> None:
    shown = f"{spec.on(spec.docker_host(name))} swarm init --advertise-addr {address}"
    calls.call(
        shown,
        lambda: client.swarm.init(advertise_addr=address, listen_addr=f"0.0.0.0:{spec.SWARM_PORT}"),
        hint=spec.AGAIN,
    )


def ensure_swarm(client: Any, name: str, address: str) -> None:
    """Node 1 a swarm manager advertised on `address`; a swarm from an earlier cluster that
    advertised elsewhere (a network made again) is left first."""
    node = node_state(client)
    if node.state == "active" and node.manager:
        advertised = str(((client.info().get("Swarm") or {}).get("NodeAddr")) or "")
        if advertised == address:
            return
    if node.state != "inactive":
        leave(client, name)
    init(client, name, address)


def join(
    manager: Any,
    client: Any,
    name: str,
    address: str,
    role: str,
    first_address: str,
) -> None:
    """Node `name` in the manager's swarm as `role` (left first when it is in another one)."""
    ids = {r.node_id for r in rows(manager)}
    node = node_state(client)
    if node.state == "active" and node.node_id in ids:
        return
    if node.state != "inactive":
        leave(client, name)
    # A node of this name that left (its volume lost) is still listed, Down: drop it first.
    for row in rows(manager):
        if row.name == name and not row.ready:
            calls.call(
                f"docker node rm --force {row.node_id}",
                partial(manager.api.remove_node, row.node_id, force=True),
                hint=spec.AGAIN,
            )
    token = (manager.swarm.attrs.get("JoinTokens") or {})[
        "Manager" if role == "manager" else "Worker"
    ]
    remote = f"{first_address}:{spec.SWARM_PORT}"
    shown = (
        f"{spec.on(spec.docker_host(name))} swarm join --advertise-addr {address} "
        f"--token <{role} token> {remote}"
    )
    calls.call(
        shown,
        lambda: client.swarm.join(
            remote_addrs=[remote],
            join_token=token,
            advertise_addr=address,
            listen_addr=f"0.0.0.0:{spec.SWARM_PORT}",
        ),
        hint=spec.AGAIN,
    )


def set_roles_and_labels(
    manager: Any,
    names: Sequence[str],
    roles: Mapping[str, str],
    labels: Mapping[str, Mapping[str, str]],
    owned: Sequence[str],
) -> None:
    """Each node's role, and the labels cluster.up owns set where `labels` says, removed
    elsewhere (other labels stay)."""
    for row in rows(manager):
        if row.name not in names or not row.ready:
            continue
        node = manager.nodes.get(row.node_id)
        current = dict(node.attrs.get("Spec") or {})
        have = dict(current.get("Labels") or {})
        want = {k: v for k, v in have.items() if k not in owned} | dict(labels[row.name])
        if current.get("Role") == roles[row.name] and have == want:
            continue
        added = [f"--label-add {k}={v}" for k, v in want.items() if have.get(k) != v]
        dropped = [f"--label-rm {k}" for k in have if k not in want]
        shown = " ".join(
            ["docker node update", f"--role {roles[row.name]}", *added, *dropped, row.name]
        )
        new_spec = {**current, "Role": roles[row.name], "Labels": want}
        calls.call(shown, partial(node.update, new_spec), hint=spec.AGAIN)


def wait_states(
    manager: Callable[[], Any],
    wanted: Mapping[str, str],
    timeout: float,
    hint: str,
    pace: waits.Pace = waits.QUICK_PACE,
) -> float:
    """Until the swarm lists each named node in its wanted state (ready, down); the seconds."""

    def look() -> tuple[bool, str]:
        found: dict[str, str] = {}
        for r in rows(manager()):  # Ready first: a stale entry of the same name may be listed
            found.setdefault(r.name, r.state)
        seen = ", ".join(f"{n} {found.get(n, 'missing')}" for n in wanted)
        return all(found.get(n) == s for n, s in wanted.items()), seen

    what = ", ".join(f"{n} {s}" for n, s in wanted.items())
    return waits.wait_reached(look, what, timeout, hint, pace)


def rejoined(own: Any, manager: Any, name: str) -> tuple[bool, str]:
    """Node `name` is back: its engine's swarm agent is active again (it reached a manager),
    and the manager lists it Ready (a listing alone may still be the one from before a kill)."""
    mine = node_state(own).state
    listed = next((r.state for r in rows(manager) if r.name == name), "missing")
    return mine == "active" and listed == "ready", f"its swarm agent {mine}, listed {listed}"


def form(
    clients: Mapping[str, Any],
    plan: spec.Addresses,
    roles: Mapping[str, str],
    labels: Mapping[str, Mapping[str, str]],
    owned: Sequence[str],
    timeout: float,
) -> Any:
    """The swarm of these nodes (the first initialises it), roles and labels set, every node
    Ready; node 1's client (a manager)."""
    names = list(clients)
    first = names[0]
    manager = clients[first]
    ensure_swarm(manager, first, plan.node(1))
    manager.swarm.reload()
    for number, name in enumerate(names[1:], start=2):
        join(manager, clients[name], name, plan.node(number), roles[name], plan.node(1))
    wait_states(lambda: manager, {n: "ready" for n in names}, timeout, spec.AGAIN)
    set_roles_and_labels(manager, names, roles, labels, owned)
    return manager


def manager_client(topo: Topology, cli: Any, skip: str = "") -> Any | None:
    """A client of a running node's engine that is an active swarm manager, if any answers."""
    for box in nodes.find(cli, topo):
        if box.status != "running" or box.name == skip:
            continue
        try:
            client = nodes.client(box.name, timeout=5)
            state = node_state(client)
        except Exception:  # the engine is starting or stopping: try the next node
            continue
        if state.state == "active" and state.manager:
            return client
    return None
