"""The flows behind `invoke swarm.up`, `swarm.scale`, `swarm.down` and the swarm part of status.

Thin: the engine-level work is in ese/swarm/ (membership, stack_images, stack_secrets, deploy,
converge, scaling, teardown, gwbridge, inside, stack_endpoints); these flows tie it to
topology.toml, docker/.env, the rendered configs, Grafana and the printed table.

Every flow takes the Docker client (`cli`), and up and down the environment of their
`docker stack` command (`engine_env`). Both default to the engine this process's environment
names (DOCKER_HOST), so another engine, such as a cluster's manager, is one argument away.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ese.engine import readings
from ese.engine.readings import Fetch
from ese.errors import EseError
from ese.flows import backend as backend_flow
from ese.flows import endpoints, provisioning, shared
from ese.flows import status as status_report
from ese.host import secrets
from ese.render.haproxy_cfg import CORS_VAR
from ese.swarm import (
    converge,
    deploy,
    inside,
    membership,
    node_labels,
    scaling,
    stack_endpoints,
    stack_images,
    stack_secrets,
    state,
    store_status,
    teardown,
)


def up(
    *,
    build: bool,
    images_mode: str,
    replicas: Any,
    registry: str,
    timeout: float,
    grafana_timeout: float,
    log_lines: int,
    grafana_url_override: str = "",
    webclient_port: int = 3006,
    cli: Any = None,
    engine_env: Mapping[str, str] | None = None,
    image_refs: Mapping[str, str] | None = None,
    ports_checked: bool = False,
) -> None:
    """Deploy (or update) the stack, wait until every replica runs, provision Grafana.

    `image_refs` (ESE_*_IMAGE -> ref), from `invoke cluster.up`: images already in a registry
    every node pulls from, so none is picked, built or pushed here, and the deploy does not
    ask a registry for digests (`--resolve-image never`: this machine may not reach it by
    that name). `ports_checked`: the caller has checked the published ports (a cluster's
    node holds them on this machine).
    """
    topo = shared.topology()
    count = None if replicas is None else scaling.check_count(replicas, "--replicas", topo)
    if registry:
        stack_images.check_registry(registry)
    shared.render_if_stale(topo)
    values = shared.ensure_env()
    cli = cli or shared.docker()
    active = state.node_state(cli).state == "active"
    current = state.ingest_replicas(cli, topo) if active else None
    if current is None and not ports_checked:  # else a busy port fails its task over and over
        deploy.check_ports(topo)
    lan_ip = shared.lan_or_none()  # once: the swarm's address, the page's origins, the table
    membership.ensure_swarm(cli, lan_ip)
    node_labels.ensure(cli, topo)
    if image_refs is not None:
        refs = dict(image_refs)
    else:
        refs = stack_images.resolve(cli, topo, build=build, mode=images_mode)
        if registry:
            refs = stack_images.push(cli, refs, registry)
    env_shown = endpoints.show_path(secrets.ENV_FILE)
    names = stack_secrets.ensure_secrets(cli, topo, values, env_shown)
    count = count or current or topo.swarm.ingest_replicas
    if current is not None and replicas is None:
        print(f"keeping {count} {topo.swarm.ingest_service} replicas (set by swarm.scale)")
    env = deploy.deploy_env(values, names, refs, count)
    env[CORS_VAR] = backend_flow.page_origins(webclient_port, lan_ip)
    deploy.deploy(topo, env, registry=bool(registry), engine_env=engine_env)
    converge.wait_stack(cli, topo, timeout, log_lines)
    stack_secrets.prune_secrets(cli, topo, set(names.values()))
    provisioning.provision_after_up(topo, values, grafana_url_override, grafana_timeout)
    print()
    print(endpoints.table(stack_endpoints.rows(topo, lan_ip, env_shown)))


def scale(
    *,
    ingest: Any,
    timeout: float,
    log_lines: int,
    cli: Any = None,
    get: Fetch | None = None,
) -> dict[str, float]:
    """Scale the ingest service; wait until its replicas run, HAProxy and Prometheus see them."""
    topo = shared.topology()
    if ingest is None:
        raise EseError("--ingest is required", "e.g. invoke swarm.scale --ingest 3")
    n = scaling.check_count(ingest, "--ingest", topo)
    cli = cli or shared.docker()
    if state.ingest_replicas(cli, topo) is None:
        raise EseError(f"stack {topo.swarm.stack} is not deployed", "run `invoke swarm.up` first")
    return scaling.scale(cli, topo, n, timeout, log_lines, get or readings.fetch)


def down(
    *,
    volumes: bool,
    leave: bool,
    timeout: float,
    cli: Any = None,
    engine_env: Mapping[str, str] | None = None,
) -> None:
    """Remove the stack (services, network, secrets, configs), its volumes, and the swarm."""
    topo = shared.topology()
    cli = cli or shared.docker()
    name = topo.swarm.stack
    if state.node_state(cli).state != "active":
        print("this engine is in no swarm: no stack to remove")
        membership.MARKER.unlink(missing_ok=True)
        return
    teardown.remove_stack(
        cli, name, volumes=volumes, timeout=timeout, containers_gone=leave, engine_env=engine_env
    )
    if leave:
        membership.leave(cli)
    print(f"stack {name} removed" + (" with its volumes" if volumes else ""))


def status_lines(get: Fetch = readings.fetch, cli: Any = None) -> list[str] | None:
    """`invoke status` for the Swarm stack; None when it is not deployed here."""
    topo = shared.topology()
    cli = cli or shared.docker()
    if state.node_state(cli).state != "active":
        return None
    found = state.services(cli, topo.swarm.stack)
    if not found:
        return None
    width = max(len(s.short) for s in found)
    lines = [f"Services (swarm stack {topo.swarm.stack})"]
    lines += [f"  {s.short:<{width}}  {s.state}" for s in found]
    env = secrets.read() if Path(secrets.ENV_FILE).exists() else {}
    # The compose report, with Prometheus and Alertmanager asked inside their containers.
    routed = inside.routed(cli, topo, get)
    report = status_report.report(topo, {}, env, get=routed)
    if topo.swarm.redis_replicas:
        url = store_status.query_url(topo)

        def store() -> list[str]:
            nodes = store_status.task_nodes(cli, topo.swarm.stack, topo.swarm.redis_services)
            return store_status.lines(routed(url, {}), nodes)

        report += status_report.section(f"Replicated store ({url})", store)
    return lines + inside.relabel(topo, report)
