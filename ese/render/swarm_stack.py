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

from collections.abc import Callable
from typing import Any

from ese.render import (
    alert_rules,
    alertmanager,
    common,
    swarm_haproxy,
    swarm_nodes,
    swarm_prometheus,
    swarm_redis,
)
from ese.render.common import healthcheck, http_probe, wget_probe
from ese.render.haproxy_cfg import CORS_VAR
from ese.render.prometheus_yml import RULES_FILE
from ese.render.swarm_common import (
    ANALYTICS_SECRET,
    GRAFANA_SECRET,
    INGEST_SECRET,
    NETWORK,
    REDIS_SECRET,
    SECRETS,
    deploy,
    digest,
    host_port,
    secret_refs,
)

# Re-exported: `invoke swarm.*` (ese/flows/swarm.py) and the tests name them through this module.
from ese.render.swarm_common import StackSecret as StackSecret
from ese.render.swarm_common import secret_name as secret_name
from ese.render.swarm_common import secret_names as secret_names
from ese.topology import Topology

STACK_FILE = "docker/ese.stack.yml"
HAPROXY_FILE = "haproxy/swarm/haproxy.cfg"
PROMETHEUS_FILE = "prometheus/swarm/prometheus.yml"
HAPROXY_CFG_PATH = "/usr/local/etc/haproxy/haproxy.cfg"
PROMETHEUS_CFG_PATH = "/etc/prometheus/prometheus.yml"
# The compose stack's files, shared: the rules where prometheus.yml's relative rule_files
# entry resolves (beside the config file), Alertmanager's where its image expects it.
RULES_SOURCE = f"prometheus/{RULES_FILE}"
RULES_PATH = f"/etc/prometheus/{RULES_FILE}"
ALERTMANAGER_FILE = "alertmanager/alertmanager.yml"
ALERTMANAGER_CFG_PATH = "/etc/alertmanager/alertmanager.yml"


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


# `invoke swarm.up` passes the running ingest replica count through it, so a redeploy keeps
# what `invoke swarm.scale` set (Docker would reset it to the file's count).
REPLICAS_VAR = "ESE_INGEST_REPLICAS"


def _shard_env(topo: Topology, port: int, role: str) -> dict[str, str]:
    return {
        "SERVER_PORT": str(port),
        "ESE_ROLE": role,
        # The store: Redis, found through the Sentinels where there are replicas.
        **swarm_redis.shard_env(topo),
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


def _alertmanager(topo: Topology) -> dict[str, Any]:
    """Alertmanager, as in the compose stack but unpublished: Prometheus reaches it on the
    overlay network, `invoke status` with docker exec."""
    am = topo.alertmanager
    return {
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
        "deploy": deploy(placement=swarm_nodes.edge(topo)),
    }


def services(topo: Topology) -> dict[str, dict[str, Any]]:
    """Every service of the stack, keyed by service name (Docker prefixes `<stack>_`)."""
    sw, lb, prom, graf = topo.swarm, topo.balancer, topo.prometheus, topo.grafana
    server_image = topo.images["ese_server"].ref
    ingest_port = topo.ingest_shards[0].port
    # The store first: the Redis services, their Sentinels and exporters (swarm_redis.py).
    out: dict[str, dict[str, Any]] = swarm_redis.services(topo)
    out[sw.ingest_service] = {
        "image": server_image,
        "environment": _shard_env(topo, ingest_port, "ingest"),
        "secrets": secret_refs(REDIS_SECRET, INGEST_SECRET, ANALYTICS_SECRET),
        "networks": [NETWORK],
        "healthcheck": _shard_healthcheck(ingest_port),
        "stop_grace_period": common.SHARD_STOP_GRACE,
        # start-first: a rolling update adds the new replica before the old one drains.
        # Replicas may run on any node (the only service that does); the scheduler spreads
        # them (see ese/render/swarm_nodes.py).
        "deploy": deploy(f"${{{REPLICAS_VAR}:-{sw.ingest_replicas}}}", order="start-first"),
    }
    for shard in topo.shards:
        if shard.role != "analytics":
            continue  # ingest (and "all") shards are the replicated service above
        out[shard.name] = {
            "image": server_image,
            "environment": _shard_env(topo, shard.port, shard.role),
            "secrets": secret_refs(REDIS_SECRET, INGEST_SECRET, ANALYTICS_SECRET),
            "networks": [NETWORK],
            "ports": host_port(shard.port),
            "healthcheck": _shard_healthcheck(shard.port),
            "stop_grace_period": common.SHARD_STOP_GRACE,
            "deploy": deploy(placement=swarm_nodes.edge(topo)),
        }
    out[lb.name] = {
        "image": topo.images["haproxy"].ref,
        "command": ["haproxy", "-W", "-db", "-f", HAPROXY_CFG_PATH],
        "configs": [{"source": "haproxy_cfg", "target": HAPROXY_CFG_PATH}],
        # HAProxy adds CORS to its own answers (a 503 with no replica up) for these origins.
        "environment": {CORS_VAR: f"${{{CORS_VAR}:-}}"},
        "networks": [NETWORK],
        "ports": host_port(lb.port),
        "healthcheck": healthcheck(wget_probe(lb.port, lb.stats_path), "5s"),
        "deploy": deploy(placement=swarm_nodes.edge(topo)),
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
        "ports": host_port(prom.port),
        "healthcheck": healthcheck(wget_probe(prom.port, "/-/healthy")),
        # On the edge: `invoke swarm.scale` and `invoke status` query it with docker exec.
        "deploy": deploy(placement=swarm_nodes.edge(topo)),
    }
    out[topo.alertmanager.name] = _alertmanager(topo)
    out[graf.name] = {
        "image": topo.images["grafana"].ref,
        "environment": {
            "GF_SECURITY_ADMIN_USER": "${GRAFANA_ADMIN_USER:-admin}",
            # Grafana reads any setting from a file through the __FILE suffix.
            "GF_SECURITY_ADMIN_PASSWORD__FILE": GRAFANA_SECRET.path,
            "GF_USERS_ALLOW_SIGN_UP": "false",
            "GF_SERVER_HTTP_PORT": str(graf.port),
        },
        "secrets": secret_refs(GRAFANA_SECRET),
        "volumes": ["grafana-data:/var/lib/grafana"],
        "networks": [NETWORK],
        "ports": host_port(graf.port),
        "healthcheck": healthcheck(wget_probe(graf.port, "/api/health"), "20s"),
        "deploy": deploy(placement=swarm_nodes.edge(topo)),
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
            **swarm_redis.volumes(topo),
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
        f"{common.HEADER_NOTE}\n"
        f"Docker Swarm stack {sw.stack}: deploy with `invoke swarm.up` (it creates the secrets\n"
        f"named by the ESE_SECRET_* variables from docker/.env, then runs\n"
        f"  docker stack deploy -c docker/ese.stack.yml {sw.stack})"
    )
    return common.dump_yaml(doc, header)
