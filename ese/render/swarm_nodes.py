"""The Swarm stack across nodes: where each service runs, and node-exporter on every node.

Placement, by node label (`[swarm]` edge_label and redis_label in topology.toml, value "true"):
- the edge (HAProxy and every service with a published port, plus the ones `invoke status`
  asks with `docker exec` through the manager's engine) runs on the edge node, so the host
  reaches the published ports through that one node;
- Redis runs on the Redis node, so its volume (a local volume) stays with it;
- the ingest replicas run anywhere. Swarm's scheduler already puts a service's next task on
  the node with the fewest of its tasks, so replicas spread over the nodes. A
  `spread: node.hostname` preference would be silently ignored: swarmkit spreads only over
  node or engine labels.

`invoke swarm.up` labels a single-node swarm's node with both labels, so the same stack file
deploys there unchanged; `invoke cluster.up` labels its nodes.

node-exporter is a global service: one task per node, its hostname the node's, so its
`node_uname_info{nodename}` names the node. Prometheus finds every task through
`tasks.<service>` (job "node").
"""

from __future__ import annotations

from typing import Any

from ese.render.common import healthcheck, wget_probe
from ese.topology import Topology

NODE_JOB = "node"
# Swarm's template: each task's container takes its node's hostname.
NODE_HOSTNAME = "{{.Node.Hostname}}"
# Where the node's /proc and /sys are mounted in node-exporter, read-only (as in dockprom).
HOST_PROC = "/host/proc"
HOST_SYS = "/host/sys"


def label_constraint(label: str) -> str:
    return f"node.labels.{label} == true"


def edge(topo: Topology) -> list[str]:
    """Placement constraints of the edge services."""
    return [label_constraint(topo.swarm.edge_label)]


def redis(topo: Topology) -> list[str]:
    """Placement constraints of Redis."""
    return [label_constraint(topo.swarm.redis_label)]


def node_exporter(topo: Topology, network: str) -> dict[str, dict[str, Any]]:
    """node-exporter on every node, on the stack's network, unpublished."""
    sw = topo.swarm
    port = sw.node_exporter_port
    return {
        sw.node_exporter_service: {
            "image": topo.images["node_exporter"].ref,
            "hostname": NODE_HOSTNAME,
            "command": [
                f"--path.procfs={HOST_PROC}",
                f"--path.sysfs={HOST_SYS}",
                f"--web.listen-address=:{port}",
            ],
            "volumes": [f"/proc:{HOST_PROC}:ro", f"/sys:{HOST_SYS}:ro"],
            "networks": [network],
            "healthcheck": healthcheck(wget_probe(port, "/metrics"), "5s"),
            "deploy": {
                "mode": "global",
                "endpoint_mode": "dnsrr",
                "restart_policy": {"condition": "any", "delay": "2s"},
            },
        }
    }


def scrape_job(topo: Topology, dns_sd: dict[str, Any]) -> dict[str, Any]:
    """Prometheus' job for every node's node-exporter, found through Docker's DNS."""
    return {
        "job_name": NODE_JOB,
        "dns_sd_configs": [dns_sd],
    }
