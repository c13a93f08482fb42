"""Failure drills on the running stack: a shard killed, Redis restarted
under load, bad requests through the load balancer, a full store.

The drills raise alerts on purpose; `hands_back_quiet` waits until they have resolved, so the
module after this one finds the stack as a fresh one.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from ese.topology import load
from tests.e2e import containers, harness, outside
from tests.e2e.prober import PROBE_IP, Prober

CLIENTS = 4
# Per-client limits at 100 ms ticks: about 19 s and 15 s of traffic, longer than each drill.
KILL_LIMIT, REDIS_LIMIT = 2000, 1600

pytestmark = pytest.mark.usefixtures("hands_back_quiet")


def _wait_clients_running(watcher: containers.IpWatcher) -> None:
    outside.wait_until(lambda: watcher.running_now() == CLIENTS, 30, "all clients running")
    time.sleep(1.5)  # let traffic flow through both shards first
    assert watcher.running_now() > 0, "the clients finished before the drill started"


def _lb_state(name: str) -> str:
    return outside.haproxy_servers()[name]["status"]


def _firing(alert: str, shard: str) -> list[dict[str, Any]]:
    """Prometheus' firing `alert` alerts for `shard` (pending ones do not count)."""
    return [
        a
        for a in outside.prometheus_alerts(alert)
        if a["state"] == "firing" and a["labels"].get("shard") == shard
    ]


def _in_alertmanager(alert: str, shard: str) -> list[dict[str, Any]]:
    return [a for a in outside.alertmanager_alerts(alert) if a["labels"].get("shard") == shard]


def test_drill_kill_an_ingest_shard_while_clients_run(stack: harness.Stack) -> None:
    seen: list[str] = []
    alert_seconds: dict[str, float] = {}

    def drill(watcher: containers.IpWatcher) -> None:
        _wait_clients_running(watcher)
        shard = containers.service_container(stack.cli, "ese-server1")
        shard.kill()  # SIGKILL: no graceful shutdown, in-flight requests are cut
        killed = time.monotonic()

        def down() -> bool:
            seen.append(_lb_state("ese-server1"))
            return seen[-1].startswith("DOWN")

        outside.wait_until(down, 45, "HAProxy shows ese-server1 DOWN", interval=0.25)
        assert watcher.running_now() > 0, "the clients finished before the shard was down"

        # EseShardDown: `for: 30s` after the first failed scrape (1 s scrapes and evaluations).
        fired = outside.wait_until(
            lambda: _firing("EseShardDown", "ese-server1"), 90, "EseShardDown firing in Prometheus"
        )
        alert_seconds["firing in Prometheus"] = time.monotonic() - killed
        assert fired[0]["labels"]["role"] == "ingest", fired
        assert fired[0]["labels"]["severity"] == "critical", fired
        assert "invoke logs -s ese-server1" in fired[0]["annotations"]["description"], fired
        held = outside.wait_until(
            lambda: _in_alertmanager("EseShardDown", "ese-server1"), 30, "it in Alertmanager"
        )
        alert_seconds["in Alertmanager"] = time.monotonic() - killed
        assert held[0]["status"]["state"] == "active", held
        # HAProxy's view of the same outage (Alertmanager holds it back: inhibited).
        outside.wait_until(
            lambda: _firing("EseLoadBalancerServerDown", "ese-server1"),
            60,
            "EseLoadBalancerServerDown firing in Prometheus",
        )
        seen.append(_lb_state("ese-server1"))

        shard.start()
        started = time.monotonic()
        outside.wait_until(lambda: _lb_state("ese-server1") == "UP", 60, "ese-server1 UP again")
        outside.wait_until(lambda: containers.health(shard) == "healthy", 60, "shard healthy")
        seen.append(_lb_state("ese-server1"))
        outside.wait_until(
            lambda: not outside.prometheus_alerts("EseShardDown"), 60, "resolved in Prometheus"
        )
        outside.wait_until(
            lambda: not _in_alertmanager("EseShardDown", "ese-server1"),
            60,
            "resolved in Alertmanager",
        )
        alert_seconds["resolved after the restart"] = time.monotonic() - started

    phase = harness.run_clients(
        stack, clients=CLIENTS, delay_ms=100, limit=KILL_LIMIT, during=drill
    )
    print(f"HAProxy states of ese-server1 during the drill: {seen}")
    print(f"EseShardDown, seconds after the kill or restart: {alert_seconds}")
    for what, seconds in alert_seconds.items():
        harness.record(f"drill kill shard: EseShardDown {what}", seconds)
    harness.record("drill kill shard: client phase", phase.seconds)
    harness.check_phase(phase, CLIENTS, KILL_LIMIT)
    assert outside.haproxy_servers()["ese-server2"]["status"] == "UP"


