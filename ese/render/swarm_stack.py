"""docker/ese.stack.yml: the same topology as a Docker Swarm stack (`invoke swarm.up`).

Differences from the compose files, each forced by Swarm or by `docker stack deploy` (Docker
20.10 takes compose format 3.x only and ignores `build`, `container_name` and `restart`):

- the ingest shards are ONE replicated service; HAProxy and Prometheus find its replicas
  through Docker's DNS (`tasks.<service>`), so scaling needs no config change;
- credentials are Docker secrets (files under /run/secrets, read through `*_FILE` variables),
  never environment variables. Secrets are immutable, so their names carry a hash of the value
  and the stack file takes the names from the environment (`invoke swarm.up` creates them);
- HAProxy's, Prometheus', the alert rules' and Alertmanager's files are Docker configs named
  after a hash of their content, so a changed file is a new config and a redeploy rolls the
  service (names rendered here: the committed stack file changes with the config, never with
  the install); the rules and alertmanager.yml are the compose stack's files;
- ports are published in host mode (the routing mesh is not needed with one replica per
  published service and does not answer everywhere); the LB, the analytics shard, Grafana and
  Prometheus are published, from the edge node (ese/render/swarm_nodes.py says where each
  service runs). Alertmanager and redis_exporter are reached on the overlay network
  (`invoke status` asks Prometheus and Alertmanager with `docker exec`);
- no depends_on: services wait for each other through their healthchecks and restarts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ese.host import secrets
from ese.render import alert_rules, alertmanager, swarm_haproxy, swarm_nodes, swarm_prometheus
from ese.render.common import (
    HEADER_NOTE,
    SHARD_STOP_GRACE,
    dump_yaml,
    healthcheck,
    http_probe,
    wget_probe,
)
from ese.render.haproxy_cfg import CORS_VAR
from ese.render.prometheus_yml import RULES_FILE
from ese.render.redis_exporter import STREAM_KEY
from ese.topology import Topology

STACK_FILE = "docker/ese.stack.yml"
HAPROXY_FILE = "haproxy/swarm/haproxy.cfg"
PROMETHEUS_FILE = "prometheus/swarm/prometheus.yml"
NETWORK = "backend"  # the overlay network; Docker names it <stack>_backend
HAPROXY_CFG_PATH = "/usr/local/etc/haproxy/haproxy.cfg"
PROMETHEUS_CFG_PATH = "/etc/prometheus/prometheus.yml"
# The compose stack's files, shared: the rules where prometheus.yml's relative rule_files
# entry resolves (beside the config file), Alertmanager's where its image expects it.
RULES_SOURCE = f"prometheus/{RULES_FILE}"
RULES_PATH = f"/etc/prometheus/{RULES_FILE}"
ALERTMANAGER_FILE = "alertmanager/alertmanager.yml"
ALERTMANAGER_CFG_PATH = "/etc/alertmanager/alertmanager.yml"
# Where both redis_exporter images (official and the offline stand-in) have the binary.
REDIS_EXPORTER_BIN = "/redis_exporter"


@dataclass(frozen=True)
class StackSecret:
    """One Docker secret: its key in the stack file and the docker/.env entry with its value."""

    key: str
    env_key: str

    @property
    def name_var(self) -> str:
        """The variable that carries the secret's real (hashed) name into `docker stack deploy`."""
        return f"ESE_SECRET_{self.key.upper()}"

    @property
    def path(self) -> str:
        return f"/run/secrets/{self.key}"


REDIS_SECRET = StackSecret("redis_password", secrets.REDIS_PASSWORD)
INGEST_SECRET = StackSecret("ingest_token", secrets.INGEST_TOKEN)
ANALYTICS_SECRET = StackSecret("analytics_token", secrets.ANALYTICS_TOKEN)
GRAFANA_SECRET = StackSecret("grafana_admin_password", secrets.GRAFANA_PASSWORD)
SECRETS = (REDIS_SECRET, INGEST_SECRET, ANALYTICS_SECRET, GRAFANA_SECRET)


