"""The Swarm stack across nodes: where each service runs, and node-exporter on every node.

Placement, by node label (value "true"; the names come from topology.toml):
- the edge (HAProxy and every service with a published port, plus the ones `invoke status`
  asks with `docker exec` through the manager's engine) runs on the edge node
  (`[swarm] edge_label`, ese.edge), so the host reaches the published ports through that one
  node;
- each Redis has its own label, one per slot (`[swarm] redis_label`-<n>: ese.redis-1 for
  redis-1, the first master, ese.redis-2, ...), so each runs on its own node with its own local
  volume; each Sentinel likewise (`[sentinel] label`-<n>: ese.sentinel-1, ...);
- the ingest replicas run anywhere. Swarm's scheduler already puts a service's next task on
  the node with the fewest of its tasks, so replicas spread over the nodes. A
  `spread: node.hostname` preference would be silently ignored: swarmkit spreads only over
  node or engine labels.

`node_labels` says which labels each node of an N-node swarm gets: a single-node swarm's node
carries them all, so the same stack file deploys there unchanged; in a cluster the edge stays
on node 1 and Redis slot n and Sentinel n go to node n+1 (wrapping round), so redis-1, the
first master, starts away from the edge and losing the master's machine tests the store, not
the edge.

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


def redis_label(topo: Topology, slot: int) -> str:
    """The label of Redis slot `slot` (1 for redis-1, the first master)."""
    return f"{topo.swarm.redis_label}-{slot}"


def sentinel_label(topo: Topology, number: int) -> str:
    """The label of Sentinel `number` (1 for sentinel-1)."""
    return f"{topo.sentinel.label}-{number}"


def redis(topo: Topology, slot: int) -> list[str]:
    """Placement constraints of Redis slot `slot`: its node, where its volume is."""
    return [label_constraint(redis_label(topo, slot))]


def sentinel(topo: Topology, number: int) -> list[str]:
    """Placement constraints of Sentinel `number`."""
    return [label_constraint(sentinel_label(topo, number))]


def sentinel_count(topo: Topology) -> int:
    """The Sentinels the stack runs: none without replicas (nothing to fail over)."""
    return topo.sentinel.instances if topo.swarm.redis_replicas else 0


def node_labels(topo: Topology, nodes: int) -> list[list[str]]:
    """The labels (each to be set to "true") of node 1..`nodes`, in that order.

    Node 1 holds the edge. Redis slot n and Sentinel n go to node n+1, wrapping round, so with
    three nodes redis-1 is on node 2, redis-2 on node 3 and redis-3 on node 1; one node takes
    every label.
    """
    if nodes < 1:
        raise ValueError(f"a swarm has at least one node, not {nodes}")
    out: list[list[str]] = [[] for _ in range(nodes)]
    out[0].append(topo.swarm.edge_label)
    for slot in range(1, len(topo.swarm.redis_services) + 1):
        out[slot % nodes].append(redis_label(topo, slot))
    for number in range(1, sentinel_count(topo) + 1):
        out[number % nodes].append(sentinel_label(topo, number))
    return out


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
