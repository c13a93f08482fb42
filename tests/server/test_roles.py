"""Role enforcement (403) and tokens (401)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.server.conftest import click

INGEST: tuple[tuple[str, str, Any], ...] = (
    ("POST", "/event", click()),
    ("POST", "/events", {"events": [click()]}),
)
ANALYTICS: tuple[tuple[str, str, Any], ...] = (("GET", "/events", None), ("GET", "/stats", None))
COMMON = ("/", "/metrics", "/openapi.json")


def call(http: httpx.Client, method: str, path: str, body: Any, **headers: str) -> httpx.Response:
    return http.request(method, path, json=body, headers=headers)


def test_ingest_shard_refuses_analytics_routes(ese_server_factory: Any) -> None:
    shard = ese_server_factory(role="ingest")
    with httpx.Client(base_url=shard.url) as http:
        for method, path, body in ANALYTICS:
            resp = call(http, method, path, body)
            assert resp.status_code == 403, path
            assert "ingest" in resp.json()["message"]
        assert call(http, *INGEST[0]).status_code == 201
        assert call(http, *INGEST[1]).status_code == 200
        for path in COMMON:
            assert http.get(path).status_code == 200


def test_analytics_shard_refuses_ingest_routes(ese_server_factory: Any, rdb: Any) -> None:
    shard = ese_server_factory(role="analytics")
    with httpx.Client(base_url=shard.url) as http:
        for method, path, body in INGEST:
            resp = call(http, method, path, body)
            assert resp.status_code == 403, path
            assert set(resp.json()) == {"message", "errors"}
        assert rdb.xlen("ese:events") == 0
        for method, path, body in ANALYTICS:
            assert call(http, method, path, body).status_code == 200
        for path in COMMON:
            assert http.get(path).status_code == 200
        assert http.get("/").json()["role"] == "analytics"


def test_tokens_are_required_per_role(ese_server_factory: Any, rdb: Any) -> None:
    shard = ese_server_factory(
        role="all", ESE_INGEST_TOKEN="in-secret", ESE_ANALYTICS_TOKEN="an-secret"
    )
    with httpx.Client(base_url=shard.url) as http:
        for method, path, body in INGEST:
            assert call(http, method, path, body).status_code == 401
            assert call(http, method, path, body, Authorization="Bearer wrong").status_code == 401
            assert (
                call(http, method, path, body, Authorization="Bearer an-secret").status_code == 401
            )
            assert call(http, method, path, body, Authorization="in-secret").status_code == 401
        assert rdb.xlen("ese:events") == 0
        for method, path, body in ANALYTICS:
            assert call(http, method, path, body).status_code == 401
            assert (
                call(http, method, path, body, Authorization="Bearer in-secret").status_code == 401
            )
            assert (
                call(http, method, path, body, Authorization="Bearer an-secret").status_code == 200
            )
        ok = call(http, *INGEST[0], Authorization="Bearer in-secret")
        assert ok.status_code == 201
        for path in COMMON:  # liveness, metrics and the API document stay open
            assert http.get(path).status_code == 200
        metrics = http.get("/metrics").text
        assert 'ese_requests_rejected_total{reason="unauthorized"}' in metrics


def test_wrong_role_wins_over_token(ese_server_factory: Any) -> None:
    shard = ese_server_factory(role="ingest", ESE_ANALYTICS_TOKEN="an-secret")
    with httpx.Client(base_url=shard.url) as http:
        resp = http.get("/stats", headers={"Authorization": "Bearer an-secret"})
        assert resp.status_code == 403
