"""SIGTERM (docker stop): the shard stops accepting, finishes what is in flight, exits 0."""

from __future__ import annotations

import contextlib
import signal
import socket
import time
from typing import Any

import httpx
import orjson
import redis

from tests.conftest import RedisServer, ServerHandle
from tests.server.conftest import click


def _refuses_connections(port: int, timeout: float = 5.0) -> bool:
    """True once nothing accepts TCP connections on the port (polled for at most `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                pass
        except ConnectionRefusedError:
            return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def _read_response(sock: socket.socket, timeout: float = 10.0) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 response (Content-Length framed)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in lines[1:]
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, body


def _wait_exit(shard: ServerHandle, timeout: float = 15.0) -> int | None:
    with contextlib.suppress(Exception):
        return shard.proc.wait(timeout)
    return None


def test_sigterm_finishes_a_request_whose_body_is_still_arriving(
    ese_server_factory: Any, rdb: redis.Redis
) -> None:
    shard = ese_server_factory()
    events = [click(event_id=f"drain-{i}") for i in range(20)]
    body = orjson.dumps({"events": events})
    head = (
        f"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", shard.port), 5) as sock:
        sock.sendall(head + body[:10])  # in flight: the head is in, the body is not
        time.sleep(0.3)
        shard.proc.send_signal(signal.SIGTERM)
        assert _refuses_connections(shard.port), "still accepting connections after SIGTERM"
        assert shard.proc.poll() is None, "exited before the request in flight finished"
        sock.sendall(body[10:])
        status, reply = _read_response(sock)
    assert status == 200, reply
    assert len(orjson.loads(reply)["events"]) == 20
    assert rdb.xlen("ese:events") == 20
    assert _wait_exit(shard) == 0, shard.output()
    assert "Traceback" not in shard.output()


def test_sigterm_waits_for_a_slow_redis_answer(
    ese_server_factory: Any, redis_server: RedisServer, rdb: redis.Redis
) -> None:
    shard = ese_server_factory()
    assert redis_server.proc is not None
    with httpx.Client(base_url=shard.url, timeout=15) as http:
        assert http.post("/event", json=click(event_id="warm")).status_code == 201
        body = orjson.dumps(click(event_id="slow"))
        head = (
            f"POST /event HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        redis_server.proc.send_signal(signal.SIGSTOP)  # the append waits on Redis
        try:
            with socket.create_connection(("127.0.0.1", shard.port), 5) as sock:
                sock.sendall(head + body)
                time.sleep(0.3)
                shard.proc.send_signal(signal.SIGTERM)
                assert _refuses_connections(shard.port)
                assert shard.proc.poll() is None
                redis_server.proc.send_signal(signal.SIGCONT)
                status, reply = _read_response(sock)
        finally:
            redis_server.proc.send_signal(signal.SIGCONT)
    assert status == 201, reply
    assert orjson.loads(reply)["id"] == "slow"
    assert rdb.xlen("ese:events") == 2
    assert _wait_exit(shard) == 0, shard.output()
