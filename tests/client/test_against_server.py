"""ese-client against a real ese-server and a real Redis (started by the shared fixtures)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ese_client.simulation import ORDER_STATES, plan_ticks, split_limit
from tests.client.conftest import REPO_ROOT, RecordingProxy, finish, run_client, start_client
from tests.conftest import get_json, stored_events
from tests.tooling import free_port, stop_process

# A client that outlasts an outage: retries for a minute, up to 1,000 attempts per request.
PATIENT = ("--retry-seconds", "60", "--max-attempts", "1000")

pytestmark = [pytest.mark.redis, pytest.mark.timeout(300)]


def test_every_event_is_stored_once_in_batches_of_5_and_orders_in_order(
    ese_server_factory: Callable[..., Any], recording_proxy: Callable[[str], RecordingProxy]
) -> None:
    server = ese_server_factory(role="all")
    proxy = recording_proxy(server.url)
    limit = 600
    run = run_client(proxy.url, "--event-limit", str(limit), "--concurrency", "3", "--seed", "4")

    assert run.returncode == 0, run.stderr
    assert run.count("events_created") == limit
    assert run.count("events_acknowledged") == limit
    assert run.count("events_failed") == 0
    assert run.count("requests_sent") == len(proxy.records)
    assert run.stderr == ""

    # What was sent: click events only in POST /events, 5 a request, except each client's
    # final flush; order events one per POST /event.
    sent: list[dict[str, Any]] = []
    batch_sizes: dict[str, list[int]] = defaultdict(list)
    for record in proxy.records:
        assert record.method == "POST"
        if record.path == "/events":
            assert record.status == 200
            batch = record.body["events"]
            assert {e["eventType"] for e in batch} == {"CLICK_STREAM_EVENT"}
            assert len({e["ip"] for e in batch}) == 1, "a batch comes from one client"
            batch_sizes[batch[0]["ip"]].append(len(batch))
            sent += batch
        else:
            assert record.path == "/event" and record.status == 201
            assert record.body["eventType"] == "ORDER_STATE_UPDATE_EVENT"
            sent.append(record.body)
    assert len(batch_sizes) == 3, "three clients, three identities"
    for sizes in batch_sizes.values():
        assert all(size == 5 for size in sizes[:-1]) and 1 <= sizes[-1] <= 5
    sent_ids = [e["id"] for e in sent]
    assert len(sent_ids) == limit == len(set(sent_ids))
    identities = {e["ip"] for e in sent}
    assert {ident.rsplit("-", 1)[1] for ident in identities} == {"1", "2", "3"}

    # What was stored: each created event exactly once, as sent (plus server_ts).
    stored = stored_events(server.url)
    stored_ids = Counter(e["id"] for e in stored)
    assert stored_ids == Counter(sent_ids)
    by_id = {e["id"]: e for e in sent}
    for event in stored:
        assert {k: v for k, v in event.items() if k != "server_ts"} == by_id[event["id"]]

    # The states of each order arrive in life-cycle order (stream order is arrival order).
    states: dict[str, list[str]] = defaultdict(list)
    last_ts: dict[str, int] = {}
    for event in stored:
        if event["eventType"] == "ORDER_STATE_UPDATE_EVENT":
            order_id = event["data"]["orderId"]
            states[order_id].append(event["data"]["state"])
            assert event["server_ts"] >= last_ts.get(order_id, 0)
            last_ts[order_id] = event["server_ts"]
    assert states
    for sequence in states.values():
        assert sequence == list(ORDER_STATES[: len(sequence)])

    # Disrupted (and limit-cut) cycles are the open orders of /stats. The plan is rebuilt from
    # the seed, so a client that never disrupts (or always does) cannot pass: every order ends
    # in exactly the state its planned cycle ends in.
    run_id = sent_ids[0].split("-", 1)[0]
    planned: dict[str, list[str]] = {}
    for number, share in enumerate(split_limit(limit, 3), start=1):
        rng = random.Random(4 + number)  # the runner seeds client n with seed + n
        ticks = plan_ticks(rng=rng, run_id=run_id, instance=number, limit=share, delay_ms=0)
        for tick in ticks:
            planned[tick.order_id] = [p.data["state"] for p in tick.order]
    assert states == planned
    disrupted_or_cut = sum(1 for s in planned.values() if len(s) < len(ORDER_STATES))
    completed = len(planned) - disrupted_or_cut
    assert disrupted_or_cut > 0 and completed > 0
    stats = get_json(f"{server.url}/stats")
    assert stats["orders"] == {"open": disrupted_or_cut, "completed": completed}
    assert stats["total"] == limit
    assert sum(stats["clients"].values()) == limit and set(stats["clients"]) == identities


def test_a_redis_outage_is_retried_and_stores_every_event_once(
    ese_server_factory: Callable[..., Any], redis_server: Any
) -> None:
    server = ese_server_factory(role="all")
    redis_server.stop()  # the shard stays up and answers 503 until Redis is back
    limit = 150
    proc = start_client(
        server.url,
        "--event-limit",
        str(limit),
        "--concurrency",
        "2",
        *PATIENT,
    )
    try:
        # Bring Redis back only once the client has met the outage (a 503 on an ingest route).
        deadline = time.monotonic() + 30
        while not _saw_503(server.url):
            assert proc.poll() is None, "ese-client ended before Redis came back"
            assert time.monotonic() < deadline, "ese-client never got a 503"
            time.sleep(0.1)
        time.sleep(1.0)
    finally:
        redis_server.start()
    run = finish(proc)

    assert run.returncode == 0, run.stderr
    assert run.count("events_failed") == 0
    assert run.count("events_acknowledged") == run.count("events_created") == limit
    assert run.count("retries") > 0
    assert run.count("requests_sent") > run.count("retries")
    ids = Counter(e["id"] for e in stored_events(server.url))
    assert len(ids) == limit and set(ids.values()) == {1}


def _saw_503(base_url: str) -> bool:
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return any(
        line.startswith("ese_http_request_duration_seconds_count")
        and 'status="503"' in line
        and ('route="/event"' in line or 'route="/events"' in line)
        and float(line.rsplit(" ", 1)[1]) > 0
        for line in text.splitlines()
    )


def test_a_wrong_token_is_not_retried_and_fails_the_run(
    ese_server_factory: Callable[..., Any],
) -> None:
    server = ese_server_factory(role="ingest", ESE_INGEST_TOKEN="right")
    run = run_client(server.url, "--event-limit", "200", ESE_INGEST_TOKEN="wrong")

    assert run.returncode == 1
    assert run.count("retries") == 0
    assert run.count("events_failed") > 0
    assert run.count("events_acknowledged") == 0
    assert run.count("events_created") == run.count("events_failed")
    assert "401" in run.stderr and "ESE_INGEST_TOKEN" in run.stderr
    assert "Traceback" not in run.stderr


def test_the_right_token_is_sent(ese_server_factory: Callable[..., Any]) -> None:
    server = ese_server_factory(role="ingest", ESE_INGEST_TOKEN="right")
    run = run_client(server.url, "--event-limit", "40", ESE_INGEST_TOKEN="right")
    assert run.returncode == 0, run.stderr
    assert run.count("events_acknowledged") == 40


def _wait_for_stored(base_url: str, at_least: int, proc: Any) -> None:
    """Poll /stats (bounded) until the shard holds `at_least` events."""
    deadline = time.monotonic() + 30
    while get_json(f"{base_url}/stats")["total"] < at_least:
        assert proc.poll() is None, "ese-client ended too early"
        assert time.monotonic() < deadline, "ese-client stored nothing"
        time.sleep(0.05)


def test_timeouts_during_a_redis_stall_are_retried_without_duplicates(
    ese_server_factory: Callable[..., Any], redis_server: Any
) -> None:
    # A frozen Redis makes requests hang: the client times out and resends the same ids while
    # the first copies are still pending in the shard; both land once Redis thaws.
    server = ese_server_factory(role="all")
    proc = start_client(
        server.url,
        "--event-limit",
        "3000",
        "--event-delay-ms",
        "20",
        "--concurrency",
        "2",
        "--timeout-seconds",
        "0.3",
        *PATIENT,
    )
    _wait_for_stored(server.url, 20, proc)
    redis_server.proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(1.5)
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)
    run = finish(proc)

    assert run.returncode == 0, run.stderr
    assert run.count("retries") > 0
    assert run.count("events_failed") == 0
    assert run.count("events_acknowledged") == run.count("events_created") == 3000
    ids = Counter(e["id"] for e in stored_events(server.url))
    assert len(ids) == 3000 and set(ids.values()) == {1}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_flushes_and_prints_the_summary(
    ese_server_factory: Callable[..., Any], signum: signal.Signals
) -> None:
    server = ese_server_factory(role="all")
    proc = start_client(server.url, "--event-limit", "100000", "--event-delay-ms", "20")
    _wait_for_stored(server.url, 50, proc)
    proc.send_signal(signum)
    run = finish(proc, timeout=60)

    assert run.returncode == 0, run.stderr
    assert run.summary.get("interrupted") == "yes"
    created = run.count("events_created")
    assert 50 <= created < 100000
    assert run.count("events_acknowledged") == created and run.count("events_failed") == 0
    ids = Counter(e["id"] for e in stored_events(server.url))
    assert len(ids) == created and set(ids.values()) == {1}
    assert "Traceback" not in run.stderr


def test_a_rejected_batch_is_counted_failed_reported_and_not_retried(
    ese_server_factory: Callable[..., Any],
) -> None:
    # The shard takes at most 3 events a batch: every click batch of 5 is a final 413, the order
    # events still go through.
    server = ese_server_factory(role="all", ESE_MAX_BATCH="3")
    run = run_client(server.url, "--event-limit", "120", "--seed", "9")

    assert run.returncode == 1
    assert run.count("retries") == 0
    stored = stored_events(server.url)
    assert stored and {e["eventType"] for e in stored} == {"ORDER_STATE_UPDATE_EVENT"}
    assert run.count("events_acknowledged") == len(stored)
    assert run.count("events_failed") == 120 - len(stored) > 0
    assert "rejected 5 event(s) with 413" in run.stderr
    assert "events: has 5 events" in run.stderr, "the server's message is passed on"
    assert len(run.stderr.splitlines()) <= 6, "rejections are reported, but not all of them"
    assert "Traceback" not in run.stderr


def _start_server_on(port: int, redis_url: str, log: Any) -> subprocess.Popen[bytes]:
    """`python -m ese_server` on a chosen port (the shared fixture always picks a new one)."""
    env = {**os.environ, "SERVER_PORT": str(port), "ESE_ROLE": "all", "REDIS_URL": redis_url}
    env.setdefault("PYTHONPATH", str(REPO_ROOT / "services"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ese_server"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=str(REPO_ROOT),
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            get_json(f"http://127.0.0.1:{port}/")
            return proc
        except OSError:
            assert proc.poll() is None, "ese-server exited at start"
            assert time.monotonic() < deadline, "ese-server did not come up"
            time.sleep(0.05)


def test_a_server_restart_on_the_same_port_is_retried_and_stores_every_event_once(
    redis_url: str, tmp_path: Path
) -> None:
    # The ese-server process itself goes away (connection refused) and comes back on its port.
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    limit = 1500
    with open(tmp_path / "server.log", "w+b") as log:
        server = _start_server_on(port, redis_url, log)
        proc = start_client(
            url,
            "--event-limit",
            str(limit),
            "--event-delay-ms",
            "20",
            "--concurrency",
            "2",
            *PATIENT,
        )
        try:
            _wait_for_stored(url, 50, proc)
            stop_process(server, 15)
            time.sleep(1.5)  # connection refused meanwhile
            assert proc.poll() is None, "ese-client ended while the server was down"
            server = _start_server_on(port, redis_url, log)
            stored_at_restart = get_json(f"{url}/stats")["total"]
            run = finish(proc)
            ids = Counter(e["id"] for e in stored_events(url))
        finally:
            stop_process(server, 15)
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)

    assert stored_at_restart < limit, "the outage hit mid-run"
    assert run.returncode == 0, run.stderr
    assert run.count("retries") > 0
    assert run.count("events_failed") == 0
    assert run.count("events_acknowledged") == run.count("events_created") == limit
    assert "Traceback" not in run.stderr
    # Redis kept everything: each event stored exactly once, including the retried ones.
    assert len(ids) == limit and set(ids.values()) == {1}
