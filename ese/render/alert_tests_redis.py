"""The `promtool test rules` cases of the replicated store's alerts (alert_rules.py,
`replication_rules`): each fires in one scenario and stays quiet in another, and none fires on
the compose stack's one Redis, which carries no `redis` label and has no replicas."""

from __future__ import annotations

from ese.render.alert_cases import Check, Fired, Scenario, sel
from ese.render.prometheus_yml import REDIS_JOB, SHARD_JOB
from ese.render.swarm_redis import REDIS_LABEL
from ese.topology import Topology


def _redis(name: str) -> dict[str, str]:
    """The labels Prometheus gives a Swarm Redis' series (swarm_redis.scrape_jobs)."""
    return {"job": REDIS_JOB, "instance": name, REDIS_LABEL: name}


def _info(labels: dict[str, str], role: str) -> str:
    # redis_instance_info carries more labels (version, run_id...); the rules use only these.
    return sel("redis_instance_info", **labels, role=role, redis_mode="standalone")


def _replica(topo: Topology, address: str) -> dict[str, str]:
    """The labels Prometheus gives an ingest replica's series (swarm_prometheus.py)."""
    target = f"{address}:{topo.ingest_shards[0].port}"
    shard = f"{topo.swarm.ingest_service}@{target}"
    return {"job": SHARD_JOB, "instance": target, "shard": shard, "role": "ingest"}


def _not_replicated(topo: Topology) -> list[Scenario]:
    """EseNotReplicated: a sustained refusal pages, a failover's burst and a flat count do not.

    The counter rises by 30 per 15 s step (2 appends/s refused) while a replica refuses."""
    sick, well = _replica(topo, "10.0.1.7"), _replica(topo, "10.0.1.8")
    named = {k: v for k, v in sick.items() if k in ("shard", "role")}  # what `sum by` keeps
    refused = "ese_not_replicated_total"
    return [
        Scenario(
            f"EseNotReplicated: {sick['shard']} refuses appends from 60 s on; "
            f"{well['shard']} refuses none",
            ((sel(refused, **sick), "0x3 30+30x16"), (sel(refused, **well), "0x20")),
            (
                Check("45s", "EseNotReplicated"),  # nothing refused yet
                Check("165s", "EseNotReplicated"),  # refusing since 60 s: pending
                Check("180s", "EseNotReplicated", (Fired(named, "2"),)),
            ),
        ),
        Scenario(
            f"EseNotReplicated: {sick['shard']} refuses appends for 30 s (samples at 60 to "
            "90 s) while the replicas follow a new master: quiet",
            ((sel(refused, **sick), "0x3 30 60 90 90x20"),),
            (
                # The rate is above 0 from 60 s to 135 s at most: a `for` of 0 s, 1 min or
                # a wider window would fire at one of these.
                Check("75s", "EseNotReplicated"),
                Check("120s", "EseNotReplicated"),
                Check("195s", "EseNotReplicated"),
                Check("300s", "EseNotReplicated"),
            ),
        ),
        Scenario(
            f"EseNotReplicated: {sick['shard']}'s count stays flat (refusals long ago): quiet",
            ((sel(refused, **sick), "12x30"), (sel(refused, **well), "0x30")),
            (Check("60s", "EseNotReplicated"), Check("300s", "EseNotReplicated")),
        ),
    ]


def scenarios(topo: Topology) -> list[Scenario]:
    """The cases, in the order of the rules; none without replicas (no rules either)."""
    sw = topo.swarm
    if not sw.redis_replicas:
        return []
    names = sw.redis_services
    master, replica = _redis(names[0]), _redis(names[-1])
    wanted, lag = sw.redis_replicas, sw.min_replicas_max_lag
    compose = {
        "job": REDIS_JOB,
        "instance": f"{topo.redis_exporter.name}:{topo.redis_exporter.port}",
    }
    out = [
        *_not_replicated(topo),
        Scenario(
            f"EseRedisReplicaMissing: {names[0]} has {wanted - 1} of {wanted} replicas from "
            "30 s to 105 s; its replicas (0 replicas each) do not count",
            (
                (sel("redis_connected_slaves", **master), f"{wanted}x1 {wanted - 1}x5 {wanted}x3"),
                (_info(master, "master"), "1x9"),
                (sel("redis_connected_slaves", **replica), "0x9"),
                (_info(replica, "slave"), "1x9"),
            ),
            (
                Check("15s", "EseRedisReplicaMissing"),
                Check("45s", "EseRedisReplicaMissing"),  # pending
                Check(
                    "60s",
                    "EseRedisReplicaMissing",
                    (Fired(master, str(wanted - 1)),),
                ),
                Check("135s", "EseRedisReplicaMissing"),  # all back at 120 s
            ),
        ),
        Scenario(
            "The compose stack's one Redis (no `redis` label, no replicas): no replication alert",
            (
                (sel("redis_connected_slaves", **compose), "0x30"),
                (_info(compose, "master"), "1x30"),
                (sel("redis_connected_slave_lag_seconds", **compose, slave_ip="x"), "60x30"),
            ),
            (
                Check("120s", "EseRedisReplicaMissing"),
                Check("120s", "EseRedisFailover"),
                Check("120s", "EseRedisReplicationLag"),
            ),
        ),
    ]

    promoted = _redis(names[-1])
    named = {k: v for k, v in promoted.items() if k != "job"}  # the rule keeps only these
    out += [
        Scenario(
            f"EseRedisFailover: {names[0]} is lost at 75 s, {names[-1]} is master from 75 s",
            (
                (_info(master, "master"), "1x4 stale"),
                (_info(promoted, "slave"), "1x4 stale"),
                (_info(promoted, "master"), "_x5 1x30"),
            ),
            (
                Check("60s", "EseRedisFailover"),
                Check("90s", "EseRedisFailover", (Fired(named),)),
                # Still within 5 min of its last sample as a replica (60 s)...
                Check("345s", "EseRedisFailover", (Fired(named),)),
                Check("375s", "EseRedisFailover"),  # ...and not any more.
            ),
        ),
        Scenario(
            f"EseRedisFailover: a fresh stack, {names[0]} master from its start, stays quiet",
            ((_info(master, "master"), "1x30"), (_info(replica, "slave"), "1x30")),
            (Check("60s", "EseRedisFailover"), Check("300s", "EseRedisFailover")),
        ),
    ]

    def lagging(name: str) -> str:
        labels = {**master, "slave_ip": name, "slave_port": str(topo.redis.port)}
        return sel("redis_connected_slave_lag_seconds", **labels, slave_state="online")

    slow, fine = names[1], names[-1]
    out.append(
        Scenario(
            f"EseRedisReplicationLag: {slow} stops acknowledging from 45 s to 120 s, "
            f"{fine} keeps up",
            (
                (lagging(slow), f"0 1 0 {lag + 1}+1x5 0x3"),
                (lagging(fine), "0 1 0 1 0 1 0 1 0 1 0 1"),
            ),
            (
                Check("60s", "EseRedisReplicationLag"),  # over since 45 s: pending
                Check(
                    "75s",
                    "EseRedisReplicationLag",
                    (Fired({"instance": master["instance"], "replica": slow}, f"{lag + 3}s"),),
                ),
                Check("150s", "EseRedisReplicationLag"),  # acknowledging again from 135 s
            ),
        )
    )
    return out
