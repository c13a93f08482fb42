"""prometheus/prometheus.yml: scrape every shard, HAProxy's exporter, Redis' exporter and
Prometheus itself; evaluate the alert rules and send alerts to Alertmanager."""

from __future__ import annotations

from typing import Any

from ese.render.common import HEADER_NOTE, dump_yaml
from ese.topology import Topology

# Job names: the dashboard and the alert rules select on them.
SHARD_JOB = "ese-server"
HAPROXY_JOB = "haproxy"
REDIS_JOB = "redis"
# The rule file, relative to prometheus/ (mounted as /etc/prometheus, so a subdirectory works).
RULES_FILE = "rules/ese.rules.yml"


def evaluation(topo: Topology) -> dict[str, Any]:
    """What the compose and the Swarm Prometheus share: intervals, the rules, Alertmanager."""
    prom, am = topo.prometheus, topo.alertmanager
    return {
        "global": {
            "scrape_interval": prom.scrape_interval,
            "evaluation_interval": prom.scrape_interval,
        },
        "rule_files": [RULES_FILE],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"{am.name}:{am.port}"]}]}],
        },
    }


def config(topo: Topology) -> str:
    """The Prometheus configuration."""
    prom, lb, exporter = topo.prometheus, topo.balancer, topo.redis_exporter
    shard_targets: list[dict[str, Any]] = [
        {"targets": [f"{s.name}:{s.port}"], "labels": {"shard": s.name, "role": s.role}}
        for s in topo.shards
    ]
    doc = {
        **evaluation(topo),
        "scrape_configs": [
            {"job_name": SHARD_JOB, "static_configs": shard_targets},
            {
                "job_name": HAPROXY_JOB,
                "static_configs": [{"targets": [f"{lb.name}:{lb.exporter_port}"]}],
            },
            {
                "job_name": REDIS_JOB,
                "static_configs": [{"targets": [f"{exporter.name}:{exporter.port}"]}],
            },
            {
                "job_name": "prometheus",
                "static_configs": [{"targets": [f"localhost:{prom.port}"]}],
            },
        ],
    }
    return dump_yaml(doc, HEADER_NOTE)
