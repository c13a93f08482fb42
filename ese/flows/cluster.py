"""The flows behind `invoke cluster.up`, `cluster.kill`, `cluster.start` and `cluster.down`,
and the cluster's part of `invoke status`.

cluster.up, step by step: refuse a busy published port (before anything is made), pick the
node and registry images, find the rights a node needs, make the network and the registry,
create and start the nodes, form the swarm (labelled as ese.render.swarm_nodes deals the
labels), push the stack's images, then deploy through `invoke swarm.up`'s flow on node 1's
engine with those images (`deploy_stack`).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ese.cluster import (
    host_ports,
    membership,
    network,
    nodes,
    placement,
    privileges,
    registry,
    spec,
)
from ese.engine import images, waits
from ese.errors import EseError
from ese.flows import shared
from ese.flows import swarm as swarm_flow
from ese.host import sdk, shells
from ese.swarm import calls, stack_images
from ese.swarm.state import node_state
from ese.topology import Topology

DEFAULT_SOCKET = "/var/run/docker.sock"


@dataclass
class Cluster:
    """What cluster.up made; a deploy goes through `manager` (or the CLI with `docker_host`)
    with the images in `image_refs`."""

    topo: Topology
    names: list[str]
    manager: Any  # the SDK client of node 1's engine, a swarm manager
    docker_host: str  # DOCKER_HOST for the docker CLI and `invoke swarm.*`
    registry_port: int  # this machine pushes to 127.0.0.1:<port>
    image_refs: dict[str, str] = field(default_factory=dict)  # ESE_*_IMAGE -> what nodes pull


def _into_cluster(value: str) -> bool:
    return value.startswith(f"unix://{spec.SOCKET_ROOT}/")


def host_docker(environ: Mapping[str, str] = os.environ) -> Any:
    """This machine's engine, also when DOCKER_HOST points at a node (as cluster.up says to
    set it for the swarm tasks)."""
    if not _into_cluster(environ.get("DOCKER_HOST", "")):
        return shared.docker()
    print("DOCKER_HOST points at a cluster node; the cluster tasks use this machine's engine")
    env = {k: v for k, v in environ.items() if k != "DOCKER_HOST"}
    return sdk.client(lambda: importlib.import_module("docker").from_env(environment=env))


def socket_group(environ: Mapping[str, str] = os.environ) -> int:
    """The group that owns this machine's engine socket, given to the node sockets too: who
    may use this engine may use its nodes. (A node's own `docker` group id names some other
    group here.) root when the engine is not reached through a local socket."""
    host = environ.get("DOCKER_HOST", "")
    if _into_cluster(host):
        host = ""
    if host and not host.startswith("unix://"):
        return 0
    try:
        return os.stat(host.removeprefix("unix://") or DEFAULT_SOCKET).st_gid
    except OSError:  # no such socket here (Docker Desktop's lives in its VM): root only
        return 0


def rights_of(box: Any) -> dict[str, Any]:
    """The rights an existing node was created with (no need to ask the engine again)."""
    host = (box.attrs or {}).get("HostConfig") or {}
    return dict(privileges.PRIVILEGED if host.get("Privileged") else privileges.CAPABILITIES)


def _check_shape(topo: Topology, count: int, managers: int, existing: Sequence[Any]) -> list[str]:
    if managers > count:
        raise EseError(
            f"--managers {managers} is more than --nodes {count}",
            "e.g. --nodes 3 --managers 1 (or 3: an odd count keeps a majority when one is lost)",
        )
    names = spec.node_names(topo, count)
    extra = [b.name for b in existing if b.name not in names]
    if extra:
        raise EseError(
            f"the cluster has {len(existing)} nodes; --nodes {count} would leave out "
            f"{', '.join(extra)}",
            f"run `invoke cluster.down` first, or ask for --nodes {len(existing)}",
        )
    return names


def _check_published(first: Any | None, wanted: Sequence[spec.Published]) -> None:
    """A node 1 made earlier publishes what this run asks for (a container cannot change it)."""
    if first is None:
        return
    bindings = ((first.attrs or {}).get("HostConfig") or {}).get("PortBindings") or {}
    have = sorted(
        f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}"
        for v in bindings.values()
        for b in v or []
    )
    want = sorted(f"{bind}:{port}" for bind, port in spec.port_bindings(wanted).values())
    if have != want:
        raise EseError(
            f"{first.name} publishes {', '.join(have) or 'no port'}, "
            f"not {', '.join(want) or 'none'}",
            "run `invoke cluster.down` first (the volumes stay), then `invoke cluster.up`",
        )


def up(
    *,
    nodes_count: int,
    managers: int,
    images_mode: str,
    build: bool,
    timeout: float,
    publish: Sequence[spec.Published] | None = None,
    push_stack: bool = True,
    stack: StackOptions | None = None,
    cli: Any = None,
) -> Cluster:
    """Make (or complete) the cluster: nodes, registry, swarm, the stack's images pushed; then
    the stack deployed through `invoke swarm.up`'s flow on node 1's engine.

    `publish` overrides the ports node 1 publishes (tests publish none); `push_stack=False`
    skips the stack's images and the deploy; `stack=None` pushes but does not deploy.
    """
    topo = shared.topology()
    cli = cli or host_docker()
    existing = nodes.find(cli, topo)
    names = _check_shape(topo, nodes_count, managers, existing)
    by_name = {b.name: b for b in existing}
    wanted = spec.published(topo) if publish is None else list(publish)
    _check_published(by_name.get(names[0]), wanted)
    host_ports.refuse_busy(cli, wanted, names[0])  # before anything is made
    if managers % 2 == 0:
        print(f"note: {managers} managers keep a majority no better than {managers - 1}")
    plan = images.plan(topo, images_mode, cli, only=images.CLUSTER_ONLY)
    image = plan.ref("node")
    if existing:
        rights = rights_of(existing[0])
    else:
        rights = dict(privileges.choose(cli, image, f"{topo.cluster.node_prefix}probe"))
    addresses = network.ensure(cli, topo, nodes.remembered_subnet(cli, topo))
    port = registry.ensure(cli, topo, plan.ref("registry"), timeout)
    group = socket_group()
    boxes = {}
    for number, name in enumerate(names, start=1):
        box = by_name.get(name)
        if box is None:
            ports = wanted if number == 1 else []
            box = nodes.create(cli, topo, number, image, rights, addresses, ports, group)
        if box.status != "running":
            nodes.start(box)
        boxes[name] = box
    clients = {name: nodes.wait_engine(box, timeout) for name, box in boxes.items()}
    manager = membership.form(
        clients,
        addresses,
        spec.roles(names, managers),
        spec.labels(topo, names),
        spec.managed_labels(topo),
        timeout,
    )
    refs: dict[str, str] = {}
    if push_stack:
        picked = stack_images.resolve(cli, topo, build=build, mode=images_mode)
        refs = registry.push(cli, topo, picked, port)
    result = Cluster(topo, names, manager, spec.docker_host(names[0]), port, refs)
    if push_stack and stack is not None:
        deploy_stack(result, stack)
    print()
    print("\n".join(summary(result)))
    return result


@dataclass(frozen=True)
class StackOptions:
    """What the deploy on the cluster takes from the task (as `invoke swarm.up` does)."""

    timeout: float
    grafana_timeout: float
    log_lines: int
    grafana_url_override: str = ""
    webclient_port: int = 3006


def deploy_stack(cluster: Cluster, options: StackOptions) -> None:
    """`invoke swarm.up`'s flow against node 1's engine, with the images the nodes pull from
    the cluster's registry; it waits for every service and provisions Grafana through this
    machine's published port."""
    swarm_flow.up(
        build=False,
        images_mode="auto",  # unused: the images are given
        replicas=None,
        registry="",
        timeout=options.timeout,
        grafana_timeout=options.grafana_timeout,
        log_lines=options.log_lines,
        grafana_url_override=options.grafana_url_override,
        webclient_port=options.webclient_port,
        cli=cluster.manager,
        engine_env={"DOCKER_HOST": cluster.docker_host},
        image_refs=cluster.image_refs,
        ports_checked=True,  # host_ports.refuse_busy did, before node 1 took them
    )


