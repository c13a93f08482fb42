"""docker/ese-server.compose.yml (project ese-backend) and docker/ese-client.compose.yml."""

from __future__ import annotations

from typing import Any

from ese.host import lan
from ese.render.common import (
    HEADER_NOTE,
    SHARD_STOP_GRACE,
    dump_yaml,
    healthcheck,
    http_probe,
    wget_probe,
)
from ese.render.haproxy_cfg import CORS_VAR
from ese.render.redis_exporter import STREAM_KEY
from ese.topology import Topology
from ese.topology_model import Shard

# Compose reads these from docker/.env, which `invoke backend` writes on first run.
SECRETS_HINT = "run `invoke backend` once (it writes docker/.env)"
HOST_GATEWAY = f"{lan.DOCKER_HOST_NAME}:host-gateway"
SERVICE_DOCKERFILE = "services/Dockerfile"
# The topology images the backend compose file uses (python_base: ese-server's build base).
# The others are the frontend's or the Swarm stack's only (node_exporter).
BACKEND_IMAGES = (
    "python_base",
    "ese_server",
    "redis",
    "redis_exporter",
    "haproxy",
    "prometheus",
    "alertmanager",
    "grafana",
)


def build_args(service: str) -> dict[str, str]:
    """The build arguments that pick `service` (ese-server, ese-client, ese-consumer)."""
    return {"SERVICE": service, "EXTRA": service.removeprefix("ese-")}


def _required(var: str) -> str:
    return f"${{{var}:?{var} is not set; {SECRETS_HINT}}}"


def _host(bind: str) -> str:
    """The address a browser on this machine uses for a port published on `bind`."""
    return "127.0.0.1" if bind in ("0.0.0.0", "::") else bind


def _healthy(*names: str) -> dict[str, Any]:
    return {name: {"condition": "service_healthy"} for name in names}


def _build(topo: Topology, service: str) -> dict[str, Any]:
    """services/Dockerfile, which builds every service image of this repository."""
    return {
        "context": "..",
        "dockerfile": SERVICE_DOCKERFILE,
        "args": {"BASE_IMAGE": topo.images["python_base"].ref, **build_args(service)},
    }


def _shard(topo: Topology, shard: Shard) -> dict[str, Any]:
    redis = topo.redis
    token_env = {
        "ESE_INGEST_TOKEN": "${ESE_INGEST_TOKEN:-}",
        "ESE_ANALYTICS_TOKEN": "${ESE_ANALYTICS_TOKEN:-}",
    }
    # Set by the tasks to the click-through page's origins (`invoke webclient`).
    cors = {CORS_VAR: f"${{{CORS_VAR}:-}}"}
    # Only the first shard owns the build of the shared image: with a `build:` on every shard,
    # compose v2 with bake builds the same tag in parallel and the second export fails.
    owner = shard == topo.shards[0]
    return {
        **({"build": _build(topo, "ese-server")} if owner else {}),
        "image": topo.images["ese_server"].ref,
        "environment": {
            "SERVER_PORT": str(shard.port),
            "ESE_ROLE": shard.role,
            "REDIS_URL": f"redis://:${{REDIS_PASSWORD}}@{redis.name}:{redis.port}/0",
            "ESE_RETENTION_SECONDS": str(topo.server.retention_seconds),
            "ESE_MAX_BATCH": str(topo.server.max_batch),
            "ESE_MAX_BODY_BYTES": str(topo.server.max_body_bytes),
            **token_env,
            **cors,
        },
        "ports": [f"{shard.bind}:{shard.port}:{shard.port}"],
        "depends_on": _healthy(redis.name),
        "healthcheck": healthcheck(http_probe(shard.port)),
        # Compose's default (10 s) would SIGKILL a shard at the end of its drain.
        "stop_grace_period": SHARD_STOP_GRACE,
        "restart": "unless-stopped",
    }


