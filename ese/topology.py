"""The one description of the stack: load and validate `topology.toml`."""

from __future__ import annotations

import ipaddress
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from ese.paths import TOPOLOGY_FILE

ROLES = ("ingest", "analytics", "all")


class TopologyError(ValueError):
    """The topology file is unreadable or inconsistent; the message says what to fix."""


@dataclass(frozen=True)
class Image:
    """An image default that the environment variable `env` overrides at compose time."""

    key: str
    default: str
    env: str

    @property
    def ref(self) -> str:
        """The compose interpolation that picks the override or the default."""
        return f"${{{self.env}:-{self.default}}}"

    def resolve(self, environ: Mapping[str, str]) -> str:
        """The image actually used with this environment."""
        return environ.get(self.env) or self.default


@dataclass(frozen=True)
class Shard:
    name: str
    role: str
    port: int
    bind: str

    @property
    def url(self) -> str:
        """URL of the shard inside the compose network."""
        return f"http://{self.name}:{self.port}"


@dataclass(frozen=True)
class Service:
    """An infrastructure service published on `bind:port`."""

    name: str  # the compose service, also its host name inside the compose network
    port: int  # the same inside the container and on the host
    bind: str  # the host address it is published on: 127.0.0.1 keeps it off the LAN


@dataclass(frozen=True)
class Balancer(Service):
    balance: str = "leastconn"
    stats_path: str = "/stats"
    exporter_port: int = 8405
    timeout_connect: str = "5s"
    timeout_client: str = "30s"
    timeout_server: str = "30s"


@dataclass(frozen=True)
class Redis(Service):
    # Redis size syntax (`256mb`, `1gb`, plain bytes); rendered as `--maxmemory`.
    maxmemory: str = "512mb"

    @property
    def maxmemory_bytes(self) -> int:
        """`maxmemory` in bytes, as Redis reads it (k = 1000, kb = 1024, ...)."""
        return memory_bytes(self.maxmemory)


@dataclass(frozen=True)
class RedisExporter:
    """redis_exporter, scraped by Prometheus inside the compose network (no host port)."""

    name: str
    port: int


@dataclass(frozen=True)
class Prometheus(Service):
    scrape_interval: str = "1s"


@dataclass(frozen=True)
class Alertmanager(Service):
    # Alertmanager's JSON webhook receiver; empty: alerts are kept, shown, never sent.
    webhook_url: str = ""


@dataclass(frozen=True)
class Grafana(Service):
    datasource_uid: str = "ese-prometheus"
    datasource_name: str = "Prometheus"
    dashboard_uid: str = "ese-server"
    dashboard_title: str = "ESE Server"


@dataclass(frozen=True)
class Consumer(Service):
    poll_seconds: int = 5


@dataclass(frozen=True)
class Clients:
    """The simulated clients `invoke frontend` starts: each sends `limit` events in batches,
    `delay_ms` apart."""

    service: str
    instances: int
    delay_ms: int
    limit: int
    batch_size: int


@dataclass(frozen=True)
class ServerDefaults:
    """What every shard is started with: the stream's retention and the request limits."""

    retention_seconds: int
    max_batch: int
    max_body_bytes: int


