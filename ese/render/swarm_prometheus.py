"""prometheus/swarm/prometheus.yml: every replica found through Docker's DNS (tasks.<service>).

DNS service discovery needs no Docker socket (dockerswarm_sd_configs would). Each replica gets
the `shard` label (service@address, unique per replica) and the `role` label, so the dashboard
shows every replica as the compose stack shows every shard.

The alert rules are the compose stack's file (a Docker config mounted where `rule_files`
resolves, beside this file), and the job names are compose's, so the rules and the dashboard
select the same series. Every Redis is a target of its own through redis_exporter's
multi-target mode, labelled with its name (swarm_redis.py); the Sentinels likewise, in job
redis-sentinel. Alertmanager is one task: its service name resolves to that task
(endpoint_mode dnsrr), so its target is compose's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ese.render import prometheus_yml, swarm_nodes, swarm_redis
from ese.render.common import HEADER_NOTE, dump_yaml
from ese.render.prometheus_yml import HAPROXY_JOB, SHARD_JOB
from ese.topology import Topology

# How often the DNS names are re-resolved: a new replica is scraped within this time.
DNS_REFRESH = "5s"

# Hook for optional services: each returns extra scrape jobs for this topology (empty when the
# service is not configured).
ScrapeHook = Callable[[Topology], list[dict[str, Any]]]
EXTRA_SCRAPES: list[ScrapeHook] = []


def _dns(service: str, port: int) -> dict[str, Any]:
    return {
        "names": [f"tasks.{service}"],
        "type": "A",
        "port": port,
        "refresh_interval": DNS_REFRESH,
    }


def shard_services(topo: Topology) -> list[tuple[str, str, int]]:
    """(service, role, port) of every ese-server service of the stack."""
    sw = topo.swarm
    out = [(sw.ingest_service, "ingest", topo.ingest_shards[0].port)]
    out += [(s.name, s.role, s.port) for s in topo.shards if s.role == "analytics"]
    return out


def config(topo: Topology) -> str:
    """The Prometheus configuration for the Swarm stack."""
    prom, lb = topo.prometheus, topo.balancer
    services = shard_services(topo)
    relabel: list[dict[str, Any]] = [
        {
            "source_labels": ["__meta_dns_name", "__address__"],
            "regex": r"tasks\.(.+);(.+)",
            "target_label": "shard",
            "replacement": "$1@$2",
        },
    ]
    for service, role, _ in services:
        relabel.append(
            {
                "source_labels": ["__meta_dns_name"],
                "regex": f"tasks\\.{service}",
                "target_label": "role",
                "replacement": role,
            }
        )
    doc = {
        **prometheus_yml.evaluation(topo),
        "scrape_configs": [
            {
                "job_name": SHARD_JOB,
                "dns_sd_configs": [_dns(name, port) for name, _, port in services],
                "relabel_configs": relabel,
            },
            {
                "job_name": HAPROXY_JOB,
                "dns_sd_configs": [_dns(lb.name, lb.exporter_port)],
            },
            *swarm_redis.scrape_jobs(topo),
            {
                "job_name": "prometheus",
                "static_configs": [{"targets": [f"localhost:{prom.port}"]}],
            },
            swarm_nodes.scrape_job(
                topo, _dns(topo.swarm.node_exporter_service, topo.swarm.node_exporter_port)
            ),
            *(job for hook in EXTRA_SCRAPES for job in hook(topo)),
        ],
    }
    header = f"{HEADER_NOTE}\nSwarm stack {topo.swarm.stack}: replicas found via tasks.<service>."
    return dump_yaml(doc, header)
