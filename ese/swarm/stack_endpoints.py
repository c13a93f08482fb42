"""The endpoint table of the Swarm stack: the load balancer, the analytics shard, Grafana and
Prometheus are published (from the edge node); the rest is on the overlay network only."""

from __future__ import annotations

from ese.topology import Topology


def rows(topo: Topology, lan_ip: str | None, env_shown: str) -> list[tuple[str, str, str]]:
    """(what, URL, note) for the stack; `env_shown` is how docker/.env is named to the user."""
    lb, graf, shard, prom = topo.balancer, topo.grafana, topo.analytics_shard, topo.prometheus
    host = lan_ip or "localhost"
    return [
        ("Load balancer", f"http://{host}:{lb.port}", "ingest: POST /event, POST /events"),
        ("HAProxy stats", f"http://{host}:{lb.port}{lb.stats_path}", "one row per ingest replica"),
        (
            "Analytics",
            f"http://{host}:{shard.port}/events",
            f"token: ESE_ANALYTICS_TOKEN in {env_shown}",
        ),
        (
            "Grafana",
            f"http://{host}:{graf.port}/d/{graf.dashboard_uid}",
            f"login: GRAFANA_ADMIN_USER / GRAFANA_ADMIN_PASSWORD in {env_shown}",
        ),
        (
            "Prometheus",
            f"http://localhost:{prom.port}",
            "published by the edge node (a local cluster: on 127.0.0.1 only)",
        ),
        (
            "Alertmanager",
            "(overlay network only)",
            "`invoke status` (firing alerts) asks it with docker exec",
        ),
        (
            "Redis, redis_exporter, ingest",
            "(overlay network only)",
            "`invoke swarm.scale --ingest N`",
        ),
    ]
