"""The event store in the Swarm stack: a Redis master, its replicas, and the Sentinels.

- Redis slot n is the service `<redis_service>-n` (redis-1, redis-2, ...), with its own volume,
  pinned to its own node by its own label (swarm_nodes.py). redis-1 starts as master, the
  others as its replicas; every Redis may become master later, so each is started the same
  way: `--masterauth`, `--replica-announce-ip <its service name>`, `min-replicas-to-write 1`
  and `min-replicas-max-lag`, so a master that no replica follows refuses writes
  (NOREPLICAS) instead of taking events only one machine would hold.
- Names, not addresses, everywhere. The services run with endpoint_mode dnsrr (no IPVS on the
  nodes), so a service name resolves to its one task's own address, which changes when the
  task restarts or moves; the name stays. Replicas announce their service name, the Sentinels
  theirs (`announce-ip <name>`, `announce-hostnames yes`) and resolve the names they are given
  (`resolve-hostnames yes`), so what each tells the others stays valid.
- Sentinel n (`<[sentinel] service>-n`) watches the master with its peers and promotes a
  replica when `quorum` of them find the master down for `down_after_ms`. Sentinel rewrites
  its config file, so the file is written at container start into the container's /data
  (writable by the redis user). Each Sentinel has a fixed id (`sentinel myid`, derived from
  its name): a restarted Sentinel is the same Sentinel to its peers, not one more that never
  answers again (Sentinels never forget a peer, and every forgotten-but-counted peer raises
  the majority a failover needs).
- redis_exporter sees every Redis in its multi-target mode (`/scrape?target=`; Prometheus
  gives each target a `redis` label naming the Redis, and `instance` the same name); a second
  exporter sees the Sentinels, which have no password (the first sends the Redis password, and
  a Sentinel without one refuses the AUTH).

The compose stack keeps its one Redis: none of this is rendered there.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ese.render import swarm_nodes
from ese.render.common import healthcheck, wget_probe
from ese.render.prometheus_yml import REDIS_JOB
from ese.render.redis_exporter import STREAM_KEY
from ese.render.swarm_common import NETWORK, REDIS_SECRET, deploy, secret_refs
from ese.topology import Topology

# Prometheus: the label naming each Redis of the Swarm stack (compose's one Redis has none, so
# the replication alerts select on it), and the Sentinels' job and label.
REDIS_LABEL = "redis"
# The matchers (no braces) that select every Redis of the Swarm stack and none of compose's.
REPLICATED = f'job="{REDIS_JOB}",{REDIS_LABEL}!=""'
SENTINEL_JOB = "redis-sentinel"
SENTINEL_LABEL = "sentinel"
# Where both redis_exporter images (official and the offline stand-in) have the binary.
REDIS_EXPORTER_BIN = "/redis_exporter"
# The Sentinel's config: in the image's WORKDIR, which its entrypoint hands to the redis user.
SENTINEL_CONF = "/data/sentinel.conf"
# Seconds a starting Redis or Sentinel waits for each Sentinel's answer.
ASK_SECONDS = 2


def volume(name: str) -> str:
    """The volume of Redis `name`: on its node, like the service itself."""
    return f"{name}-data"


def has_sentinels(topo: Topology) -> bool:
    return swarm_nodes.sentinel_count(topo) > 0


def _ask_sentinels(topo: Topology, exclude: str = "") -> list[str]:
    """Shell lines that set $master to the master the first answering Sentinel names, or "".

    Each ask is bounded (`timeout`); an answer that is not a host name (an error text) counts
    as none.
    """
    sen = topo.sentinel
    peers = " ".join(s for s in sen.services if s != exclude)
    return [
        'master=""',
        f"for s in {peers}; do",
        f'  master="$(timeout {ASK_SECONDS} redis-cli -h "$s" -p {sen.port} --raw '
        f'SENTINEL get-master-addr-by-name {sen.master_name} 2>/dev/null | head -n 1)"',
        '  case "$master" in *[!A-Za-z0-9._-]*) master="" ;; esac',
        '  [ -n "$master" ] && break',
        "done",
    ]


def _fallback(topo: Topology, who: str) -> list[str]:
    first = topo.swarm.redis_services[0]
    return [
        'if [ -z "$master" ]; then',
        f"  master={first}",
        f'  echo "{who}: no Sentinel answered; as rendered, {first} is master" >&2',
        "else",
        f'  echo "{who}: the Sentinels name $master master" >&2',
        "fi",
    ]


def redis_script(topo: Topology, name: str) -> str:
    """The shell that starts Redis `name` (plain `$`: `stack_text` escapes it for the file).

    WHY ask the Sentinels first: a Redis that restarts (its node came back, its task was
    rescheduled) must not come back as the master it was before a failover: clients that
    reach it would trust a stale master, and the Sentinels would have to demote it again. So
    it starts as a replica of the master the Sentinels name now, or as master when they name
    it. Only when no Sentinel answers (the first deploy, or every Sentinel down) does it take
    its rendered role: master for the first slot, a replica of the first slot otherwise. A
    Redis that started as master anyway is demoted by the Sentinels once they see it (their
    `+convert-to-slave`); the README lists what that cannot cover.
    """
    redis, sw = topo.redis, topo.swarm
    opts = [
        "exec docker-entrypoint.sh redis-server",
        f"--port {redis.port}",
        '--requirepass "$pw"',
        "--appendonly yes",
        "--lazyfree-lazy-expire yes",
        # Bounded as in the compose stack: refuse writes when full, never evict events.
        f"--maxmemory {redis.maxmemory} --maxmemory-policy noeviction",
    ]
    lines = [f'pw="$(cat {REDIS_SECRET.path})" || exit 1']
    if not sw.redis_replicas:
        return "\n".join([*lines, " ".join(opts)]) + "\n"
    opts += [
        '--masterauth "$pw"',
        f"--replica-announce-ip {name}",
        f"--min-replicas-to-write 1 --min-replicas-max-lag {sw.min_replicas_max_lag}",
        "$role",
    ]
    lines += ["# Never back as a stale master: follow the master the Sentinels name now."]
    lines += _ask_sentinels(topo)
    lines += _fallback(topo, name)
    lines += [
        f'if [ "$master" = {name} ]; then role=""',
        f'else role="--replicaof $master {redis.port}"; fi',
        " ".join(opts),
    ]
    return "\n".join(lines) + "\n"


def sentinel_id(topo: Topology, name: str) -> str:
    """Sentinel `name`'s fixed id (`sentinel myid`: 40 hex digits)."""
    return hashlib.sha1(f"{topo.swarm.stack}/{name}".encode()).hexdigest()