def backend(topo: Topology) -> str:
    """The backend project: shards, load balancer, Redis, Prometheus and Grafana."""
    redis, lb, prom, graf = topo.redis, topo.balancer, topo.prometheus, topo.grafana
    services: dict[str, Any] = {
        redis.name: {
            "image": topo.images["redis"].ref,
            "command": [
                "redis-server",
                "--port",
                str(redis.port),
                "--requirepass",
                _required("REDIS_PASSWORD"),
                "--appendonly",
                "yes",
                # The shards' idempotency keys expire a time bucket at a time; free them off
                # the main thread so a large bucket never pauses Redis.
                "--lazyfree-lazy-expire",
                "yes",
                # Bounded memory: when full, refuse writes (the shards answer 503) rather than
                # evict keys, which would silently drop stored events and idempotency ids.
                "--maxmemory",
                str(redis.maxmemory),
                "--maxmemory-policy",
                "noeviction",
            ],
            "environment": {"REDISCLI_AUTH": "${REDIS_PASSWORD}"},
            "ports": [f"{redis.bind}:{redis.port}:{redis.port}"],
            "volumes": ["redis-data:/data"],
            "healthcheck": healthcheck(
                ["CMD-SHELL", f"redis-cli -p {redis.port} ping | grep -q PONG"], "5s"
            ),
            "restart": "unless-stopped",
        },
    }
    for shard in topo.shards:
        services[shard.name] = _shard(topo, shard)
    exporter = topo.redis_exporter
    services[exporter.name] = {
        "image": topo.images["redis_exporter"].ref,
        # The official image's variables (the offline stand-in reads the same ones).
        "environment": {
            "REDIS_ADDR": f"redis://{redis.name}:{redis.port}",
            "REDIS_PASSWORD": "${REDIS_PASSWORD}",
            "REDIS_EXPORTER_WEB_LISTEN_ADDRESS": f":{exporter.port}",
            # The shards' event stream: its length and last id on the dashboard.
            "REDIS_EXPORTER_CHECK_SINGLE_STREAMS": STREAM_KEY,
        },
        # No host port: Prometheus scrapes it inside the compose network.
        "healthcheck": healthcheck(wget_probe(exporter.port, "/health"), "5s"),
        "restart": "unless-stopped",
    }
    services[lb.name] = {
        "image": topo.images["haproxy"].ref,
        # The config directory is mounted, not the file, so an edit reaches the container.
        "command": ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"],
        "volumes": ["../haproxy:/usr/local/etc/haproxy:ro"],
        "ports": [f"{lb.bind}:{lb.port}:{lb.port}"],
        # HAProxy adds CORS to its own answers (a 503 with no shard up) for these origins.
        "environment": {CORS_VAR: f"${{{CORS_VAR}:-}}"},
        # No depends_on on the shards: HAProxy resolves them at run time (resolvers section),
        # so it starts first and follows a shard that is killed and started again.
        "healthcheck": healthcheck(wget_probe(lb.port, lb.stats_path), "5s"),
        "restart": "unless-stopped",
    }
    services[prom.name] = {
        "image": topo.images["prometheus"].ref,
        "command": [
            "--config.file=/etc/prometheus/prometheus.yml",
            f"--web.listen-address=:{prom.port}",
            "--storage.tsdb.path=/prometheus",
            "--storage.tsdb.retention.time=2d",
            "--web.enable-lifecycle",
        ],
        "volumes": ["../prometheus:/etc/prometheus:ro", "prometheus-data:/prometheus"],
        "ports": [f"{prom.bind}:{prom.port}:{prom.port}"],
        # Host-side targets (a shard run with `ese-server` on the host) are scraped through it.
        "extra_hosts": [HOST_GATEWAY],
        "healthcheck": healthcheck(wget_probe(prom.port, "/-/healthy")),
        "restart": "unless-stopped",
    }
    am = topo.alertmanager
    services[am.name] = {
        "image": topo.images["alertmanager"].ref,
        "command": [
            "--config.file=/etc/alertmanager/alertmanager.yml",
            "--storage.path=/alertmanager",
            f"--web.listen-address=:{am.port}",
            # Links in notifications point where a browser on this machine finds it.
            f"--web.external-url=http://{_host(am.bind)}:{am.port}",
            # One instance: no HA gossip (which also fails without a private IP address).
            "--cluster.listen-address=",
        ],
        # The config directory is mounted, not the file, so an edit reaches the container.
        "volumes": ["../alertmanager:/etc/alertmanager:ro", "alertmanager-data:/alertmanager"],
        "ports": [f"{am.bind}:{am.port}:{am.port}"],
        # A webhook receiver may run on the host.
        "extra_hosts": [HOST_GATEWAY],
        "healthcheck": healthcheck(wget_probe(am.port, "/-/healthy"), "5s"),
        "restart": "unless-stopped",
    }
    services[graf.name] = {
        "image": topo.images["grafana"].ref,
        "environment": {
            "GF_SECURITY_ADMIN_USER": "${GRAFANA_ADMIN_USER:-admin}",
            "GF_SECURITY_ADMIN_PASSWORD": _required("GRAFANA_ADMIN_PASSWORD"),
            "GF_USERS_ALLOW_SIGN_UP": "false",
            "GF_SERVER_HTTP_PORT": str(graf.port),
        },
        "volumes": ["grafana-data:/var/lib/grafana"],
        "ports": [f"{graf.bind}:{graf.port}:{graf.port}"],
        "depends_on": _healthy(prom.name),
        # Datasources a user adds by hand may live on the host.
        "extra_hosts": [HOST_GATEWAY],
        "healthcheck": healthcheck(wget_probe(graf.port, "/api/health"), "20s"),
        "restart": "unless-stopped",
    }
    doc = {
        "services": services,
        "volumes": {
            "redis-data": {},
            "prometheus-data": {},
            "alertmanager-data": {},
            "grafana-data": {},
        },
    }
    header = (
        f"{HEADER_NOTE}\n"
        f"Project {topo.backend_project}:\n"
        f"  docker compose -f docker/ese-server.compose.yml -p {topo.backend_project} up -d"
    )
    return dump_yaml(doc, header)


def frontend(topo: Topology) -> str:
    """The frontend project: the simulators, scaled with `--scale ese-client=N`."""
    clients = topo.clients
    service = {
        "build": _build(topo, "ese-client"),
        "image": topo.images["ese_client"].ref,
        "environment": {
            "REACT_APP_BE_SERVER": "${REACT_APP_BE_SERVER:?REACT_APP_BE_SERVER is not set; "
            "run `invoke env` for the line for your shell, or use `invoke frontend`}",
            "ESE_EVENT_DELAY_MS": f"${{ESE_EVENT_DELAY_MS:-{clients.delay_ms}}}",
            "ESE_EVENT_LIMIT": f"${{ESE_EVENT_LIMIT:-{clients.limit}}}",
            "ESE_BATCH_SIZE": str(clients.batch_size),
            "ESE_INGEST_TOKEN": "${ESE_INGEST_TOKEN:-}",
        },
        # The clients reach the load balancer published on the host.
        "extra_hosts": [HOST_GATEWAY],
        "restart": "no",
    }
    header = (
        f"{HEADER_NOTE}\n"
        f"Project {topo.frontend_project}, {clients.instances} clients by default:\n"
        f"  docker compose -f docker/ese-client.compose.yml -p {topo.frontend_project} "
        f"up -d --scale {clients.service}={clients.instances}"
    )
    return dump_yaml({"services": {clients.service: service}}, header)
