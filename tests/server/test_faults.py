"""Faults: Redis stopped and started under load, graceful SIGTERM."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from tests.conftest import RedisServer
from tests.server.conftest import click, stream_entries
from tests.tooling import free_port, need_binary


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis whose data survives stop/start (AOF, fsync per write), for outage tests:
    "acknowledged" must mean "still there after Redis came back"."""
    binary = need_binary("redis-server", "apt-get install redis-server")
    server = RedisServer(
        binary,
        free_port(),
        ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(tmp_path)],
    )
    server.start()
    yield server
    server.stop()


def test_redis_outage_under_load(ese_server_factory: Any, durable_redis: RedisServer) -> None:
    shard = ese_server_factory(REDIS_URL=durable_redis.url)
    results: list[tuple[str, int]] = []
    stop = threading.Event()

    def load(worker: int) -> None:
        with httpx.Client(base_url=shard.url, timeout=10) as http:
            for n in range(5000):  # bounded in count, and in time by `stop`
                if stop.is_set():
                    return
                event_id = f"w{worker}-{n}"
                resp = http.post("/event", json=click(event_id=event_id))
                results.append((event_id, resp.status_code))
                if resp.status_code == 503:
                    assert resp.json()["message"]
                    time.sleep(0.01)

    workers = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for t in workers:
        t.start()
    health: list[str] = []
    try:
        time.sleep(0.7)
        durable_redis.stop()
        deadline = time.monotonic() + 3
        with httpx.Client(base_url=shard.url, timeout=5) as http:
            while time.monotonic() < deadline:
                resp = http.get("/")
                assert resp.status_code == 200  # liveness never fails because of Redis
                health.append(resp.json()["redis"])
                time.sleep(0.1)
            durable_redis.start()
            time.sleep(1.5)
            assert http.get("/").json()["redis"] == "up"
    finally:
        stop.set()
        for t in workers:
            t.join(30)
    statuses = [status for _, status in results]
    assert set(statuses) <= {201, 503}, set(statuses)
    outage_at = statuses.index(503)
    assert 201 in statuses[:outage_at], "no success before the outage"
    assert 201 in statuses[statuses.index(503) :], "no recovery after Redis came back"
    assert "down" in health
    acknowledged = {event_id for event_id, status in results if status == 201}
    client = redis.Redis.from_url(durable_redis.url)
    stored = [orjson.loads(f[b"e"])["id"] for _, f in stream_entries(client)]
    client.close()
    assert acknowledged <= set(stored), "an acknowledged event is missing"
    assert len(stored) == len(set(stored)), "an event was stored twice"
    assert shard.proc.poll() is None  # the shard never exited
    metrics = httpx.get(f"{shard.url}/metrics").text
    errors = [line for line in metrics.splitlines() if line.startswith("ese_redis_errors_total")]
    assert float(errors[0].split()[1]) >= 1
    assert 'route="/event",status="503"' in metrics


def test_sigterm_finishes_the_request_in_flight(ese_server_factory: Any, rdb: redis.Redis) -> None:
    shard = ese_server_factory()
    body = orjson.dumps(click(event_id="in-flight"))
    head = (
        f"POST /event HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", shard.port), timeout=10) as sock:
        sock.sendall(head + body[:10])  # the request has started, its body is not complete
        time.sleep(0.3)
        shard.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert shard.proc.poll() is None, "exited with a request in flight"
        with pytest.raises(OSError):  # no new connections once stopping
            socket.create_connection(("127.0.0.1", shard.port), timeout=1).close()
        sock.sendall(body[10:])
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 201"), reply
    assert shard.proc.wait(15) == 0
    assert rdb.xlen("ese:events") == 1
    assert "Traceback" not in shard.output()
