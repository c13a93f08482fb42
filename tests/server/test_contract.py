"""The wire contract with the original demo's clients and consumer (docs/contract.md)."""

from __future__ import annotations

import time

import httpx
import redis

from tests.conftest import ServerHandle
from tests.server.conftest import click, order

ORIGINAL_COUNTERS = (
    "health_ping_count",
    "add_event_ping_count",
    "add_events_ping_count",
    "get_events_ping_count",
)


def test_health_reports_port_role_and_redis(shard: ServerHandle, http: httpx.Client) -> None:
    resp = http.get("/")
    assert resp.status_code == 200
    assert resp.json() == {
        "message": f"Server running @:{shard.port}",
        "role": "all",
        "redis": "up",
    }


def test_post_event_returns_201_and_the_stored_event(http: httpx.Client) -> None:
    sent = click()
    before = int(time.time() * 1000)
    resp = http.post("/event", json=sent)
    assert resp.status_code == 201
    stored = resp.json()
    server_ts = stored.pop("server_ts")
    assert stored == sent
    assert before - 1000 <= server_ts <= int(time.time() * 1000) + 1000


def test_post_events_batch_returns_200_and_every_stored_event(
    http: httpx.Client, rdb: redis.Redis
) -> None:
    batch = [
        click(sub="KEY_PRESS_EVENT"),
        click(sub="INPUT_PASSED_EVENT"),
        order("o-1", "ORDER_CREATED"),
    ]
    resp = http.post("/events", json={"events": batch})
    assert resp.status_code == 200
    stored = resp.json()["events"]
    assert [{k: v for k, v in e.items() if k != "server_ts"} for e in stored] == batch
    assert all(isinstance(e["server_ts"], int) for e in stored)
    assert rdb.xlen("ese:events") == 3


def test_get_events_has_the_original_shape(http: httpx.Client) -> None:
    a1, a2, b1 = click(ip="10.0.0.1-1", ts=1), click(ip="10.0.0.1-1", ts=2), click(ip="10.0.0.2-1")
    for event in (a1, b1, a2):
        assert http.post("/event", json=event).status_code == 201
    resp = http.get("/events")
    assert resp.status_code == 200
    body = resp.json()
    assert [group["ip"] for group in body] == ["10.0.0.1-1", "10.0.0.2-1"]
    logs = {group["ip"]: group["eventLogs"] for group in body}
    strip = [{k: v for k, v in e.items() if k != "server_ts"} for e in logs["10.0.0.1-1"]]
    assert strip == [a1, a2]
    assert len(logs["10.0.0.2-1"]) == 1
    assert all("server_ts" in e for group in body for e in group["eventLogs"])


def test_empty_store_reads(http: httpx.Client) -> None:
    assert http.get("/events").json() == []
    assert http.get("/events", params={"since": "0"}).json() == {"events": [], "cursor": "0"}
    stats = http.get("/stats").json()
    assert stats["total"] == 0 and stats["stream_length"] == 0
    assert stats["by_type"] == {"CLICK_STREAM_EVENT": 0, "ORDER_STATE_UPDATE_EVENT": 0, "other": 0}


def test_client_sent_server_ts_is_replaced(http: httpx.Client) -> None:
    sent = {**click(), "server_ts": 5}
    stored = http.post("/event", json=sent).json()
    assert stored["server_ts"] != 5
    (group,) = http.get("/events").json()
    assert group["eventLogs"][0]["server_ts"] == stored["server_ts"]


def test_other_event_types_are_accepted_and_counted_as_other(http: httpx.Client) -> None:
    sent = {"eventType": "PAGE_VIEW", "timestamp": 1, "ip": "h-1", "data": {"any": ["thing"]}}
    assert http.post("/event", json=sent).status_code == 201
    assert http.get("/stats").json()["by_type"]["other"] == 1


def test_openapi_describes_every_route(http: httpx.Client) -> None:
    doc = http.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {"/", "/metrics", "/openapi.json", "/event", "/events", "/stats"}
    assert set(doc["paths"]["/events"]) == {"get", "post"}
    assert "Event" in doc["components"]["schemas"]


def test_metrics_use_the_fixed_names(http: httpx.Client) -> None:
    http.get("/")
    http.post("/event", json=click())
    http.post("/events", json={"events": [click()]})
    http.get("/events")
    http.post("/event", content=b"{nope")
    http.get("/nope/123")
    text = http.get("/metrics").text
    samples = {
        line.split(" ")[0]: line.split(" ")[1]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    for name in ORIGINAL_COUNTERS:
        assert f"# TYPE {name} counter" in text
        assert float(samples[name]) >= 1, name
    assert float(samples["add_event_ping_count"]) == 2
    assert (
        'ese_http_request_duration_seconds_count{method="POST",route="/event",status="201"}'
        in samples
    )
    assert (
        'ese_http_request_duration_seconds_count{method="GET",route="other",status="404"}'
        in samples
    )
    assert float(samples['ese_events_ingested_total{type="CLICK_STREAM_EVENT"}']) == 2
    assert float(samples['ese_requests_rejected_total{reason="malformed_json"}']) == 1
    assert float(samples['ese_requests_rejected_total{reason="not_found"}']) == 1
    assert samples["ese_redis_up"] == "1.0"
    assert float(samples["ese_stream_length"]) == 2
    assert "ese_redis_errors_total" in samples
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds"):
        assert name in samples
    assert "/nope/123" not in text  # raw paths never become label values


def test_cors_origin_is_echoed_only_when_allowed(ese_server_factory: object) -> None:
    shard = ese_server_factory(ESE_CORS_ORIGINS="http://localhost:8501")  # type: ignore[operator]
    with httpx.Client(base_url=shard.url) as http:
        ok = http.get("/", headers={"Origin": "http://localhost:8501"})
        assert ok.headers["access-control-allow-origin"] == "http://localhost:8501"
        other = http.get("/", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        pre = http.options(
            "/event",
            headers={"Origin": "http://localhost:8501", "Access-Control-Request-Method": "POST"},
        )
        assert pre.status_code == 204
        assert "POST" in pre.headers["access-control-allow-methods"]
