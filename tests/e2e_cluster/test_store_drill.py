"""The store drills: the machine holding the Redis master lost under load, then a machine
holding a replica, then the master cut off from both replicas. Each machine is a cluster node,
killed with SIGKILL (`invoke cluster.kill`).

What they show, beside the clients' own count (every acknowledged event stored exactly once, no
client giving up): a probe writer's answers, timed, say when writes stopped and started again,
and a Sentinel's events, timed, say what the failover spent that time on.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.e2e import containers, harness, outside
from tests.e2e.prober import ACKNOWLEDGED, PROBE_IP, Prober
from tests.e2e_cluster import view

CLIENTS, DELAY_MS, LIMIT = 3, 200, 3000  # about 50 events/s per client: a minute of load
FIRST_WRITE = 20  # seconds from the master's machine lost to the next acknowledged write
BURST = 8  # seconds: the longest time writers may see no success when a replica's machine dies
REJOIN = 180  # seconds for a node back to rejoin and its Redis to follow the master
ISOLATED = 8  # seconds the master is left without replicas
NOT_REPLICATED = "not replicated"
# What one Sentinel publishes about the master: it finds it down (+sdown), its peers agree
# (+odown: only where this Sentinel saw the quorum itself, which the leader may beat), the
# failover is done (+switch-master).
WATCHED = ("+sdown", "+odown", "+switch-master")
REQUIRED = ("+sdown", "+switch-master")


class SentinelEvents(threading.Thread):
    """The first time one Sentinel published each of WATCHED about the master (monotonic), read
    from `redis-cli SUBSCRIBE` inside its container; bounded by `timeout` in the container."""

    def __init__(self, box: Any, seconds: int = 300) -> None:
        super().__init__(name="sentinel-events", daemon=True)
        argv = ["timeout", str(seconds), "redis-cli", "-p", str(view.TOPO.sentinel.port)]
        _, self.stream = box.exec_run([*argv, "SUBSCRIBE", *WATCHED], stream=True)
        self.first: dict[str, float] = {}
        self.payloads: list[str] = []

    def run(self) -> None:
        lines: list[str] = []
        buffer = ""
        for chunk in self.stream:
            now = time.monotonic()
            buffer += chunk.decode(errors="replace")
            *complete, buffer = buffer.split("\n")
            lines += complete
            # "message", then the channel, then the payload ("master ese redis-1 6379 ...")
            while len(lines) >= 3:
                if lines[0] != "message":
                    lines.pop(0)
                    continue
                channel, payload = lines[1], lines[2]
                del lines[:3]
                self.payloads.append(f"{channel} {payload}")
                if payload.startswith(("master ", view.TOPO.sentinel.master_name)):
                    self.first.setdefault(channel, now)


def probe_stored(phase: harness.Phase, prober: Prober) -> None:
    """Every acknowledged probe event is stored, once (check_phase counts the clients')."""
    stored = [str(e["id"]) for e in phase.events if e["ip"] == PROBE_IP]
    lost = prober.acknowledged - set(stored)
    assert not lost, f"{len(lost)} acknowledged probe events lost, e.g. {sorted(lost)[:3]}"
    assert len(stored) == len(set(stored)), "a probe event stored twice"


def wait_following(redis: str, master: str, what: str) -> float:
    """Wait until `redis` is a replica of `master` and `master` streams to it; its seconds."""
    started = time.monotonic()

    def follows() -> bool:
        return view.role(redis) == ("slave", master) and redis in view.connected_replicas(master)

    outside.wait_until(follows, REJOIN, what, 2)
    return time.monotonic() - started


def test_the_masters_machine_lost_under_load(cluster: harness.Stack, manager: Any) -> None:
    master = view.sentinel_master()
    victim = view.node_of(manager, master)
    assert victim != view.EDGE, f"the master {master} is on the edge node {victim}"
    assert view.role(master) == ("master", ""), view.role(master)
    _, sentinel = view.sentinel_on(next(n for n in view.NAMES if n not in (victim,)))
    events = SentinelEvents(sentinel)
    prober = Prober(cluster.ingest_token, max_seconds=300, max_requests=4000, pause=0.1)
    times: dict[str, float] = {}
    marks: dict[str, float] = {}  # monotonic moments, for the Sentinel's times
    promoted: list[str] = []

    def drill(watcher: containers.IpWatcher) -> None:
        outside.wait_until(lambda: watcher.running_now() == CLIENTS, 60, "all clients running")
        prober.start()
        events.start()
        outside.wait_until(lambda: ACKNOWLEDGED in prober.statuses, 30, "a probe acknowledged")
        time.sleep(2)
        harness.invoke("cluster.kill", "--node", victim, timeout=60)
        # From when the task returned: the node is dead by then (the times are a little short
        # by the task's own exit, never long by its start-up).
        killed = time.monotonic()
        skip = frozenset({victim})

        def new_master() -> str | None:
            named = view.sentinel_master(skip)
            return named if named != master else None

        promoted.append(outside.wait_until(new_master, 60, "the Sentinels promote a replica", 0.5))
        outside.wait_until(
            lambda: prober.first_acknowledged_after(killed) is not None,
            60,
            "a write acknowledged after the kill",
            0.2,
        )
        first = prober.first_acknowledged_after(killed)
        assert first is not None
        times["kill -> first acknowledged write"] = first
        marks["killed"] = killed
        assert view.role(promoted[0]) == ("master", ""), view.role(promoted[0])
        assert watcher.running_now() == CLIENTS, "a client ended during the failover"
        started = time.monotonic()
        harness.invoke("cluster.start", "--node", victim, timeout=600)
        times["cluster.start -> node Ready"] = time.monotonic() - started
        times["cluster.start -> old master follows the new"] = (
            wait_following(master, promoted[0], f"{master} a replica of {promoted[0]}")
            + times["cluster.start -> node Ready"]
        )
        prober.finish()

    phase = harness.run_clients(
        cluster, clients=CLIENTS, delay_ms=DELAY_MS, limit=LIMIT, during=drill, timeout=900
    )
    prober.finish()
    # Read at the end: the watched Sentinel may hear of the failover after the first write.
    killed = marks["killed"]
    for channel in WATCHED:
        if channel in events.first:
            times[f"kill -> Sentinel {channel}"] = events.first[channel] - killed
    retries = sum(r.count("retries") for r in phase.runs)
    print(
        f"store drill, master lost: {master} on {victim}, {promoted} promoted; {times}; "
        f"probe {prober.summary()}; client retries {retries}; Sentinel saw {events.payloads[:12]}"
    )
    for what, seconds in times.items():
        harness.record(f"store drill, master's machine lost: {what}", seconds)
    assert set(REQUIRED) <= set(events.first), f"a Sentinel event never came: {events.payloads}"
    assert times["kill -> first acknowledged write"] <= FIRST_WRITE, times
    # The writers met the outage (their answers were unclear or refused) and retried.
    assert retries > 0, "no client retried: the kill never reached the writers"
    harness.check_phase(phase, CLIENTS, LIMIT, extra_ips=frozenset({PROBE_IP}))
    probe_stored(phase, prober)


def test_a_replicas_machine_lost_under_load(cluster: harness.Stack, manager: Any) -> None:
    master = view.sentinel_master()
    replicas = view.connected_replicas(master)
    assert len(replicas) == len(view.REDIS) - 1, (master, replicas)
    # A replica away from the edge (one always is: the master and the edge may share a node).
    victim, replica = next(
        (node, r) for r in replicas if (node := view.node_of(manager, r)) != view.EDGE
    )
    assert victim != view.node_of(manager, master)
    prober = Prober(cluster.ingest_token, max_seconds=300, max_requests=4000, pause=0.1)
    times: dict[str, float] = {}

    def drill(watcher: containers.IpWatcher) -> None:
        outside.wait_until(lambda: watcher.running_now() == CLIENTS, 60, "all clients running")
        prober.start()
        outside.wait_until(lambda: ACKNOWLEDGED in prober.statuses, 30, "a probe acknowledged")
        time.sleep(2)
        harness.invoke("cluster.kill", "--node", victim, timeout=60)
        time.sleep(15)  # writes go on meanwhile, acknowledged by the replica that is left
        assert view.sentinel_master(frozenset({victim})) == master, "a failover happened"
        started = time.monotonic()
        harness.invoke("cluster.start", "--node", victim, timeout=600)
        times["cluster.start -> replica following again"] = wait_following(
            replica, master, f"{replica} a replica of {master} again"
        ) + (time.monotonic() - started)
        prober.finish()

    phase = harness.run_clients(
        cluster, clients=CLIENTS, delay_ms=DELAY_MS, limit=LIMIT, during=drill, timeout=900
    )
    prober.finish()
    times["longest time with no acknowledged probe"] = prober.longest_outage()
    print(
        f"store drill, replica lost: {replica} on {victim}; {times}; probe {prober.summary()}; "
        f"client retries {sum(r.count('retries') for r in phase.runs)}"
    )
    for what, seconds in times.items():
        harness.record(f"store drill, a replica's machine lost: {what}", seconds)
    assert prober.longest_outage() <= BURST, prober.summary()
    harness.check_phase(phase, CLIENTS, LIMIT, extra_ips=frozenset({PROBE_IP}))
    probe_stored(phase, prober)


def not_replicated_total() -> float:
    return outside.prom_scalar("sum(ese_not_replicated_total)")


def test_a_master_without_replicas_acknowledges_nothing(
    cluster: harness.Stack, manager: Any
) -> None:
    master = view.sentinel_master()
    replicas = [r for r in view.REDIS if r != master]

    def scale(replicas_each: int) -> None:
        for redis in replicas:
            service = manager.services.get(f"{view.STACK}_{redis}")  # its current version
            if service.attrs["Spec"]["Mode"]["Replicated"]["Replicas"] != replicas_each:
                service.scale(replicas_each)

    counted_before = not_replicated_total()
    _, cursor = outside.read_stream(cluster.analytics_token)
    prober = Prober(cluster.ingest_token, max_seconds=180, max_requests=2000, pause=0.1)
    prober.start()
    try:
        outside.wait_until(lambda: ACKNOWLEDGED in prober.statuses, 30, "a probe acknowledged")
        scale(0)
        outside.wait_until(
            lambda: not view.connected_replicas(master), 60, f"{master} has no replica", 0.5
        )
        isolated = time.monotonic()
        time.sleep(ISOLATED)
        refused = prober.since(isolated)
        scale(1)
        for replica in replicas:
            wait_following(replica, master, f"{replica} a replica of {master} again")
        back = time.monotonic()
        outside.wait_until(
            lambda: prober.first_acknowledged_after(back) is not None, 60, "writes again", 0.5
        )
    finally:
        scale(1)
        prober.finish()
    print(
        f"store drill, master isolated: {len(refused)} probes while {master} had no replica: "
        f"{ {a.status: a.message for a in refused} }; probe {prober.summary()}"
    )
    assert refused, "no probe was answered while the master had no replica"
    assert {a.status for a in refused} == {503}, [(a.status, a.message) for a in refused]
    assert all(NOT_REPLICATED in a.message for a in refused), {a.message for a in refused}
    assert not_replicated_total() > counted_before, "ese_not_replicated_total did not count them"
    events, _ = outside.read_stream(cluster.analytics_token, cursor)
    stored = {str(e["id"]) for e in events if e["ip"] == PROBE_IP}
    lost = prober.acknowledged - stored
    assert not lost, f"{len(lost)} acknowledged probe events lost, e.g. {sorted(lost)[:3]}"
