"""The model of the stack that `topology.toml` describes: one frozen dataclass per table."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ese.paths import TOPOLOGY_FILE


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


def memory_bytes(size: str) -> int:
    """A Redis memory size (`256mb`, `1gb`, `1048576`) in bytes; TopologyError if malformed."""
    match = _SIZE.fullmatch(str(size).strip())
    if match is None:
        raise TopologyError(
            f'topology: [redis] maxmemory {size!r} is not a Redis size; e.g. "256mb" or "1gb"'
        )
    return int(match.group(1)) * _UNITS[(match.group(2) or "").lower()]
