"""A frozen Redis (SIGSTOP): honest 503s, no serialised reconnects, metrics that agree.

A command that got no answer may still run once Redis thaws, so the client must be told the
outcome is unknown (and that a retry with the same id is safe); "nothing was stored" is kept
for the cases where the command certainly never reached Redis.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import RedisServer
from tests.server.conftest import click
from tests.tooling import free_port, need_binary

PASSWORD = "pw"


def _ingested(metrics_text: str) -> float:
    return sum(
        float(line.split()[-1])
        for line in metrics_text.splitlines()
        if line.startswith("ese_events_ingested_total{")
    )


def _wait_for_length(client: redis.Redis, length: int, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = int(client.xlen("ese:events"))
        if current >= length:
            return current
        time.sleep(0.05)
    return int(client.xlen("ese:events"))


def test_timeout_on_a_frozen_redis_says_the_event_may_be_stored(
    ese_server_factory: Any, redis_server: RedisServer, rdb: redis.Redis
) -> None:
    shard = ese_server_factory()
    assert redis_server.proc is not None
    with httpx.Client(base_url=shard.url, timeout=30) as http:
        assert http.post("/event", json=click(event_id="before")).status_code == 201
        redis_server.proc.send_signal(signal.SIGSTOP)
        try:
            resp = http.post("/event", json=click(event_id="frozen"))
        finally:
            redis_server.proc.send_signal(signal.SIGCONT)
        assert resp.status_code == 503
        message = resp.json()["message"]
        assert "may have been stored" in message and "same id" in message, message
        assert "nothing was stored" not in message
        # Redis ran the queued script once thawed: the event is there after all ...
        assert _wait_for_length(rdb, 2) == 2
        # ... the retry the message asks for is acknowledged and not stored twice ...
        assert http.post("/event", json=click(event_id="frozen")).status_code == 201
        assert rdb.xlen("ese:events") == 2
        # ... and the shard's ingest counter agrees with /stats (the late reply was counted).
        deadline = time.monotonic() + 5
        while _ingested(http.get("/metrics").text) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert http.get("/stats").json()["total"] == 2
        assert _ingested(http.get("/metrics").text) == 2


def test_connection_refused_says_nothing_was_stored(
    ese_server_factory: Any, redis_server: RedisServer
) -> None:
    shard = ese_server_factory()
    with httpx.Client(base_url=shard.url, timeout=30) as http:
        assert http.post("/event", json=click(event_id="a")).status_code == 201
        redis_server.stop()  # the next test's redis_url fixture starts it again
        resp = http.post("/event", json=click(event_id="b"))
    assert resp.status_code == 503
    assert "nothing was stored" in resp.json()["message"]


@pytest.fixture
def frozen_locked_redis() -> Iterator[RedisServer]:
    """A password-protected Redis, frozen: TCP connects succeed (kernel backlog) but the
    AUTH handshake never gets an answer, so every connect attempt hangs until its timeout."""
    binary = need_binary("redis-server", "apt-get install redis-server")
    server = RedisServer(binary, free_port(), ["--requirepass", PASSWORD])
    server.start()
    assert server.proc is not None
    server.proc.send_signal(signal.SIGSTOP)
    try:
        yield server
    finally:
        server.proc.send_signal(signal.SIGCONT)
        server.stop()


def test_concurrent_requests_share_one_connect_attempt_to_a_hung_redis(
    ese_server_factory: Any, frozen_locked_redis: RedisServer
) -> None:
    shard = ese_server_factory(
        REDIS_URL=f"redis://:{PASSWORD}@127.0.0.1:{frozen_locked_redis.port}/0"
    )
    answers: list[tuple[int, float, str]] = []

    def post(n: int) -> None:
        started = time.monotonic()
        with httpx.Client(base_url=shard.url, timeout=30) as http:
            resp = http.post("/event", json=click(event_id=f"hung-{n}"))
        answers.append((resp.status_code, time.monotonic() - started, resp.json()["message"]))

    threads = [threading.Thread(target=post, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [status for status, _, _ in answers] == [503] * 6
    # One shared attempt bounded by the 2 s connect timeout, not one attempt after another
    # (which answered at 2, 4, ..., 12 s).
    slowest = max(seconds for _, seconds, _ in answers)
    assert slowest < 5, sorted(seconds for _, seconds, _ in answers)
    assert all("nothing was stored" in message for _, _, message in answers)