def sentinel_script(topo: Topology, name: str) -> str:
    """The shell that writes Sentinel `name`'s config and starts it.

    It monitors the master its peers name (a restarted Sentinel joins the others' view, not
    the rendered one, which may be stale after a failover), else the first Redis.
    """
    sen, redis = topo.sentinel, topo.redis
    master = sen.master_name
    conf = [
        f"port {sen.port}",
        "protected-mode no",
        # Before `monitor`: the master is given by name.
        "sentinel resolve-hostnames yes",
        "sentinel announce-hostnames yes",
        f"sentinel announce-ip {name}",
        f"sentinel myid {sentinel_id(topo, name)}",
        f"sentinel monitor {master} $master {redis.port} {sen.quorum}",
        f"sentinel auth-pass {master} $pw",
        f"sentinel down-after-milliseconds {master} {sen.down_after_ms}",
        f"sentinel failover-timeout {master} {sen.failover_timeout_ms}",
        f"sentinel parallel-syncs {master} 1",
    ]
    lines = [f'pw="$(cat {REDIS_SECRET.path})" || exit 1']
    lines += ["# Join the peers' view: monitor the master they name now."]
    lines += _ask_sentinels(topo, exclude=name)
    lines += _fallback(topo, name)
    lines += [
        # The config holds the password: readable by its owner only.
        "umask 077",
        "printf '%s\\n' \\",
        *(f'  "{line}" \\' for line in conf),
        f"  > {SENTINEL_CONF}",
        f"exec docker-entrypoint.sh redis-server {SENTINEL_CONF} --sentinel",
    ]
    return "\n".join(lines) + "\n"


def stack_text(script: str) -> str:
    """`script` for the stack file: `docker stack deploy` interpolates `$`, so `$$` is one."""
    return script.replace("$", "$$")


def _redis_service(topo: Topology, slot: int, name: str) -> dict[str, Any]:
    port = topo.redis.port
    return {
        "image": topo.images["redis"].ref,
        # Through docker-entrypoint.sh, so Redis drops root and owns /data as in compose.
        "command": ["sh", "-c", stack_text(redis_script(topo, name))],
        "volumes": [f"{volume(name)}:/data"],
        "secrets": secret_refs(REDIS_SECRET),
        "networks": [NETWORK],
        "healthcheck": healthcheck(
            [
                "CMD-SHELL",
                f'REDISCLI_AUTH="$$(cat {REDIS_SECRET.path})" '
                f"redis-cli -p {port} ping | grep -q PONG",
            ],
            "5s",
        ),
        # Redis flushes its append-only file on SIGTERM.
        "stop_grace_period": "30s",
        # On its own node: its local volume holds its append-only file.
        "deploy": deploy(placement=swarm_nodes.redis(topo, slot)),
    }


