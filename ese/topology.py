"""The one description of the stack: read `topology.toml`, build the model, check its rules.

`Topology` and `TopologyError` live in ese.topology_model and the rules in ese.topology_rules;
the first two are importable from here too, since this is where callers start.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from ese.paths import TOPOLOGY_FILE
from ese.topology_model import (
    Alertmanager,
    Balancer,
    Clients,
    Cluster,
    Consumer,
    Grafana,
    Image,
    Prometheus,
    Redis,
    RedisExporter,
    Sentinel,
    ServerDefaults,
    Shard,
    Swarm,
    Topology,
    TopologyError,
)
from ese.topology_rules import validate

__all__ = ["Topology", "TopologyError", "load", "parse"]


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
