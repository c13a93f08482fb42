"""The flows behind `invoke cluster.up`, `cluster.kill`, `cluster.start` and `cluster.down`,
and the cluster's part of `invoke status`.

cluster.up, step by step: refuse a busy published port (before anything is made), pick the
node and registry images, find the rights a node needs, make the network and the registry,
create and start the nodes, form the swarm (labelled as ese.render.swarm_nodes deals the
labels), push the stack's images, then deploy through `invoke swarm.up`'s flow on node 1's
engine with those images (`deploy_stack`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ese.cluster import (
    host_engine,
    host_ports,
    membership,
    network,
    nodes,
    placement,
    preflight,
    privileges,
    registry,
    spec,
    summary,
)
from ese.cluster.summary import Cluster
from ese.engine import images, waits
from ese.errors import EseError
from ese.flows import shared
from ese.flows import swarm as swarm_flow


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
    cli = cli or host_engine.client()
    existing = nodes.find(cli, topo)
    names = preflight.check_shape(topo, nodes_count, managers, existing)
    by_name = {b.name: b for b in existing}
    wanted = spec.published(topo) if publish is None else list(publish)
    preflight.check_published(by_name.get(names[0]), wanted)
    host_ports.refuse_busy(cli, wanted, names[0])  # before anything is made
    if managers % 2 == 0:
        print(f"note: {managers} managers keep a majority no better than {managers - 1}")
    plan = images.plan(topo, images_mode, cli, only=images.CLUSTER_ONLY)
    image = plan.ref("node")
    if existing:
        rights = privileges.of_node(existing[0])
    else:
        rights = dict(privileges.choose(cli, image, f"{topo.cluster.node_prefix}probe"))
    addresses = network.ensure(cli, topo, nodes.remembered_subnet(cli, topo))
    port = registry.ensure(cli, topo, plan.ref("registry"), timeout)
    clients = nodes.bring_up(
        cli,
        topo,
        by_name,
        names,
        image=image,
        rights=rights,
        addresses=addresses,
        published=wanted,
        group=host_engine.socket_group(),
        timeout=timeout,
    )
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
        refs = registry.push_stack(cli, topo, port, build=build, mode=images_mode)
    result = Cluster(topo, names, manager, spec.docker_host(names[0]), port, refs)
    if push_stack and stack is not None:
        deploy_stack(result, stack)
    print()
    print("\n".join(summary.lines(result)))
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


def _named(name: str | None, task: str) -> str:
    if not name:
        raise EseError("--node is required", f"e.g. invoke cluster.{task} --node ese-node-2")
    return name


def kill(name: str | None, cli: Any = None) -> None:
    """SIGKILL a node container: a machine lost."""
    name = _named(name, "kill")
    topo = shared.topology()
    cli = cli or host_engine.client()
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
    cli = cli or host_engine.client()
    box = nodes.get(cli, topo, name)
    if box.status != "running":
        nodes.start(box)
    own = nodes.wait_engine(box, timeout)
    manager = membership.manager_client(topo, cli, skip=name) or own
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
    cli = cli or host_engine.client()
    boxes = nodes.find(cli, topo)
    if not boxes:
        return None
    return summary.node_lines(membership.manager_client(topo, cli), boxes)


def status_lines(cli: Any = None) -> list[str] | None:
    """`invoke status` with a cluster up: its nodes, the replicas on each, then the Swarm
    stack's report as a manager sees it; None without a cluster."""
    head = node_lines(cli)
    if head is None:
        return None
    topo = shared.topology()
    manager = membership.manager_client(topo, cli or host_engine.client())
    if manager is None:
        return head
    placed = placement.lines(placement.running_tasks(manager, topo))
    return [*head, "", *placed, "", *(swarm_flow.status_lines(cli=manager) or [])]


def down(volumes: bool, cli: Any = None) -> None:
    """Remove the nodes, the registry (with the tags pushed through it), the network, the
    socket directories, and with `volumes` every volume of the cluster."""
    topo = shared.topology()
    cli = cli or host_engine.client()
    boxes = nodes.find(cli, topo)
    nodes.remove(boxes, graceful=not volumes)  # volumes kept: a clean engine shutdown
    had_registry = registry.remove(cli, topo)
    had_network = network.remove(cli, topo)
    nodes.remove_socket_dirs(sorted({*(b.name for b in boxes), *nodes.leftover_socket_dirs(topo)}))
    removed = nodes.remove_volumes(cli, topo) if volumes else []
    if not (boxes or had_registry or had_network or removed):
        print("no cluster here: nothing to remove")
        return
    kept = "" if volumes else " (its volumes stay: `invoke cluster.down --volumes` removes them)"
    print(f"cluster {topo.cluster.network} removed{kept}")
