"""The request head (URL + headers) is capped: 431 with a JSON body, memory stays bounded."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import orjson
import psutil

from ese_server.http_protocol import MAX_HEAD_BYTES
from tests.conftest import ServerHandle
from tests.server.test_http_details import raw


def _status_and_body(reply: bytes) -> tuple[int, Any]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), orjson.loads(body)


def test_headers_over_the_cap_get_431_with_a_json_body(shard: ServerHandle) -> None:
    big = b"a" * (MAX_HEAD_BYTES + 100)
    status, body = _status_and_body(
        raw(shard.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + big + b"\r\n\r\n")
    )
    assert status == 431
    assert body["errors"] == [
        {"field": "headers", "message": f"must be at most {MAX_HEAD_BYTES} bytes"}
    ]
    status, _ = _status_and_body(raw(shard.port, b"GET /?q=" + big + b" HTTP/1.1\r\n\r\n"))
    assert status == 431  # the URL counts too
    many = b"".join(b"X-H%d: %s\r\n" % (n, b"v" * 100) for n in range(200))
    status, _ = _status_and_body(raw(shard.port, b"GET / HTTP/1.1\r\n" + many + b"\r\n"))
    assert status == 431  # and so do many small headers
    metrics = httpx.get(f"{shard.url}/metrics").text
    assert 'ese_requests_rejected_total{reason="headers_too_large"} 3.0' in metrics


def test_headers_under_the_cap_are_served(http: httpx.Client) -> None:
    resp = http.get("/", headers={"X-Big": "a" * (MAX_HEAD_BYTES // 2)})
    assert resp.status_code == 200


def test_an_endless_header_is_cut_off_early_and_costs_no_memory(shard: ServerHandle) -> None:
    rss_before = psutil.Process(shard.proc.pid).memory_info().rss
    chunk = b"a" * 65536
    sent = 0
    with socket.create_connection(("127.0.0.1", shard.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        try:
            while sent < 64 * 2**20:  # bounded: 64 MiB at most
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n\r\n")
            answer = sock.recv(65536)
        except OSError:  # the server closed the connection on us: what we want
            answer = b""
    assert sent < 8 * 2**20, f"server accepted {sent} bytes of one header: {answer[:100]!r}"
    grown = psutil.Process(shard.proc.pid).memory_info().rss - rss_before
    assert grown < 16 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB"
    assert httpx.get(f"{shard.url}/").status_code == 200  # and the shard is fine


def test_unparsable_requests_get_a_json_400(shard: ServerHandle) -> None:
    status, body = _status_and_body(raw(shard.port, b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert status == 400 and "invalid HTTP request" in body["message"]
    request = b"POST /event HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n{}"
    status, body = _status_and_body(raw(shard.port, request))
    assert status == 400 and body["errors"] == []
    metrics = httpx.get(f"{shard.url}/metrics").text
    assert 'ese_requests_rejected_total{reason="bad_http"} 2.0' in metrics
