"""Ingest: idempotency, all-or-nothing batches, same-millisecond events, bad input."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import redis

from tests.server.conftest import click, order, stream_entries


def stored_count(rdb: redis.Redis) -> int:
    return int(rdb.xlen("ese:events"))


def test_retried_event_with_id_is_stored_once(http: httpx.Client, rdb: redis.Redis) -> None:
    event = click(event_id="evt-1")
    first = http.post("/event", json=event)
    again = http.post("/event", json=event)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()  # same server_ts: the original is reported
    batch = http.post("/events", json={"events": [event, click(event_id="evt-2")]})
    assert batch.status_code == 200
    assert stored_count(rdb) == 2
    stats = http.get("/stats").json()
    assert stats["total"] == 2 and stats["by_subtype"]["BUTTON_CLICK_EVENT"] == 2
    metrics = http.get("/metrics").text
    assert 'ese_events_ingested_total{type="CLICK_STREAM_EVENT"} 2.0' in metrics


def test_repeated_id_inside_one_batch_is_stored_once(http: httpx.Client, rdb: redis.Redis) -> None:
    event = click(event_id="dup")
    resp = http.post("/events", json={"events": [event, event, click(event_id="other")]})
    assert resp.status_code == 200
    first, second, _ = resp.json()["events"]
    assert first == second
    assert stored_count(rdb) == 2


def test_events_without_id_are_all_stored(http: httpx.Client, rdb: redis.Redis) -> None:
    event = click()
    for _ in range(3):
        assert http.post("/event", json=event).status_code == 201
    assert stored_count(rdb) == 3


def test_batch_with_one_bad_event_stores_nothing(http: httpx.Client, rdb: redis.Redis) -> None:
    bad = click()
    bad["timestamp"] = "yesterday"
    del bad["ip"]
    batch = [click(event_id="a"), order("o-1", "ORDER_CREATED"), bad, click()]
    resp = http.post("/events", json={"events": batch})
    assert resp.status_code == 400
    body = resp.json()
    assert {e["field"] for e in body["errors"]} == {"events[2].timestamp", "events[2].ip"}
    assert "nothing was stored" in body["message"]
    assert stored_count(rdb) == 0
    assert http.get("/stats").json()["total"] == 0
    assert rdb.keys("ese:ids:*") == []  # the id of the valid event was not claimed either
    # the same batch, fixed, is then accepted in full
    batch[2] = click()
    assert http.post("/events", json={"events": batch}).status_code == 200
    assert stored_count(rdb) == 4


def test_same_millisecond_events_are_all_kept(http: httpx.Client, rdb: redis.Redis) -> None:
    twins = [click(ip="10.9.9.9-1", ts=1706000000123) for _ in range(5)]
    resp = http.post("/events", json={"events": twins})
    assert resp.status_code == 200
    server_ts = {e["server_ts"] for e in resp.json()["events"]}
    assert len(server_ts) <= 2  # one batch is appended within (nearly) one millisecond
    assert http.post("/event", json=twins[0]).status_code == 201
    ids = [entry_id for entry_id, _ in stream_entries(rdb)]
    assert len(ids) == len(set(ids)) == 6
    (group,) = http.get("/events").json()
    assert len(group["eventLogs"]) == 6
    assert http.get("/stats").json()["clients"] == {"10.9.9.9-1": 6}


def expect_400(resp: httpx.Response, reason_fields: set[str]) -> None:
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert set(body) == {"message", "errors"}
    assert {e["field"] for e in body["errors"]} == reason_fields


def test_bad_input_is_a_clear_4xx_and_stores_nothing(
    ese_server_factory: Any, rdb: redis.Redis
) -> None:
    shard = ese_server_factory(ESE_MAX_BATCH="3", ESE_MAX_BODY_BYTES="2000")
    with httpx.Client(base_url=shard.url) as http:
        expect_400(http.post("/event", content=b'{"eventType": '), {"body"})
        expect_400(http.post("/event", content=b""), {"body"})
        expect_400(http.post("/event", content=b"NaN"), {"body"})
        expect_400(http.post("/event", json=[click()]), {"body"})
        expect_400(http.post("/event", json={}), {"eventType", "timestamp", "ip", "data"})
        wrong = {"eventType": 7, "timestamp": 1.5, "ip": "", "data": [], "id": ""}
        expect_400(http.post("/event", json=wrong), {"eventType", "timestamp", "ip", "data", "id"})
        expect_400(http.post("/event", json={**click(), "timestamp": True}), {"timestamp"})
        expect_400(http.post("/event", json={**click(), "timestamp": -1}), {"timestamp"})
        expect_400(http.post("/event", json=click(sub="DOUBLE_CLICK")), {"data.event"})
        bad_order = order("o", "ORDER_LOST")
        bad_order["data"]["orderId"] = None
        expect_400(http.post("/event", json=bad_order), {"data.state", "data.orderId"})
        expect_400(http.post("/event", json={**click(), "id": "x" * 129}), {"id"})
        expect_400(http.post("/events", json={"events": []}), {"events"})
        expect_400(http.post("/events", json={"events": {}}), {"events"})
        expect_400(http.post("/events", json={"evts": [click()]}), {"events"})
        expect_400(http.post("/events", json={"events": [click(), 3]}), {"events[1]"})
        too_many = http.post("/events", json={"events": [click()] * 4})
        assert too_many.status_code == 413
        assert "at most 3" in too_many.json()["errors"][0]["message"]
        big = http.post(
            "/event", json={**click(), "data": {"event": "KEY_PRESS_EVENT", "pad": "x" * 3000}}
        )
        assert big.status_code == 413
        assert "2000" in big.json()["message"]
        # a body streamed without Content-Length is limited too
        chunks = (b'{"pad": "' + b"x" * 1000 for _ in range(3))
        assert http.post("/event", content=chunks).status_code == 413
        unknown = http.get("/no/such/route")
        assert unknown.status_code == 404
        assert set(unknown.json()) == {"message", "errors"}
        wrong_method = http.delete("/events")
        assert wrong_method.status_code == 405
        assert "GET" in wrong_method.headers["allow"]
        assert http.put("/event", json=click()).status_code == 405
        assert stored_count(rdb) == 0
        metrics = http.get("/metrics").text
        for reason in (
            "malformed_json",
            "schema",
            "batch_too_large",
            "body_too_large",
            "not_found",
            "method_not_allowed",
        ):
            assert f'ese_requests_rejected_total{{reason="{reason}"}}' in metrics, reason
        # ... and the shard still serves
        assert http.post("/event", json=click()).status_code == 201


def test_stored_payload_is_the_event_as_sent(http: httpx.Client, rdb: redis.Redis) -> None:
    sent = {**click(), "extra": {"nested": [1, 2, 3]}}
    http.post("/event", json=sent)
    ((_, fields),) = stream_entries(rdb)
    assert orjson.loads(fields[b"e"]) == sent
    assert fields[b"ip"] == sent["ip"].encode()
