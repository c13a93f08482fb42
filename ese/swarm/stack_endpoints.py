"""The endpoint table of the Swarm stack: only the load balancer, the analytics shard and
Grafana are published."""

from __future__ import annotations

from ese.topology import Topology


def rows(topo: Topology, lan_ip: str | None, env_shown: str) -> list[tuple[str, str, str]]:
    """(what, URL, note) for the stack; `env_shown` is how docker/.env is named to the user."""
    lb, graf, shard = topo.balancer, topo.grafana, topo.analytics_shard
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
            "Prometheus, Alertmanager",
            "(overlay network only)",
            "`invoke status` (targets, firing alerts) asks them with docker exec",
        ),
        (
            "Redis, redis_exporter, ingest",
            "(overlay network only)",
            "`invoke swarm.scale --ingest N`",
        ),
    ]
