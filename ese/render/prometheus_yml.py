"""prometheus/prometheus.yml: scrape every shard, HAProxy's exporter and Prometheus itself."""

from __future__ import annotations

from typing import Any

from ese.render.common import HEADER_NOTE, dump_yaml
from ese.topology import Topology


def config(topo: Topology) -> str:
    """The Prometheus configuration."""
    prom, lb = topo.prometheus, topo.balancer
    shard_targets: list[dict[str, Any]] = [
        {"targets": [f"{s.name}:{s.port}"], "labels": {"shard": s.name, "role": s.role}}
        for s in topo.shards
    ]
    doc = {
        "global": {
            "scrape_interval": prom.scrape_interval,
            "evaluation_interval": prom.scrape_interval,
        },
        "scrape_configs": [
            {"job_name": "ese-server", "static_configs": shard_targets},
            {
                "job_name": "haproxy",
                "static_configs": [{"targets": [f"{lb.name}:{lb.exporter_port}"]}],
            },
            {
                "job_name": "prometheus",
                "static_configs": [{"targets": [f"localhost:{prom.port}"]}],
            },
        ],
    }
    return dump_yaml(doc, HEADER_NOTE)
