"""The rules a topology must keep so that the configs rendered from it work together."""

from __future__ import annotations

import ipaddress
import re

from ese.topology_model import Topology, TopologyError

ROLES = ("ingest", "analytics", "all")

# Each node is a whole Docker engine (about 100 MB of memory idle, before any task runs).
MAX_CLUSTER_NODES = 9

# An empty Redis already uses about 1 MB; below this it would refuse writes from the start.
MIN_MAXMEMORY = 16 * 1024**2

# Names that go into Docker service names, node labels and the Redis/Sentinel start scripts
# unquoted: keep them to the characters all three take.
_SERVICE_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
MAX_REDIS_REPLICAS = 6


def _check_bind(where: str, bind: str) -> None:
    try:
        ipaddress.ip_address(bind)
    except ValueError:
        raise TopologyError(f"topology: [{where}] bind {bind!r} is not an IP address") from None


def validate(topo: Topology) -> None:
    """Reject a topology that would render configs that cannot work together."""
    for shard in topo.shards:
        if shard.role not in ROLES:
            raise TopologyError(
                f"topology: shard {shard.name} has role {shard.role!r}; "
                f"use one of {', '.join(ROLES)}"
            )
    if not topo.ingest_shards:
        raise TopologyError("topology: no shard has role ingest; the load balancer needs one")
    if not topo.analytics_shards:
        raise TopologyError("topology: no shard has role analytics; the consumer needs one")
    services = topo.published()
    names = [s.name for s in services] + [topo.clients.service, topo.redis_exporter.name]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise TopologyError(f"topology: service names used twice: {', '.join(dupes)}")
    ports = [s.port for s in services] + [topo.balancer.exporter_port]
    dupe_ports = sorted({p for p in ports if ports.count(p) > 1})
    if dupe_ports:
        raise TopologyError(f"topology: host ports used twice: {', '.join(map(str, dupe_ports))}")
    for svc in services:
        if not 1 <= svc.port <= 65535:
            raise TopologyError(f"topology: {svc.name} port {svc.port} is outside 1-65535")
        _check_bind(svc.name, svc.bind)
    if topo.redis.maxmemory_bytes < MIN_MAXMEMORY:
        raise TopologyError(
            f"topology: [redis] maxmemory {topo.redis.maxmemory!r} is below 16mb; Redis would "
            "refuse writes almost at once (the demo's window needs about 20 MB)"
        )
    hook = topo.alertmanager.webhook_url
    if hook and not re.match(r"https?://[^/\s]+", hook):
        raise TopologyError(
            f"topology: [alertmanager] webhook_url {hook!r} is not an http(s) URL; "
            'leave it "" to send no notifications'
        )
    if topo.clients.instances < 1:
        raise TopologyError("topology: [clients] instances must be at least 1")
    sw = topo.swarm
    if not 1 <= sw.ingest_replicas <= sw.max_ingest_replicas:
        raise TopologyError(
            f"topology: [swarm] ingest_replicas must be between 1 and max_ingest_replicas "
            f"({sw.max_ingest_replicas}), got {sw.ingest_replicas}"
        )
    if sw.ingest_service in names:
        raise TopologyError(f"topology: [swarm] ingest_service {sw.ingest_service!r} is taken")
    _validate_replication(topo, [*names, sw.ingest_service, sw.node_exporter_service])
    cl = topo.cluster
    if not 1 <= cl.nodes <= MAX_CLUSTER_NODES:
        raise TopologyError(
            f"topology: [cluster] nodes must be between 1 and {MAX_CLUSTER_NODES}, got {cl.nodes}"
        )
    if not 1 <= cl.managers <= cl.nodes:
        raise TopologyError(
            f"topology: [cluster] managers must be between 1 and nodes ({cl.nodes}), "
            f"got {cl.managers}"
        )


def _int_in(where: str, key: str, value: object, low: int, high: int, hint: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TopologyError(
            f"topology: [{where}] {key} must be a whole number from {low} to {high}, "
            f"got {value!r}{hint}"
        )


def _validate_replication(topo: Topology, taken: list[str]) -> None:
    """The Swarm stack's Redis replicas, acknowledgement level and Sentinels."""
    sw, sen = topo.swarm, topo.sentinel
    _int_in("swarm", "redis_replicas", sw.redis_replicas, 0, MAX_REDIS_REPLICAS)
    if sw.ack_replicas is not None:
        _int_in(
            "swarm",
            "ack_replicas",
            sw.ack_replicas,
            0,
            sw.redis_replicas,
            f" (at most redis_replicas, {sw.redis_replicas}: WAIT cannot count more)",
        )
    _int_in("swarm", "min_replicas_max_lag", sw.min_replicas_max_lag, 1, 3600, " (seconds)")
    _int_in("sentinel", "instances", sen.instances, 1, 9)
    _int_in("sentinel", "quorum", sen.quorum, 1, sen.instances, " (at most instances)")
    _int_in("sentinel", "port", sen.port, 1, 65535)
    _int_in("sentinel", "down_after_ms", sen.down_after_ms, 100, 600_000)
    _int_in("sentinel", "failover_timeout_ms", sen.failover_timeout_ms, 1000, 3_600_000)
    for where, key, value, pattern in (
        ("swarm", "redis_service", sw.redis_service, _SERVICE_NAME),
        ("sentinel", "service", sen.service, _SERVICE_NAME),
        ("sentinel", "exporter", sen.exporter, _SERVICE_NAME),
        ("swarm", "edge_label", sw.edge_label, _LABEL_NAME),
        ("swarm", "redis_label", sw.redis_label, _LABEL_NAME),
        ("sentinel", "label", sen.label, _LABEL_NAME),
        ("sentinel", "master_name", sen.master_name, _LABEL_NAME),
    ):
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise TopologyError(
                f"topology: [{where}] {key} {value!r} may hold only letters, digits and "
                f"{'-' if pattern is _SERVICE_NAME else '. _ -'} (lower case for a service)"
            )
    ours = [*sw.redis_services, *sen.services, sen.exporter]
    clash = sorted({n for n in ours if n in taken or ours.count(n) > 1})
    if clash:
        raise TopologyError(
            f"topology: Swarm service names used twice: {', '.join(clash)}; change [swarm] "
            "redis_service or [sentinel] service/exporter"
        )
