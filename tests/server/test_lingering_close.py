"""A refused request whose body is still arriving gets its answer: the shard closes lingeringly.

The client here sends its whole body first and reads afterwards, as simple clients do. Were the
shard to close as soon as it answered, the body bytes still arriving would meet a closed socket,
the kernel would answer them with a reset, and the reset would throw away the 413 on its way.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import orjson
import pytest

from ese_server.lingering import LINGER_BYTES, LINGER_SECONDS
from tests.conftest import REPO_ROOT, ServerHandle

MAX_BODY = 1024 * 1024  # the shard's default ESE_MAX_BODY_BYTES
OVERSIZED = 3 * 1024 * 1024
CHUNK = 64 * 1024


def _head(length: int, connection: str) -> bytes:
    return (
        f"POST /event HTTP/1.1\r\nHost: shard\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\nConnection: {connection}\r\n\r\n"
    ).encode()


def _chunked(body: bytes) -> bytes:
    """`body` in the chunked transfer coding, 64 KiB a chunk."""
    out = [
        b"%x\r\n%s\r\n" % (len(body[i : i + CHUNK]), body[i : i + CHUNK])
        for i in range(0, len(body), CHUNK)
    ]
    return b"".join([*out, b"0\r\n\r\n"])


def _post_in_full(port: int, request: bytes) -> bytes:
    """Send the whole request, then read the whole answer (as simple clients do)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return _read_to_eof(sock)


def _read_to_eof(sock: socket.socket) -> bytes:
    """Everything the shard sends until it stops writing (bounded by the socket timeout)."""
    reply = b""
    while len(reply) < 1024 * 1024:
        chunk = sock.recv(65536)
        if not chunk:
            break
        reply += chunk
    return reply


def _read_answer(sock: socket.socket) -> bytes:
    """One answer (head and Content-Length body), without waiting for the end of the stream."""
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = sock.recv(65536)
        assert chunk, f"the shard closed before it answered: {reply!r}"
        reply += chunk
    head = reply.partition(b"\r\n\r\n")[0].lower()
    length = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
    while len(reply) < len(head) + 4 + length:
        chunk = sock.recv(65536)
        assert chunk, f"the shard closed in the middle of its answer: {reply!r}"
        reply += chunk
    return reply


def _status_and_body(reply: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), orjson.loads(body)


@pytest.mark.parametrize("connection", ["keep-alive", "close"])
def test_an_oversized_body_sent_in_full_then_read_gets_the_413_every_time(
    shard: ServerHandle, connection: str
) -> None:
    body = b"x" * OVERSIZED
    for attempt in range(20):
        try:
            reply = _post_in_full(shard.port, _head(len(body), connection) + body)
        except OSError as exc:
            pytest.fail(f"attempt {attempt + 1}: {exc!r} instead of the 413")
        status, doc = _status_and_body(reply)
        assert status == 413, reply[:200]
        assert doc["errors"] == [{"field": "body", "message": f"must be at most {MAX_BODY} bytes"}]
        assert b"\r\nconnection: close\r\n" in reply.lower()


def test_a_chunked_body_refused_while_read_gets_the_413_every_time(shard: ServerHandle) -> None:
    # No Content-Length: the shard reads until the body passes the limit, then refuses it.
    head = b"POST /events HTTP/1.1\r\nHost: shard\r\nTransfer-Encoding: chunked\r\n\r\n"
    request = head + _chunked(b"x" * OVERSIZED)
    for attempt in range(20):
        try:
            reply = _post_in_full(shard.port, request)
        except OSError as exc:
            pytest.fail(f"attempt {attempt + 1}: {exc!r} instead of the 413")
        assert _status_and_body(reply)[0] == 413, reply[:200]


def test_a_body_refused_before_it_is_read_gets_the_401_every_time(ese_server_factory: Any) -> None:
    shard = ese_server_factory(ESE_INGEST_TOKEN="tok")
    body = b"x" * OVERSIZED  # refused for its missing token before its size is looked at
    for attempt in range(20):
        try:
            reply = _post_in_full(shard.port, _head(len(body), "keep-alive") + body)
        except OSError as exc:
            pytest.fail(f"attempt {attempt + 1}: {exc!r} instead of the 401")
        assert _status_and_body(reply)[0] == 401, reply[:200]


def _send_until_closed(sock: socket.socket, pause: float, most: int, seconds: float) -> int:
    """Send body bytes (pausing `pause` s between chunks) until the shard has closed the
    connection; fail after `most` bytes or `seconds`. Returns how many bytes were sent."""
    chunk = b"x" * (1024 if pause else CHUNK)
    sent = 0
    deadline = time.monotonic() + seconds
    try:
        while sent < most and time.monotonic() < deadline:
            sock.sendall(chunk)
            sent += len(chunk)
            if pause:
                time.sleep(pause)
    except OSError:  # reset or broken pipe: the shard closed, as it should
        return sent
    pytest.fail(f"the shard still took body bytes after {sent} bytes")


def test_a_client_that_sends_forever_is_cut_off_after_the_byte_bound(shard: ServerHandle) -> None:
    with socket.create_connection(("127.0.0.1", shard.port), timeout=10) as sock:
        sock.sendall(_head(2**40, "keep-alive") + b"x" * CHUNK)
        assert _status_and_body(_read_answer(sock))[0] == 413
        _send_until_closed(sock, 0.0, 32 * LINGER_BYTES, 60)
    # the shard is fine and serves the next client
    with socket.create_connection(("127.0.0.1", shard.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: shard\r\nConnection: close\r\n\r\n")
        assert _status_and_body(_read_to_eof(sock))[0] == 200


def test_a_client_that_trickles_forever_is_cut_off_after_the_time_bound(
    shard: ServerHandle,
) -> None:
    with socket.create_connection(("127.0.0.1", shard.port), timeout=10) as sock:
        sock.sendall(_head(2**40, "keep-alive") + b"x" * 1024)
        assert _status_and_body(_read_answer(sock))[0] == 413
        # ~20 KiB/s, far below the byte bound: only the time bound can end it
        _send_until_closed(sock, 0.05, LINGER_BYTES, 6 * LINGER_SECONDS)


def test_the_contract_states_the_bounds_the_shard_uses() -> None:
    text = (REPO_ROOT / "docs" / "contract.md").read_text("utf-8")
    bounds = f"for up to {LINGER_SECONDS:g} seconds and {LINGER_BYTES // 2**20} MiB"
    assert bounds in " ".join(text.split())