@dataclass(frozen=True)
class Swarm:
    """The Docker Swarm stack (`invoke swarm.*`): the ingest shards as one replicated service."""

    stack: str = "ese"
    ingest_service: str = "ese-ingest"
    ingest_replicas: int = 2
    # HAProxy's server-template slots: the most ingest replicas the balancer can route to.
    max_ingest_replicas: int = 8
    # node-exporter: a global service, one task (and one scrape target) per node.
    node_exporter_service: str = "node-exporter"
    node_exporter_port: int = 9100
    # Node label (value "true") that pins the edge (HAProxy, published ports).
    edge_label: str = "ese.edge"
    # The event store, replicated: a master and `redis_replicas` replicas, services
    # <redis_service>-1.. (the first is the first master), each pinned by its own node label
    # <redis_label>-<n> so that each lands on its own node with its own volume.
    redis_service: str = "redis"
    redis_label: str = "ese.redis"
    redis_replicas: int = 2
    # WAIT: a shard answers 2xx for an append once this many replicas hold it. None: 1 where
    # there are replicas, 0 where there are none (resolved by `parse`).
    ack_replicas: int | None = None
    # A master accepts writes only while a replica acknowledged within this many seconds
    # (Redis' min-replicas-max-lag, with min-replicas-to-write 1).
    min_replicas_max_lag: int = 5

    @property
    def redis_services(self) -> tuple[str, ...]:
        """The Redis services of the stack, the first master first."""
        return tuple(f"{self.redis_service}-{n}" for n in range(1, self.redis_replicas + 2))

    @property
    def acks(self) -> int:
        """The acknowledgement level the shards run with (`ack_replicas` resolved)."""
        if self.ack_replicas is not None:
            return self.ack_replicas
        return 1 if self.redis_replicas else 0


@dataclass(frozen=True)
class Sentinel:
    """Redis Sentinel in the Swarm stack: watches the master and fails over to a replica.

    Only where there are replicas (`[swarm] redis_replicas` > 0); the compose stack has none.
    """

    service: str = "sentinel"  # services <service>-1..<instances>
    label: str = "ese.sentinel"  # node label <label>-<n> pins Sentinel n
    instances: int = 3
    port: int = 26379
    master_name: str = "ese"
    # Sentinels that must agree the master is down before one of them fails over.
    quorum: int = 2
    # How long the master may not answer before a Sentinel calls it down.
    down_after_ms: int = 3000
    # How long a failover may take before another Sentinel may try again (twice this).
    failover_timeout_ms: int = 10000
    # A second redis_exporter, without the Redis password: the Sentinels have none.
    exporter: str = "sentinel-exporter"

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(f"{self.service}-{n}" for n in range(1, self.instances + 1))

    @property
    def addresses(self) -> str:
        """The Sentinels as the shards take them (ESE_REDIS_SENTINELS)."""
        return " ".join(f"{name}:{self.port}" for name in self.services)


# Each node is a whole Docker engine (about 100 MB of memory idle, before any task runs).
MAX_CLUSTER_NODES = 9


@dataclass(frozen=True)
class Cluster:
    """The local cluster (`invoke cluster.*`): node containers each running a Docker engine."""

    nodes: int = 3
    managers: int = 1
    network: str = "ese-cluster"
    node_prefix: str = "ese-node-"  # node N is <prefix>N: container, hostname and swarm node
    registry: str = "ese-registry"


@dataclass(frozen=True)
class Topology:
    backend_project: str
    frontend_project: str
    images: dict[str, Image]
    server: ServerDefaults
    shards: tuple[Shard, ...]
    balancer: Balancer
    redis: Redis
    redis_exporter: RedisExporter
    prometheus: Prometheus
    alertmanager: Alertmanager
    grafana: Grafana
    clients: Clients
    consumer: Consumer
    swarm: Swarm = field(default_factory=Swarm)
    sentinel: Sentinel = field(default_factory=Sentinel)
    cluster: Cluster = field(default_factory=Cluster)
    source: Path = field(default=TOPOLOGY_FILE, compare=False)

    @property
    def ingest_shards(self) -> tuple[Shard, ...]:
        """Shards behind the load balancer."""
        return tuple(s for s in self.shards if s.role in ("ingest", "all"))

    @property
    def analytics_shards(self) -> tuple[Shard, ...]:
        """Shards that serve the read side."""
        return tuple(s for s in self.shards if s.role in ("analytics", "all"))

    @property
    def analytics_shard(self) -> Shard:
        """The shard the consumer reads from (the first analytics shard)."""
        return self.analytics_shards[0]

    def published(self) -> list[Service | Shard]:
        """Every service with a host port, in a stable order (doctor checks these are free)."""
        return [
            *self.shards,
            self.balancer,
            self.redis,
            self.prometheus,
            self.alertmanager,
            self.grafana,
            self.consumer,
        ]


