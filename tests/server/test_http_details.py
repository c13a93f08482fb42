"""HTTP details: HEAD, OPTIONS, media types, duplicate fields, the Bearer scheme, error fields."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import orjson
import pytest
import redis

from tests.server.conftest import click


def raw(port: int, request: bytes) -> bytes:
    """Send one raw request, return the whole answer (the server closes or answers once)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        length = [
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ]
        while length and len(body) < length[0]:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return head + b"\r\n\r\n" + body


@pytest.mark.parametrize("path", ["/", "/stats", "/openapi.json", "/metrics"])
def test_head_answers_like_get_without_a_body(http: httpx.Client, path: str) -> None:
    get = http.get(path)
    head = http.head(path)
    assert head.status_code == 200, head.text
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    if path != "/metrics":  # the metrics body changes between two scrapes
        assert head.headers["content-length"] == get.headers["content-length"]


def test_allow_lists_head_and_options(http: httpx.Client) -> None:
    resp = http.delete("/events")
    assert resp.status_code == 405
    assert resp.headers["allow"] == "POST, GET, HEAD, OPTIONS"


def test_options_204_has_no_content_headers(shard: Any) -> None:
    reply = raw(shard.port, b"OPTIONS /event HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head = reply.split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 204")
    assert b"content-length" not in head and b"content-type" not in head
    assert b"transfer-encoding" not in head


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_post_with_a_non_json_content_type_is_415(
    http: httpx.Client, rdb: redis.Redis, content_type: str
) -> None:
    body = orjson.dumps(click())
    resp = http.post("/event", content=body, headers={"Content-Type": content_type})
    assert resp.status_code == 415
    assert resp.json()["errors"] == [
        {"field": "Content-Type", "message": "must be application/json"}
    ]
    assert rdb.xlen("ese:events") == 0
    assert (
        'ese_requests_rejected_total{reason="unsupported_media_type"} 1.0'
        in http.get("/metrics").text
    )


@pytest.mark.parametrize(
    "content_type", ["application/json", "Application/JSON; charset=utf-8", None]
)
def test_json_content_types_and_a_missing_one_are_accepted(
    http: httpx.Client, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    resp = http.post("/event", content=orjson.dumps(click()), headers=headers)
    assert resp.status_code == 201, resp.text


def test_duplicate_query_parameters_are_400(http: httpx.Client) -> None:
    resp = http.get("/events?since=0&since=5&limit=10")
    assert resp.status_code == 400
    assert resp.json()["errors"] == [{"field": "since", "message": "must be given once"}]


def test_duplicate_authorization_is_400_and_the_bearer_scheme_is_case_insensitive(
    ese_server_factory: Any,
) -> None:
    shard = ese_server_factory(ESE_INGEST_TOKEN="tok")
    body = orjson.dumps(click())
    request = (
        b"POST /event HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer tok\r\nAuthorization: Bearer other\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    reply = raw(shard.port, request)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    errors = orjson.loads(reply.split(b"\r\n\r\n", 1)[1])["errors"]
    assert errors == [{"field": "Authorization", "message": "must be sent once"}]
    with httpx.Client(base_url=shard.url) as http:
        for scheme in ("bearer", "BEARER", "Bearer"):
            resp = http.post("/event", json=click(), headers={"Authorization": f"{scheme} tok"})
            assert resp.status_code == 201, (scheme, resp.text)
        resp = http.post("/event", json=click(), headers={"Authorization": "Basic tok"})
        assert resp.status_code == 401


def test_401_and_413_name_the_field(ese_server_factory: Any) -> None:
    shard = ese_server_factory(ESE_INGEST_TOKEN="tok", ESE_MAX_BODY_BYTES="1024")
    with httpx.Client(base_url=shard.url) as http:
        resp = http.post("/event", json=click())
        assert resp.status_code == 401
        assert [e["field"] for e in resp.json()["errors"]] == ["Authorization"]
        resp = http.post(
            "/event",
            content=b"{" + b" " * 2000 + b"}",
            headers={"Authorization": "Bearer tok", "Content-Type": "application/json"},
        )
        assert resp.status_code == 413
        assert [e["field"] for e in resp.json()["errors"]] == ["body"]