def summary(cluster: Cluster, shell: str | None = None) -> list[str]:
    """The nodes, the registry and the line that points the docker CLI at the cluster."""
    topo = cluster.topo
    rows = membership.rows(cluster.manager)
    width = max(len(r.name) for r in rows)
    lines = [f"cluster {topo.cluster.network}: {len(cluster.names)} node(s)"]
    lines += ["  " + r.line(width) for r in rows]
    lines.append(
        f"registry {spec.registry_address(topo)} on the cluster network "
        f"(this machine pushes to 127.0.0.1:{cluster.registry_port})"
    )
    lines.append("point the docker CLI and `invoke swarm.*` at the cluster:")
    if shell:
        return [*lines, "  " + shells.set_line(shell, cluster.docker_host, var="DOCKER_HOST")]
    width = max(len(s) for s in shells.SHELLS)
    for name in shells.SHELLS:
        line = shells.set_line(name, cluster.docker_host, var="DOCKER_HOST")
        lines.append(f"  {name + ':':<{width + 1}}  {line}")
    return lines


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


def _named(name: str | None, task: str) -> str:
    if not name:
        raise EseError("--node is required", f"e.g. invoke cluster.{task} --node ese-node-2")
    return name


def kill(name: str | None, cli: Any = None) -> None:
    """SIGKILL a node container: a machine lost."""
    name = _named(name, "kill")
    topo = shared.topology()
    cli = cli or host_docker()
    box = nodes.get(cli, topo, name)
    if box.status != "running":
        print(
            f"{name} is not running ({box.status}); `invoke cluster.start --node {name}` starts it"
        )
        return
    nodes.kill(box)
    print(
        f"{name} killed; the swarm marks it Down after its missed heartbeats; "
        f"`invoke cluster.start --node {name}` brings it back"
    )