# Redis' size units (redis.conf): k/m/g are powers of 1000, kb/mb/gb powers of 1024.
_UNITS = {"": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}
_SIZE = re.compile(r"(\d+)([kmg]b?)?", re.IGNORECASE)
# An empty Redis already uses about 1 MB; below this it would refuse writes from the start.
MIN_MAXMEMORY = 16 * 1024**2


def memory_bytes(size: str) -> int:
    """A Redis memory size (`256mb`, `1gb`, `1048576`) in bytes; TopologyError if malformed."""
    match = _SIZE.fullmatch(str(size).strip())
    if match is None:
        raise TopologyError(
            f'topology: [redis] maxmemory {size!r} is not a Redis size; e.g. "256mb" or "1gb"'
        )
    return int(match.group(1)) * _UNITS[(match.group(2) or "").lower()]


def _section(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise TopologyError(f"topology: missing [{key}] table")
    return value


def _build(cls: Any, where: str, raw: Mapping[str, Any]) -> Any:
    try:
        return cls(**raw)
    except TypeError as exc:
        # Unknown or missing keys; say which table so the user can find it.
        raise TopologyError(f"topology: [{where}] {exc}".replace("__init__() ", "")) from None


def _check_bind(where: str, bind: str) -> None:
    try:
        ipaddress.ip_address(bind)
    except ValueError:
        raise TopologyError(f"topology: [{where}] bind {bind!r} is not an IP address") from None


def parse(data: Mapping[str, Any], source: Path = TOPOLOGY_FILE) -> Topology:
    """Build and validate a Topology from the parsed TOML document."""
    projects = _section(data, "projects")
    images = {
        key: _build(Image, f"images.{key}", {"key": key, **raw})
        for key, raw in _section(data, "images").items()
    }
    missing = {
        "redis",
        "haproxy",
        "prometheus",
        "grafana",
        "python_base",
        "ese_server",
        "ese_client",
        "ese_consumer",
        "redis_exporter",
        "alertmanager",
        "node_exporter",
    } - images.keys()
    if missing:
        raise TopologyError(f"topology: [images] lacks {', '.join(sorted(missing))}")
    raw_shards = data.get("shards")
    if not isinstance(raw_shards, list) or not raw_shards:
        raise TopologyError("topology: define at least one [[shards]] entry")
    shards = tuple(_build(Shard, "shards", raw) for raw in raw_shards)
    topo = Topology(
        backend_project=projects.get("backend", "ese-backend"),
        frontend_project=projects.get("frontend", "ese-frontend"),
        images=images,
        server=_build(ServerDefaults, "server", _section(data, "server")),
        shards=shards,
        balancer=_build(Balancer, "balancer", _section(data, "balancer")),
        redis=_build(Redis, "redis", _section(data, "redis")),
        redis_exporter=_build(RedisExporter, "redis_exporter", _section(data, "redis_exporter")),
        prometheus=_build(Prometheus, "prometheus", _section(data, "prometheus")),
        alertmanager=_build(Alertmanager, "alertmanager", _section(data, "alertmanager")),
        grafana=_build(Grafana, "grafana", _section(data, "grafana")),
        clients=_build(Clients, "clients", _section(data, "clients")),
        consumer=_build(Consumer, "consumer", _section(data, "consumer")),
        swarm=_build(Swarm, "swarm", data.get("swarm") or {}),
        sentinel=_build(Sentinel, "sentinel", data.get("sentinel") or {}),
        cluster=_build(Cluster, "cluster", data.get("cluster") or {}),
        source=source,
    )
    validate(topo)
    return topo


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


# Names that go into Docker service names, node labels and the Redis/Sentinel start scripts
# unquoted: keep them to the characters all three take.
_SERVICE_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
MAX_REDIS_REPLICAS = 6


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


def load(path: Path | None = None) -> Topology:
    """Read and validate the topology file (the repository's `topology.toml` by default)."""
    path = path or TOPOLOGY_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TopologyError(f"topology: {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise TopologyError(f"topology: {path} is not valid TOML: {exc}") from None
    return parse(data, source=path)