def _started(container: Any) -> tuple[str, int]:
    container.reload()
    return container.attrs["State"]["StartedAt"], int(container.attrs["RestartCount"])


def test_drill_restart_redis_under_load(stack: harness.Stack) -> None:
    shards = [
        containers.service_container(stack.cli, s)
        for s in ("ese-server1", "ese-server2", "ese-server-analytics")
    ]
    before = {s.name: _started(s) for s in shards}
    errors_before = outside.shard_503s()
    prober = Prober(stack.ingest_token)

    def drill(watcher: containers.IpWatcher) -> None:
        _wait_clients_running(watcher)
        prober.start()
        time.sleep(0.5)
        redis = containers.service_container(stack.cli, "redis-server")
        # SIGTERM, not SIGKILL: Redis flushes its append-only file on a clean shutdown, and the
        # named volume keeps it, so what was acknowledged survives the restart.
        redis.restart(timeout=20)
        assert watcher.running_now() > 0, "the clients finished before Redis was back"
        outside.wait_until(lambda: containers.health(redis) == "healthy", 60, "redis healthy")

        def shards_see_redis() -> bool:
            return all(
                outside.get_json(f"{url}/")["redis"] == "up"
                for url in (*outside.SHARDS.values(), outside.ANALYTICS)
            )

        outside.wait_until(shards_see_redis, 30, "every shard sees Redis up again")
        mark = len(prober.statuses)
        outside.wait_until(lambda: 201 in prober.statuses[mark:], 30, "probe stored again")
        prober.stop.set()
        prober.join(10)

    phase = harness.run_clients(
        stack, clients=CLIENTS, delay_ms=100, limit=REDIS_LIMIT, during=drill
    )
    harness.record("drill restart redis: client phase", phase.seconds)
    retries = sum(r.count("retries") for r in phase.runs)
    answered_503 = outside.shard_503s() - errors_before
    probe_503 = prober.statuses.count(503)
    print(
        f"probe statuses: { {s: prober.statuses.count(s) for s in set(prober.statuses)} }; "
        f"shard 503s: {answered_503:.0f}; client retries: {retries}"
    )
    assert probe_503 or answered_503 > 0 or retries > 0, "the outage was never observed"
    assert answered_503 > 0, "no shard answered 503 while Redis was down"

    harness.check_phase(phase, CLIENTS, REDIS_LIMIT, extra_ips=frozenset({PROBE_IP}))
    stored_probes = {str(e["id"]) for e in phase.events if e["ip"] == PROBE_IP}
    lost = prober.acknowledged - stored_probes
    assert not lost, f"{len(lost)} acknowledged probe events lost, e.g. {sorted(lost)[:3]}"
    # Recovered by themselves: no shard was restarted.
    assert {s.name: _started(s) for s in shards} == before


EVENT = {
    "eventType": "CLICK_STREAM_EVENT",
    "timestamp": 1706000000123,
    "ip": "e2e-bad",
    "data": {"event": "BUTTON_CLICK_EVENT"},
}


def _bad_requests() -> list[tuple[str, str, str, bytes, bool]]:
    """(what, method, path, body, with token) of requests that must each get a 4xx."""
    big = dict(
        EVENT, id="e2e-bad-big", data={"event": "BUTTON_CLICK_EVENT", "pad": "x" * 1_200_000}
    )
    batch = {"events": [dict(EVENT, id=f"e2e-bad-batch-{n}") for n in range(1001)]}
    half_bad = {"events": [dict(EVENT, id="e2e-bad-half-ok"), {"eventType": "CLICK_STREAM_EVENT"}]}
    return [
        ("malformed JSON", "POST", "/event", b'{"eventType": "CLICK_STREAM_EVENT",', True),
        ("not UTF-8", "POST", "/event", b"\xff\xfe\x00garbage", True),
        ("wrong types", "POST", "/event", json.dumps(dict(EVENT, timestamp="soon")).encode(), True),
        ("missing field", "POST", "/event", json.dumps({"eventType": "X"}).encode(), True),
        ("events not a list", "POST", "/events", b'{"events": "many"}', True),
        ("one bad event in a batch", "POST", "/events", json.dumps(half_bad).encode(), True),
        ("batch over the limit", "POST", "/events", json.dumps(batch).encode(), True),
        ("body over 1 MiB", "POST", "/event", json.dumps(big).encode(), True),
        ("no token", "POST", "/event", json.dumps(dict(EVENT, id="e2e-bad-anon")).encode(), False),
        ("read route via the LB", "GET", "/events", b"", True),
        ("unknown route", "POST", "/nothing-here", b"{}", True),
    ]