def digest(text: str) -> str:
    """First 12 hex digits of the SHA-256 of `text`: names immutable objects by content."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def secret_name(stack: str, secret: StackSecret, value: str) -> str:
    """The Docker secret name for this value, e.g. ese_redis_password_0123456789ab."""
    return f"{stack}_{secret.key}_{digest(value)}"


def secret_names(stack: str, values: Mapping[str, str]) -> dict[str, str]:
    """name variable -> Docker secret name, for every secret, from the docker/.env values."""
    return {s.name_var: secret_name(stack, s, values[s.env_key]) for s in SECRETS}


def config_names(topo: Topology) -> dict[str, str]:
    """Docker config key -> name with the content hash of the rendered file."""
    stack = topo.swarm.stack
    return {
        "haproxy_cfg": f"{stack}_haproxy_cfg_{digest(swarm_haproxy.config(topo))}",
        "prometheus_yml": f"{stack}_prometheus_yml_{digest(swarm_prometheus.config(topo))}",
        "alert_rules": f"{stack}_alert_rules_{digest(alert_rules.rules_file(topo))}",
        "alertmanager_yml": f"{stack}_alertmanager_yml_{digest(alertmanager.config(topo))}",
    }


# The files behind the configs, relative to the repository root.
CONFIG_FILES = {
    "haproxy_cfg": HAPROXY_FILE,
    "prometheus_yml": PROMETHEUS_FILE,
    "alert_rules": RULES_SOURCE,
    "alertmanager_yml": ALERTMANAGER_FILE,
}


# Hook for optional services: each returns extra stack services for this topology, {} when
# the service is not configured.
ServiceHook = Callable[[Topology], dict[str, dict[str, Any]]]
EXTRA_SERVICES: list[ServiceHook] = []


def _host_port(port: int) -> list[dict[str, Any]]:
    return [{"target": port, "published": port, "protocol": "tcp", "mode": "host"}]


def _secret_refs(*items: StackSecret) -> list[str]:
    return [s.key for s in items]


# `invoke swarm.up` passes the running ingest replica count through it, so a redeploy keeps
# what `invoke swarm.scale` set (Docker would reset it to the file's count).
REPLICAS_VAR = "ESE_INGEST_REPLICAS"


def _deploy(
    replicas: int | str = 1,
    *,
    order: str = "stop-first",
    placement: list[str] | None = None,
) -> dict[str, Any]:
    """Replicas, restart policy and update order (start-first needs an unpublished port)."""
    # dnsrr: a service name resolves to its tasks' addresses, not to a virtual IP. The VIP
    # is IPVS, like the routing mesh, and does not answer on every engine (not on the CI VM);
    # every client here re-resolves on reconnect, and the ports are published in host mode.
    deploy: dict[str, Any] = {"replicas": replicas, "endpoint_mode": "dnsrr"}
    if placement:
        deploy["placement"] = {"constraints": placement}
    deploy["update_config"] = {
        "parallelism": 1,
        "delay": "2s",
        "order": order,
        "failure_action": "rollback",
        "monitor": "10s",
    }
    deploy["rollback_config"] = {"parallelism": 1, "order": order}
    deploy["restart_policy"] = {"condition": "any", "delay": "2s"}
    return deploy


def _shard_env(topo: Topology, port: int, role: str) -> dict[str, str]:
    redis = topo.redis
    return {
        "SERVER_PORT": str(port),
        "ESE_ROLE": role,
        # No password in the URL: the shard reads it from REDIS_PASSWORD_FILE.
        "REDIS_URL": f"redis://{redis.name}:{redis.port}/0",
        "REDIS_PASSWORD_FILE": REDIS_SECRET.path,
        "ESE_INGEST_TOKEN_FILE": INGEST_SECRET.path,
        "ESE_ANALYTICS_TOKEN_FILE": ANALYTICS_SECRET.path,
        "ESE_RETENTION_SECONDS": str(topo.server.retention_seconds),
        "ESE_MAX_BATCH": str(topo.server.max_batch),
        "ESE_MAX_BODY_BYTES": str(topo.server.max_body_bytes),
        # The click-through page's origins, given by `invoke swarm.up` at deploy time.
        CORS_VAR: f"${{{CORS_VAR}:-}}",
    }


def _shard_healthcheck(port: int) -> dict[str, Any]:
    # Every 2 s: a new replica is healthy (and in DNS) sooner, and a scale-up takes traffic
    # sooner; the probe is one short Python process per replica.
    check = healthcheck(http_probe(port))
    check.update(interval="2s", timeout="2s", retries=3)
    return check


def _alerting(topo: Topology) -> dict[str, dict[str, Any]]:
    """redis_exporter and Alertmanager, as in the compose stack but unpublished: Prometheus
    reaches them on the overlay network, `invoke status` with docker exec."""
    redis, exporter, am = topo.redis, topo.redis_exporter, topo.alertmanager
    # The password is a secret file; redis_exporter reads it from REDIS_PASSWORD only (its
    # --redis.password-file is a JSON map of addresses, not the plain secret), so a shell sets
    # the variable for the exporter process alone: it is in no service spec.
    read_password = (
        f'REDIS_PASSWORD="$$(cat {REDIS_SECRET.path})" || exit 1; '
        f"export REDIS_PASSWORD; exec {REDIS_EXPORTER_BIN}"
    )
    return {
        exporter.name: {
            "image": topo.images["redis_exporter"].ref,
            "entrypoint": ["sh", "-c", read_password],
            "environment": {
                "REDIS_ADDR": f"redis://{redis.name}:{redis.port}",
                "REDIS_EXPORTER_WEB_LISTEN_ADDRESS": f":{exporter.port}",
                "REDIS_EXPORTER_CHECK_SINGLE_STREAMS": STREAM_KEY,
            },
            "secrets": _secret_refs(REDIS_SECRET),
            "networks": [NETWORK],
            "healthcheck": healthcheck(wget_probe(exporter.port, "/health"), "5s"),
            "deploy": _deploy(placement=swarm_nodes.edge(topo)),
        },
        am.name: {
            "image": topo.images["alertmanager"].ref,
            "command": [
                f"--config.file={ALERTMANAGER_CFG_PATH}",
                "--storage.path=/alertmanager",
                f"--web.listen-address=:{am.port}",
                # One instance: no HA gossip (which also fails without a private IP address).
                "--cluster.listen-address=",
            ],
            "configs": [{"source": "alertmanager_yml", "target": ALERTMANAGER_CFG_PATH}],
            "volumes": ["alertmanager-data:/alertmanager"],
            "networks": [NETWORK],
            "healthcheck": healthcheck(wget_probe(am.port, "/-/healthy"), "5s"),
            # On the edge: `invoke status` asks it for the firing alerts with docker exec.
            "deploy": _deploy(placement=swarm_nodes.edge(topo)),
        },
    }


def services(topo: Topology) -> dict[str, dict[str, Any]]:
    """Every service of the stack, keyed by service name (Docker prefixes `<stack>_`)."""
    sw, redis, lb, prom, graf = topo.swarm, topo.redis, topo.balancer, topo.prometheus, topo.grafana
    server_image = topo.images["ese_server"].ref
    ingest_port = topo.ingest_shards[0].port
    redis_cmd = " ".join(
        [
            "exec docker-entrypoint.sh redis-server",
            f"--port {redis.port}",
            f'--requirepass "$$(cat {REDIS_SECRET.path})"',
            "--appendonly yes",
            "--lazyfree-lazy-expire yes",
            # Bounded as in the compose stack: refuse writes when full, never evict events.
            f"--maxmemory {redis.maxmemory} --maxmemory-policy noeviction",
        ]
    )
    out: dict[str, dict[str, Any]] = {
        redis.name: {
            "image": topo.images["redis"].ref,
            # The password comes from the secret file at start. Through docker-entrypoint.sh
            # again, so Redis drops root and owns /data as in the compose stack.
            "command": ["sh", "-c", redis_cmd],
            "volumes": ["redis-data:/data"],
            "secrets": _secret_refs(REDIS_SECRET),
            "networks": [NETWORK],
            "healthcheck": healthcheck(
                [
                    "CMD-SHELL",
                    f'REDISCLI_AUTH="$$(cat {REDIS_SECRET.path})" '
                    f"redis-cli -p {redis.port} ping | grep -q PONG",
                ],
                "5s",
            ),
            # Redis flushes its append-only file on SIGTERM.
            "stop_grace_period": "30s",
            # On the Redis node: its local volume holds the append-only file.
            "deploy": _deploy(placement=swarm_nodes.redis(topo)),
        },
        sw.ingest_service: {
            "image": server_image,
            "environment": _shard_env(topo, ingest_port, "ingest"),
            "secrets": _secret_refs(REDIS_SECRET, INGEST_SECRET, ANALYTICS_SECRET),
            "networks": [NETWORK],
            "healthcheck": _shard_healthcheck(ingest_port),
            "stop_grace_period": SHARD_STOP_GRACE,
            # start-first: a rolling update adds the new replica before the old one drains.
            # Replicas may run on any node (the only service that does); the scheduler spreads
            # them (see ese/render/swarm_nodes.py).
            "deploy": _deploy(f"${{{REPLICAS_VAR}:-{sw.ingest_replicas}}}", order="start-first"),
        },
    }
    for shard in topo.shards:
        if shard.role != "analytics":
            continue  # ingest (and "all") shards are the replicated service above
        out[shard.name] = {
            "image": server_image,
            "environment": _shard_env(topo, shard.port, shard.role),
            "secrets": _secret_refs(REDIS_SECRET, INGEST_SECRET, ANALYTICS_SECRET),
            "networks": [NETWORK],
            "ports": _host_port(shard.port),
            "healthcheck": _shard_healthcheck(shard.port),
            "stop_grace_period": SHARD_STOP_GRACE,
            "deploy": _deploy(placement=swarm_nodes.edge(topo)),
        }
    out[lb.name] = {
        "image": topo.images["haproxy"].ref,
        "command": ["haproxy", "-W", "-db", "-f", HAPROXY_CFG_PATH],
        "configs": [{"source": "haproxy_cfg", "target": HAPROXY_CFG_PATH}],
        # HAProxy adds CORS to its own answers (a 503 with no replica up) for these origins.
        "environment": {CORS_VAR: f"${{{CORS_VAR}:-}}"},
        "networks": [NETWORK],
        "ports": _host_port(lb.port),
        "healthcheck": healthcheck(wget_probe(lb.port, lb.stats_path), "5s"),
        "deploy": _deploy(placement=swarm_nodes.edge(topo)),
    }
    out[prom.name] = {
        "image": topo.images["prometheus"].ref,
        "command": [
            f"--config.file={PROMETHEUS_CFG_PATH}",
            f"--web.listen-address=:{prom.port}",
            "--storage.tsdb.path=/prometheus",
            "--storage.tsdb.retention.time=2d",
            "--web.enable-lifecycle",
        ],
        "configs": [
            {"source": "prometheus_yml", "target": PROMETHEUS_CFG_PATH},
            {"source": "alert_rules", "target": RULES_PATH},
        ],
        "volumes": ["prometheus-data:/prometheus"],
        "networks": [NETWORK],
        "ports": _host_port(prom.port),
        "healthcheck": healthcheck(wget_probe(prom.port, "/-/healthy")),
        # On the edge: `invoke swarm.scale` and `invoke status` query it with docker exec.
        "deploy": _deploy(placement=swarm_nodes.edge(topo)),
    }
    out.update(_alerting(topo))
    out[graf.name] = {
        "image": topo.images["grafana"].ref,
        "environment": {
            "GF_SECURITY_ADMIN_USER": "${GRAFANA_ADMIN_USER:-admin}",
            # Grafana reads any setting from a file through the __FILE suffix.
            "GF_SECURITY_ADMIN_PASSWORD__FILE": GRAFANA_SECRET.path,
            "GF_USERS_ALLOW_SIGN_UP": "false",
            "GF_SERVER_HTTP_PORT": str(graf.port),
        },
        "secrets": _secret_refs(GRAFANA_SECRET),
        "volumes": ["grafana-data:/var/lib/grafana"],
        "networks": [NETWORK],
        "ports": _host_port(graf.port),
        "healthcheck": healthcheck(wget_probe(graf.port, "/api/health"), "20s"),
        "deploy": _deploy(placement=swarm_nodes.edge(topo)),
    }
    out.update(swarm_nodes.node_exporter(topo, NETWORK))
    for hook in EXTRA_SERVICES:
        out.update(hook(topo))
    # Every service, the hooks' too, stops gracefully with a restart policy (no `restart:`).
    return out


def stack(topo: Topology) -> str:
    """The stack file."""
    sw = topo.swarm
    configs = config_names(topo)
    doc: dict[str, Any] = {
        # Docker 20.10's `docker stack deploy` needs an explicit 3.x version.
        "version": "3.9",
        "services": services(topo),
        "networks": {NETWORK: {"driver": "overlay", "attachable": True}},
        "volumes": {
            "redis-data": {},
            "prometheus-data": {},
            "alertmanager-data": {},
            "grafana-data": {},
        },
        "secrets": {
            s.key: {
                "external": True,
                "name": f"${{{s.name_var}:?{s.name_var} is not set; deploy with "
                "`invoke swarm.up` (it creates the secrets)}",
            }
            for s in SECRETS
        },
        "configs": {
            key: {"name": configs[key], "file": f"../{path}"} for key, path in CONFIG_FILES.items()
        },
    }
    header = (
        f"{HEADER_NOTE}\n"
        f"Docker Swarm stack {sw.stack}: deploy with `invoke swarm.up` (it creates the secrets\n"
        f"named by the ESE_SECRET_* variables from docker/.env, then runs\n"
        f"  docker stack deploy -c docker/ese.stack.yml {sw.stack})"
    )
    return dump_yaml(doc, header)
