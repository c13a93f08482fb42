"""Scaling the ingest service, and the checks that the replicas are in use: HAProxy routes to
exactly N and Prometheus scrapes exactly N."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from ese.engine import readings, waits
from ese.engine.readings import Fetch
from ese.errors import EseError
from ese.swarm import calls, converge, inside, state
from ese.topology import Topology

Probe = Callable[[], tuple[bool, str]]


def check_count(raw: Any, flag: str, topo: Topology) -> int:
    """A replica count from a flag: a whole number between 1 and max_ingest_replicas."""
    top = topo.swarm.max_ingest_replicas
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = 0
    if not 1 <= value <= top or str(raw).strip().lstrip("+") != str(value):
        raise EseError(
            f"{flag} must be a whole number between 1 and {top}, got {raw!r}",
            f"e.g. {flag} 3 (raise [swarm] max_ingest_replicas in topology.toml for more)",
        )
    return value


def lb_stats_url(topo: Topology) -> str:
    lb = topo.balancer
    return readings.local_url(lb.bind, lb.port, f"{lb.stats_path};csv")


def lb_servers(text: str, backend: str = "ingest") -> dict[str, str]:
    """Slot name -> status of the backend's servers, from HAProxy's stats CSV."""
    return {s: st for b, s, st, _ in readings.haproxy_servers(text) if b == backend}


def lb_view(servers: dict[str, str], n: int) -> tuple[bool, str]:
    """Exactly `n` servers UP and none half way (DOWN, DRAIN, NOLB); empty slots are MAINT."""
    up = sorted(s for s, st in servers.items() if st == "UP")
    other = sorted(f"{s} {st}" for s, st in servers.items() if st != "UP" and "MAINT" not in st)
    return len(up) == n and not other, f"{len(up)} UP" + (f", {', '.join(other)}" if other else "")


def prometheus_get(cli: Any, topo: Topology, path: str) -> str:
    """GET a Prometheus API path inside its container."""
    return inside.service_get(cli, topo, topo.prometheus.name, topo.prometheus.port, path)


def ingest_targets(text: str) -> dict[str, str]:
    """shard label -> health of the ingest replicas' scrape targets (/api/v1/targets)."""
    data = json.loads(text).get("data", {})
    return {
        t["labels"].get("shard", t["labels"].get("instance", "?")): t.get("health", "?")
        for t in data.get("activeTargets", [])
        if t.get("labels", {}).get("job") == "ese-server"
        and t.get("labels", {}).get("role") == "ingest"
    }


def prometheus_view(targets: dict[str, str], n: int) -> tuple[bool, str]:
    """Exactly `n` ingest targets, all scraped successfully."""
    up = sum(1 for h in targets.values() if h == "up")
    return len(targets) == n and up == n, f"{len(targets)} ingest targets, {up} up"


def balanced(cli: Any, topo: Topology, n: int, get: Fetch) -> tuple[Probe, Probe]:
    """Probes: HAProxy routes to exactly n replicas; Prometheus scrapes exactly n."""

    def lb() -> tuple[bool, str]:
        return lb_view(lb_servers(get(lb_stats_url(topo), {})), n)

    def prom() -> tuple[bool, str]:
        text = prometheus_get(cli, topo, "/api/v1/targets?state=active")
        return prometheus_view(ingest_targets(text), n)

    return lb, prom


def scale(
    cli: Any, topo: Topology, n: int, timeout: float, log_lines: int, get: Fetch
) -> dict[str, float]:
    """Scale the ingest service to `n`; wait until its replicas run and HAProxy and
    Prometheus see them; the seconds until each did."""
    service = state.full_name(topo, topo.swarm.ingest_service)
    started = time.monotonic()
    shown = f"docker service scale --detach {service}={n}"
    calls.call(shown, lambda: cli.services.get(service).scale(n))
    converge.wait_stack(cli, topo, timeout, log_lines, only=[topo.swarm.ingest_service])
    lb, prom = balanced(cli, topo, n, get)
    again = "run `invoke status` and `invoke swarm.scale` again"
    waits.wait_reached(lb, f"HAProxy routes to {n} replicas", timeout, again)
    seconds_lb = time.monotonic() - started
    waits.wait_reached(prom, f"Prometheus scrapes {n} replicas", timeout, again)
    seconds_prom = time.monotonic() - started
    print(
        f"{service}: {n} replicas, in HAProxy after {seconds_lb:.1f}s, "
        f"in Prometheus after {seconds_prom:.1f}s"
    )
    return {"haproxy": seconds_lb, "prometheus": seconds_prom}
