"""`invoke backend --no-auth`: the original demo's clients, which send no token, are served.

It restarts the shards without tokens, then puts the tokens back, so the stack is handed on
as it was found (and `hands_back_quiet` waits until no alert fires), in whatever order the
modules run.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.e2e import harness, outside

# What the original React simulator sends with axios: a JSON body, axios' default headers,
# no Authorization and no event id.
AXIOS_HEADERS = {
    "Accept": "application/json, text/plain, */*",
    "Content-Type": "application/json;charset=utf-8",
}

pytestmark = pytest.mark.usefixtures("hands_back_quiet")


def original_event(marker: str) -> dict[str, object]:
    return {
        "eventType": "ORDER_STATE_UPDATE_EVENT",
        "timestamp": int(time.time() * 1000),
        "ip": f"10.9.8.7-{marker}",
        "data": {"orderId": marker, "state": "ORDER_CREATED", "timestamp": int(time.time())},
    }


def test_no_auth_serves_the_original_clients_and_tokens_come_back(stack: harness.Stack) -> None:
    marker = uuid.uuid4().hex[:12]
    body = json.dumps(original_event(marker)).encode()
    status, _ = outside.request("POST", f"{outside.LB}/event", body, AXIOS_HEADERS)
    assert status == 401  # tokens are the default

    assert "AUTH OFF" in harness.invoke("backend", "--no-auth", timeout=600).stdout
    assert "AUTH OFF" in harness.invoke("status", timeout=120).stdout
    try:
        status, answer = outside.request("POST", f"{outside.LB}/event", body, AXIOS_HEADERS)
        assert status == 201, answer[:300]
        # The original consumer: a plain GET /events, no token, grouped by client.
        groups = outside.get_json(f"{outside.ANALYTICS}/events")
        mine = [g for g in groups if g["ip"] == f"10.9.8.7-{marker}"]
        assert [e["data"]["orderId"] for g in mine for e in g["eventLogs"]] == [marker]
    finally:
        harness.invoke("backend", timeout=600)
    status, _ = outside.request("POST", f"{outside.LB}/event", body, AXIOS_HEADERS)
    assert status == 401  # a run without --no-auth puts the tokens back
    assert "AUTH OFF" not in harness.invoke("status", timeout=120).stdout