def test_drill_bad_requests_through_the_lb_get_4xx(stack: harness.Stack) -> None:
    _, cursor = outside.read_stream(stack.analytics_token)
    answers = {}
    for what, method, path, body, with_token in _bad_requests():
        headers = {"Content-Type": "application/json"}
        if with_token:
            headers.update(outside.bearer(stack.ingest_token))
        status, reply = outside.request(
            method, f"{outside.LB}{path}", body if method == "POST" else None, headers
        )
        answers[what] = status
        assert 400 <= status < 500, f"{what}: {status} {reply[:300]!r}"
        assert "message" in json.loads(reply), f"{what}: not a JSON error body: {reply[:300]!r}"
    print(f"answers through the load balancer: {answers}")

    # Nothing of any of them was stored; a good event right after is.
    good = dict(EVENT, id=f"e2e-good-{uuid.uuid4().hex[:8]}")
    headers = {"Content-Type": "application/json", **outside.bearer(stack.ingest_token)}
    status, _ = outside.request("POST", f"{outside.LB}/event", json.dumps(good).encode(), headers)
    assert status == 201
    events, _ = outside.read_stream(stack.analytics_token, cursor)
    assert [e["id"] for e in events] == [good["id"]], [e.get("id") for e in events][:10]

    # And the stack stayed healthy.
    assert {n: r["status"] for n, r in outside.haproxy_servers().items()} == {
        "ese-server1": "UP",
        "ese-server2": "UP",
    }
    for c in containers.project_containers(stack.cli, containers.BACKEND):
        assert containers.health(c) == "healthy", c.name


def _redis_cli(container: Any, *args: str) -> str:
    """redis-cli inside the Redis container (REDISCLI_AUTH there holds the password)."""
    code, out = container.exec_run(["redis-cli", *args])
    text = out.decode(errors="replace").strip()
    assert code == 0 and not text.startswith("ERR"), f"redis-cli {args}: {code} {text}"
    return text


def test_drill_a_full_store_refuses_writes_and_fires_ese_store_full(stack: harness.Stack) -> None:
    redis = containers.service_container(stack.cli, "redis-server")
    limit = str(load().redis.maxmemory_bytes)
    assert _redis_cli(redis, "CONFIG", "GET", "maxmemory").split() == ["maxmemory", limit]
    headers = {"Content-Type": "application/json", **outside.bearer(stack.ingest_token)}

    def post() -> int:
        event = dict(EVENT, id=f"e2e-full-{uuid.uuid4().hex[:8]}")
        return outside.request("POST", f"{outside.LB}/event", json.dumps(event).encode(), headers)[
            0
        ]

    # A limit below what Redis already uses: the next write is refused (noeviction).
    _redis_cli(redis, "CONFIG", "SET", "maxmemory", "1mb")
    try:
        status = post()
        assert status == 503, f"a write to a full Redis got {status}"
        fired = outside.wait_until(
            lambda: [
                a for a in outside.prometheus_alerts("EseStoreFull") if a["state"] == "firing"
            ],
            30,
            "EseStoreFull firing in Prometheus",
        )
        assert fired[0]["labels"]["role"] == "ingest", fired
        outside.wait_until(
            lambda: outside.alertmanager_alerts("EseStoreFull"), 30, "EseStoreFull in Alertmanager"
        )
    finally:
        _redis_cli(redis, "CONFIG", "SET", "maxmemory", limit)
    outside.wait_until(lambda: post() == 201, 30, "writes stored again once Redis has room")
