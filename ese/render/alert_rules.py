"""prometheus/rules/ese.rules.yml: the alerts Prometheus evaluates and sends to Alertmanager.

Every expression reads only series the stack really exports (the configs check compares them
with live processes) and selects on the job names of prometheus/prometheus.yml. The unit tests
of these rules are generated beside them (ese/render/alert_tests.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ese.render.common import HEADER_NOTE, dump_yaml
from ese.render.haproxy_cfg import BACKEND
from ese.render.prometheus_yml import HAPROXY_JOB, REDIS_JOB, SHARD_JOB
from ese.render.swarm_haproxy import template_prefix
from ese.render.swarm_nodes import NODE_JOB
from ese.render.swarm_redis import REPLICATED
from ese.topology import Topology

# Thresholds of the issue "Alerts and bounded memory". Constants, not topology settings: the
# generated unit tests would follow a changed value anyway and so could not catch a bad one.
STORE_FULL_RATIO = 0.8
ERROR_RATIO = 0.01
LATENCY_P99_SECONDS = 0.1
WINDOW = "1m"  # rate window: many scrapes wide at the 1 s default
# How long a node that stopped reporting is remembered as one that should report.
NODE_MEMORY = "15m"
# How long EseRedisFailover fires after a replica became master.
FAILOVER_MEMORY = "5m"
# EseNotReplicated's `for`. Its rate over WINDOW stays above 0 for WINDOW after the last
# refusal, so a burst of refusals lasting d seconds keeps the condition true for about d + 60 s:
# this `for` lets a failover's burst (a few seconds while the replicas follow the new master;
# the store drill bounds it at 20 s from the kill to the next acknowledged write) pass with
# room to spare, and pages on refusals that go on for about a minute or more.
NOT_REPLICATED_FOR = "2m"

# Go-template pieces of the annotations (Prometheus fills them in per alert).
SHARD = "{{ $labels.shard }}"
ROLE = "{{ $labels.role }}"
INSTANCE = "{{ $labels.instance }}"
NODE = "{{ $labels.nodename }}"
PERCENT = "{{ $value | humanizePercentage }}"
DURATION = "{{ $value | humanizeDuration }}"
NUMBER = "{{ $value | humanize }}"
REPLICA = "{{ $labels.replica }}"

# Requests a user made: Prometheus' own scrapes would water the ratios down.
_REQUESTS = f'job="{SHARD_JOB}",route!="/metrics"'
# The Swarm stack's Redis, each a target labelled with its name (swarm_redis.py). The compose
# stack's one Redis has no such label and no replicas: the replication alerts never see it,
# though compose's Prometheus loads the same rule file.
_REPLICATED = REPLICATED


@dataclass(frozen=True)
class Rule:
    """One alerting rule; `duration` is its `for`."""

    alert: str
    expr: str
    duration: str
    severity: str
    summary: str
    description: str
    labels: dict[str, str] = field(default_factory=dict)

    def document(self) -> dict[str, object]:
        return {
            "alert": self.alert,
            "expr": self.expr,
            "for": self.duration,
            "labels": {"severity": self.severity, **self.labels},
            "annotations": {"summary": self.summary, "description": self.description},
        }


def rules(topo: Topology) -> list[Rule]:
    """The alerts, most severe first."""
    redis, lb = topo.redis.name, topo.balancer.name
    status = "Run `invoke status`"
    per_shard_logs = f"`invoke logs -s {SHARD}`"
    ingest_logs = " and ".join(f"`invoke logs -s {s.name}`" for s in topo.ingest_shards)
    return [
        Rule(
            "EseShardDown",
            f'up{{job="{SHARD_JOB}"}} == 0',
            "30s",
            "critical",
            f"Shard {SHARD} is down",
            f"Prometheus has not reached {SHARD} ({ROLE} shard, {INSTANCE}) for 30 s. "
            f"{status} for its container and health, then {per_shard_logs} for why it "
            "stopped; `invoke backend` starts it again.",
        ),
        Rule(
            "EseRedisDown",
            f'ese_redis_up{{job="{SHARD_JOB}"}} == 0',
            "30s",
            "critical",
            f"Shard {SHARD} cannot reach Redis",
            f"{SHARD} ({ROLE}) has reported Redis unreachable for 30 s; it answers 503 with "
            f"Retry-After. {status}, then `invoke logs -s {redis}` and {per_shard_logs}.",
        ),
        Rule(
            "EseNodeDown",
            # A lost node's node-exporter leaves Docker's DNS, so its target disappears
            # rather than reading up == 0: a node is down when it reported within the last
            # NODE_MEMORY and does not now. Its name stays the same when its address changes.
            f'group by (nodename) (max_over_time(node_uname_info{{job="{NODE_JOB}"}}'
            f"[{NODE_MEMORY}])) unless group by (nodename) "
            f'(node_uname_info{{job="{NODE_JOB}"}})',
            "30s",
            "critical",
            f"Node {NODE} is down",
            f"Swarm node {NODE} has not reported its metrics (node-exporter) for 30 s: the "
            "machine or its Docker engine is down or cut off. Swarm starts its replicas on "
            f"the other nodes. {status} for the nodes (Ready or Down) and where each replica "
            f"runs; on the local cluster `invoke cluster.start --node {NODE}` brings it back. "
            f"A node removed on purpose reads as down for up to {NODE_MEMORY}.",
        ),
        Rule(
            "EseStoreNearlyFull",
            # `> 0`: maxmemory 0 means no limit, and x / 0 would be +Inf, a false alarm.
            f'redis_memory_used_bytes{{job="{REDIS_JOB}"}} '
            f'/ (redis_memory_max_bytes{{job="{REDIS_JOB}"}} > 0) > {STORE_FULL_RATIO}',
            "1m",
            "warning",
            f"Redis is at {PERCENT} of its maxmemory",
            f"Redis has used over {STORE_FULL_RATIO:.0%} of its maxmemory "
            f"({topo.redis.maxmemory}, [redis] in topology.toml) for 1 min. When full it "
            "refuses writes (maxmemory-policy noeviction) and the shards answer 503. "
            f"{status} for memory against the limit and `invoke logs -s {redis}`; raise "
            "[redis] maxmemory or lower [server] retention_seconds in topology.toml, then "
            "`invoke render` and `invoke backend`.",
        ),
        Rule(
            "EseStoreFull",
            # Every refused write is an event not stored: no `for`, fire at the first one.
            f'sum by (shard, role) (rate(ese_store_full_total{{job="{SHARD_JOB}"}}[{WINDOW}])) > 0',
            "0s",
            "critical",
            f"Redis is full: {SHARD} refuses writes",
            f"Redis reached its maxmemory ({topo.redis.maxmemory}) and {SHARD} ({ROLE}) "
            "answers writes with 503 and Retry-After; memory comes back only as events leave "
            f"the retention window. {status} for memory against the limit and "
            f"`invoke logs -s {redis}`; raise [redis] maxmemory or lower [server] "
            "retention_seconds in topology.toml, then `invoke render` and `invoke backend`.",
        ),
        Rule(
            "EseLoadBalancerServerDown",
            # One series per server and state; `UP` == 0 covers DOWN (failed health checks)
            # and MAINT (the name stopped resolving: the container is gone), and its labels
            # stay the same when HAProxy moves from one to the other, so `for` keeps counting.
            f'label_replace(max without (state) (haproxy_server_status{{job="{HAPROXY_JOB}",'
            f'proxy="{BACKEND}",state="UP"}}), "shard", "$1", "server", "(.+)") == 0'
            # In the Swarm stack the server-template keeps empty slots in MAINT: not an outage.
            f' unless on (server) haproxy_server_status{{job="{HAPROXY_JOB}",proxy="{BACKEND}",'
            f'state="MAINT",server=~"{template_prefix(topo)}[0-9]+"}} == 1',
            "30s",
            "warning",
            f"{lb} has taken {SHARD} out of rotation",
            f"HAProxy ({lb}) has not had ingest server {SHARD} UP for 30 s: DOWN when it "
            "fails its health checks, MAINT when its name no longer resolves (its container "
            "is gone; the Swarm stack's empty replica slots are MAINT too and do not count). "
            "The other ingest shards take its traffic. "
            f"{status} (HAProxy servers), then {per_shard_logs}.",
            {"role": "ingest"},
        ),
        Rule(
            "EseErrorRateHigh",
            f"sum by (shard, role) (rate(ese_http_request_duration_seconds_count"
            f'{{{_REQUESTS},status=~"5.."}}[{WINDOW}])) '
            f"/ sum by (shard, role) (rate(ese_http_request_duration_seconds_count"
            f"{{{_REQUESTS}}}[{WINDOW}])) > {ERROR_RATIO}",
            "2m",
            "warning",
            f"{SHARD} answers {PERCENT} of its requests with 5xx",
            f"Over {ERROR_RATIO:.0%} of the requests to {SHARD} ({ROLE}) have got a 5xx for "
            "2 min (Prometheus' scrapes not counted); a 503 means Redis is unreachable or "
            f"full. {status}, then {per_shard_logs} and `invoke logs -s {redis}`.",
        ),
        Rule(
            "EseLatencyHigh",
            f"histogram_quantile(0.99, sum by (shard, role, le) "
            f"(rate(ese_http_request_duration_seconds_bucket{{{_REQUESTS}}}[{WINDOW}])))"
            f" > {LATENCY_P99_SECONDS}",
            "5m",
            "warning",
            f"p99 latency of {SHARD} is {DURATION}",
            f"The 99th percentile of {SHARD}'s ({ROLE}) request durations has been over "
            f"{LATENCY_P99_SECONDS * 1000:.0f} ms for 5 min (scrapes not counted). "
            f"{status}, then {per_shard_logs}; the ESE Server dashboard shows CPU per shard "
            "and Redis' commands/s and memory.",
        ),
        Rule(
            "EseNoEventsIngested",
            f'sum(rate(ese_events_ingested_total{{job="{SHARD_JOB}"}}[{WINDOW}])) == 0 '
            f"and on () sum(rate(haproxy_backend_sessions_total"
            f'{{job="{HAPROXY_JOB}",proxy="{BACKEND}"}}[{WINDOW}])) > 0',
            "5m",
            "info",
            "No events stored while the load balancer forwards requests",
            f"For 5 min {lb} has forwarded requests to the ingest shards and none stored an "
            "event: they are refused or fail. "
            f"{status}, then {ingest_logs}; the dashboard's panels of 4xx/5xx responses and "
            "rejected requests show why.",
        ),
        *replication_rules(topo),
    ]


def replication_rules(topo: Topology) -> list[Rule]:
    """The Swarm stack's replicated store; none without replicas."""
    sw = topo.swarm
    wanted, lag = sw.redis_replicas, sw.min_replicas_max_lag
    if not wanted:
        return []
    status = "Run `invoke status` (which Redis is master, each replica's lag, the Sentinels' view)"
    where = (
        f"`docker service ps {sw.stack}_<name>` shows where a Redis runs and why it stopped, "
        f"`docker service logs {sw.stack}_<name>` what it said"
    )
    return [
        Rule(
            "EseNotReplicated",
            # Counted by the shard for every append it answered 503 "not replicated": WAIT
            # reported fewer than ack_replicas replicas, or the master refused it (NOREPLICAS:
            # min-replicas-to-write). Without replicas it never counts.
            f"sum by (shard, role) (rate(ese_not_replicated_total"
            f'{{job="{SHARD_JOB}"}}[{WINDOW}])) > 0',
            NOT_REPLICATED_FOR,
            "critical",
            f'{SHARD} answers {NUMBER} appends/s with 503 "not replicated"',
            f"{SHARD} ({ROLE}) has refused appends for {NOT_REPLICATED_FOR} (some in every "
            f"minute): fewer than ack_replicas ({sw.acks}, [swarm] ack_replicas) replicas "
            "acknowledged them within the WAIT timeout, or the master refused them for too "
            "few connected replicas (NOREPLICAS). Nothing new is acknowledged; the clients "
            "retry with the same ids. A burst of a few seconds during a failover is expected "
            "(EseRedisFailover); this one lasts. "
            f"{status} and look at the replicas (EseRedisReplicaMissing and "
            f"EseRedisReplicationLag say which is missing or behind); {where}.",
        ),
        Rule(
            "EseRedisReplicaMissing",
            f"redis_connected_slaves{{{_REPLICATED}}} < {wanted} "
            f'and on (instance) redis_instance_info{{{_REPLICATED},role="master"}}',
            "30s",
            "warning",
            f"Redis master {INSTANCE} has {NUMBER} of its {wanted} replicas",
            f"The Redis master {INSTANCE} has had fewer than the {wanted} configured replicas "
            "([swarm] redis_replicas) connected for 30 s, so fewer machines hold each event. "
            "With none it refuses writes (min-replicas-to-write 1) and the shards answer 503. "
            f"{status}; {where}; a replica whose node is back rejoins by itself.",
        ),
        Rule(
            "EseRedisFailover",
            # Master now, and a replica within FAILOVER_MEMORY: promoted. A Redis that was
            # master from its start (a fresh stack) never was a replica and stays quiet.
            f'max by (instance, redis) (redis_instance_info{{{_REPLICATED},role="master"}}) '
            "and on (instance) max by (instance) "
            f'(max_over_time(redis_instance_info{{{_REPLICATED},role="slave"}}'
            f"[{FAILOVER_MEMORY}]))",
            "0s",
            "warning",
            f"Redis failed over: {INSTANCE} is master now",
            f"{INSTANCE} became master within the last {FAILOVER_MEMORY}, having been a "
            "replica: the Sentinels promoted it when the master was lost (or it took its "
            "rendered role while no Sentinel answered). The shards follow the Sentinels' "
            "master; what they acknowledged was on a replica too (ack_replicas). "
            f"{status}; {where}. The old master, once its node is back, rejoins as a replica. "
            f"The alert clears {FAILOVER_MEMORY} after the change.",
        ),
        Rule(
            "EseRedisReplicationLag",
            "max by (instance, replica) (label_replace("
            f'redis_connected_slave_lag_seconds{{{_REPLICATED}}}, "replica", "$1", '
            f'"slave_ip", "(.+)")) > {lag}',
            "30s",
            "warning",
            f"Replica {REPLICA} of {INSTANCE} lags {DURATION}",
            f"Replica {REPLICA} has not acknowledged the master {INSTANCE}'s stream for over "
            f"{lag} s ([swarm] min_replicas_max_lag) for 30 s: the master no longer counts it "
            "toward min-replicas-to-write, and a shard's WAIT cannot count it either. Its "
            f"node may be down, cut off or overloaded. {status}; {where}.",
        ),
    ]


def rules_file(topo: Topology) -> str:
    """The rule file Prometheus loads (rule_files in prometheus.yml)."""
    doc = {"groups": [{"name": "ese", "rules": [r.document() for r in rules(topo)]}]}
    return dump_yaml(doc, HEADER_NOTE)
