"""`invoke status`: containers and health, HAProxy servers, Prometheus targets, alerts, Redis
memory, events stored."""

from __future__ import annotations

import urllib.error
from collections.abc import Callable, Mapping
from typing import Any

from ese.engine.readings import (
    Fetch,
    events_stored,
    fetch,
    haproxy_servers,
    local_url,
    prometheus_targets,
)
from ese.flows import shared, status_alerts
from ese.flows.endpoints import AUTH_OFF
from ese.host import sdk, secrets
from ese.host.sdk import ContainerInfo
from ese.topology import Topology


def container_lines(items: list[ContainerInfo]) -> list[str]:
    if not items:
        return ["  (no containers)"]
    width = max(len(i.name) for i in items)
    return [f"  {i.name:<{width}}  {i.state}" for i in items]


def section(title: str, body: Callable[[], list[str]]) -> list[str]:
    try:
        lines = body()
    except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
        reason = getattr(exc, "reason", None) or exc
        lines = [f"  unreachable: {reason}"]
    return [title, *lines]


def report(
    topo: Topology,
    containers: Mapping[str, list[ContainerInfo]],
    env: Mapping[str, str],
    get: Fetch = fetch,
    auth: bool = True,
) -> list[str]:
    """Every status section as printable lines; an unreachable source is a line, not a crash."""
    out: list[str] = [] if auth else [AUTH_OFF, ""]
    for project, items in containers.items():
        out += [f"Containers ({project})", *container_lines(items)]
    lb = topo.balancer
    stats_url = local_url(lb.bind, lb.port, f"{lb.stats_path};csv")

    def lb_lines() -> list[str]:
        rows = haproxy_servers(get(stats_url, {}))
        return [f"  {b}/{s}: {st}, {cur} sessions" for b, s, st, cur in rows] or ["  no servers"]

    out += section(f"HAProxy servers ({stats_url})", lb_lines)
    prom = topo.prometheus
    targets_url = local_url(prom.bind, prom.port, "/api/v1/targets")

    def prom_lines() -> list[str]:
        rows = prometheus_targets(get(targets_url, {}))
        return [f"  {j} {i}: {h}" + (f" ({e})" if e else "") for j, i, h, e in rows] or [
            "  no targets"
        ]

    out += section(f"Prometheus targets ({targets_url})", prom_lines)
    for title, body in status_alerts.sections(topo, get):
        out += section(title, body)
    shard = topo.analytics_shard
    stats = local_url(shard.bind, shard.port, "/stats")
    token = env.get("ESE_ANALYTICS_TOKEN", "") if auth else ""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    out += section(f"Events stored ({stats})", lambda: [f"  {events_stored(get(stats, headers))}"])
    return out


def containers(topo: Topology, cli: Any) -> dict[str, list[ContainerInfo]]:
    """The containers of both compose projects and the consumer, by project."""
    out = {
        topo.backend_project: sdk.project_containers(cli, topo.backend_project),
        topo.frontend_project: sdk.project_containers(cli, topo.frontend_project),
    }
    found = sdk.list_containers(cli, {"name": topo.consumer.name})
    out[topo.consumer.name] = [sdk.info(x) for x in found if x.name == topo.consumer.name]
    return out


def tokens_off(topo: Topology, cli: Any) -> bool:
    """True when the running ingest shard has no token (the backend was started --no-auth)."""
    mine = {"label": f"{sdk.PROJECT_LABEL}={topo.backend_project}"}
    for container in sdk.list_containers(cli, mine, every=False):
        if (container.labels or {}).get(sdk.SERVICE_LABEL) != topo.shards[0].name:
            continue
        env = ((container.attrs or {}).get("Config") or {}).get("Env") or []
        return f"{secrets.INGEST_TOKEN}=" in env or not any(
            e.startswith(f"{secrets.INGEST_TOKEN}=") for e in env
        )
    return False


def status_lines() -> list[str]:
    """`invoke status`: containers, HAProxy servers, Prometheus targets, events stored."""
    topo = shared.topology()
    cli = shared.docker()
    env = secrets.read() if secrets.ENV_FILE.exists() else {}
    return report(topo, containers(topo, cli), env, auth=not tokens_off(topo, cli))