def start(name: str | None, timeout: float, cli: Any = None) -> None:
    """Start a node container again; wait until its engine answers and the swarm lists it Ready."""
    name = _named(name, "start")
    topo = shared.topology()
    cli = cli or host_docker()
    box = nodes.get(cli, topo, name)
    if box.status != "running":
        nodes.start(box)
    own = nodes.wait_engine(box, timeout)
    manager = manager_client(topo, cli, skip=name) or own
    seconds = waits.wait_reached(
        lambda: membership.rejoined(own, manager, name),
        f"{name} back in the swarm",
        timeout,
        f"see `docker logs {name}`; `invoke cluster.down`, then `invoke cluster.up` makes it anew",
    )
    print(f"{name} is back: Ready in the swarm ({seconds:.1f}s after its engine answered)")


def node_lines(cli: Any = None) -> list[str] | None:
    """Each node, Ready or Down, manager or worker, as a manager sees it; None without a
    cluster. (For `invoke status`.)"""
    topo = shared.topology()
    cli = cli or host_docker()
    boxes = nodes.find(cli, topo)
    if not boxes:
        return None
    manager = manager_client(topo, cli)
    if manager is None:
        lines = ["Cluster nodes (no manager answers; containers only)"]
        return lines + [f"  {b.name:<12}  container {b.status}" for b in boxes]
    rows = membership.rows(manager)
    width = max(len(r.name) for r in rows)
    return ["Cluster nodes (as the swarm's managers see them)"] + [
        "  " + r.line(width) for r in rows
    ]


def status_lines(cli: Any = None) -> list[str] | None:
    """`invoke status` with a cluster up: its nodes, the replicas on each, then the Swarm
    stack's report as a manager sees it; None without a cluster."""
    head = node_lines(cli)
    if head is None:
        return None
    topo = shared.topology()
    manager = manager_client(topo, cli or host_docker())
    if manager is None:
        return head
    placed = placement.lines(placement.running_tasks(manager, topo))
    return [*head, "", *placed, "", *(swarm_flow.status_lines(cli=manager) or [])]


def remove_socket_dirs(names: Sequence[str]) -> None:
    """The node socket directories on this machine, and their parent when it is empty."""
    root = Path(spec.SOCKET_ROOT)
    for name in names:
        folder = root / name
        if folder.exists():
            print(f"removing {folder}")
            try:
                shutil.rmtree(folder)
            except OSError as exc:
                print(f"left {folder}: {exc.strerror} (made by the engine; remove it as root)")
    with contextlib.suppress(OSError):  # not empty (a directory left above), or not there
        root.rmdir()


def down(volumes: bool, cli: Any = None) -> None:
    """Remove the nodes, the registry (with the tags pushed through it), the network, the
    socket directories, and with `volumes` every volume of the cluster."""
    topo = shared.topology()
    cli = cli or host_docker()
    boxes = nodes.find(cli, topo)
    nodes.remove(boxes, graceful=not volumes)  # volumes kept: a clean engine shutdown
    had_registry = registry.remove(cli, topo)
    had_network = network.remove(cli, topo)
    leftovers = [p.name for p in Path(spec.SOCKET_ROOT).glob(f"{topo.cluster.node_prefix}*")]
    remove_socket_dirs(sorted({*(b.name for b in boxes), *leftovers}))
    removed = []
    if volumes:
        label = f"{spec.CLUSTER_LABEL}={topo.cluster.network}"
        for volume in cli.volumes.list(filters={"label": label}):
            calls.call(
                f"docker volume rm {volume.name}",
                partial(volume.remove, force=True),
                hint=spec.AGAIN,
            )
            removed.append(volume.name)
    if not (boxes or had_registry or had_network or removed):
        print("no cluster here: nothing to remove")
        return
    kept = "" if volumes else " (its volumes stay: `invoke cluster.down --volumes` removes them)"
    print(f"cluster {topo.cluster.network} removed{kept}")