def _sentinel_service(topo: Topology, number: int, name: str) -> dict[str, Any]:
    port = topo.sentinel.port
    return {
        "image": topo.images["redis"].ref,
        "command": ["sh", "-c", stack_text(sentinel_script(topo, name))],
        "secrets": secret_refs(REDIS_SECRET),
        "networks": [NETWORK],
        "healthcheck": healthcheck(["CMD-SHELL", f"redis-cli -p {port} ping | grep -q PONG"], "5s"),
        "deploy": deploy(placement=swarm_nodes.sentinel(topo, number)),
    }


def _exporter(topo: Topology, *, password: bool) -> dict[str, Any]:
    """redis_exporter in multi-target mode: REDIS_ADDR empty, so /metrics scrapes no Redis of
    its own and Prometheus names each target in /scrape?target=."""
    port = topo.redis_exporter.port
    env = {
        "REDIS_ADDR": "",
        "REDIS_EXPORTER_WEB_LISTEN_ADDRESS": f":{port}",
    }
    service: dict[str, Any] = {"image": topo.images["redis_exporter"].ref}
    if password:
        # The password is a secret file; redis_exporter reads it from REDIS_PASSWORD only (its
        # --redis.password-file is a JSON map of addresses, not the plain secret), so a shell
        # sets the variable for the exporter process alone: it is in no service spec.
        service["entrypoint"] = [
            "sh",
            "-c",
            f'REDIS_PASSWORD="$$(cat {REDIS_SECRET.path})" || exit 1; '
            f"export REDIS_PASSWORD; exec {REDIS_EXPORTER_BIN}",
        ]
        env["REDIS_EXPORTER_CHECK_SINGLE_STREAMS"] = STREAM_KEY
        service["secrets"] = secret_refs(REDIS_SECRET)
    service["environment"] = env
    service["networks"] = [NETWORK]
    service["healthcheck"] = healthcheck(wget_probe(port, "/health"), "5s")
    # On the edge: `invoke status` may ask it with docker exec through the manager.
    service["deploy"] = deploy(placement=swarm_nodes.edge(topo))
    return service


def services(topo: Topology) -> dict[str, dict[str, Any]]:
    """The Redis services, the Sentinels and their exporters, keyed by service name."""
    out = {
        name: _redis_service(topo, slot, name)
        for slot, name in enumerate(topo.swarm.redis_services, start=1)
    }
    out[topo.redis_exporter.name] = _exporter(topo, password=True)
    if has_sentinels(topo):
        for number, name in enumerate(topo.sentinel.services, start=1):
            out[name] = _sentinel_service(topo, number, name)
        out[topo.sentinel.exporter] = _exporter(topo, password=False)
    return out


def volumes(topo: Topology) -> dict[str, dict[str, Any]]:
    """The stack's `volumes:` entries of the Redis services."""
    return {volume(name): {} for name in topo.swarm.redis_services}


def shard_env(topo: Topology) -> dict[str, str]:
    """How a shard reaches the store: through the Sentinels where there are replicas."""
    redis, sw, sen = topo.redis, topo.swarm, topo.sentinel
    # No password in the URL: the shard reads it from REDIS_PASSWORD_FILE. With Sentinels the
    # URL's host is only a default; its db and password form still apply.
    env = {
        "REDIS_URL": f"redis://{sw.redis_services[0]}:{redis.port}/0",
        "REDIS_PASSWORD_FILE": REDIS_SECRET.path,
    }
    if has_sentinels(topo):
        env["ESE_REDIS_SENTINELS"] = sen.addresses
        env["ESE_REDIS_MASTER_NAME"] = sen.master_name
    env["ESE_ACK_REPLICAS"] = str(sw.acks)
    return env


def _targets_job(
    job: str, label: str, names: tuple[str, ...], port: int, exporter: str, exporter_port: int
) -> dict[str, Any]:
    return {
        "job_name": job,
        "metrics_path": "/scrape",
        "static_configs": [
            {"targets": [f"redis://{name}:{port}"], "labels": {label: name}} for name in names
        ],
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": [label], "target_label": "instance"},
            {"target_label": "__address__", "replacement": f"{exporter}:{exporter_port}"},
        ],
    }


def scrape_jobs(topo: Topology) -> list[dict[str, Any]]:
    """Prometheus' jobs: every Redis (job `redis`, as compose's), and the Sentinels."""
    exporter = topo.redis_exporter
    jobs = [
        _targets_job(
            REDIS_JOB,
            REDIS_LABEL,
            topo.swarm.redis_services,
            topo.redis.port,
            exporter.name,
            exporter.port,
        )
    ]
    if has_sentinels(topo):
        sen = topo.sentinel
        jobs.append(
            _targets_job(
                SENTINEL_JOB, SENTINEL_LABEL, sen.services, sen.port, sen.exporter, exporter.port
            )
        )
    return jobs
