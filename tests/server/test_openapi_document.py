"""The OpenAPI document: a data file whose placeholders the shard's settings and limits fill."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ese_server import openapi
from ese_server.config import Settings
from ese_server.store import LEGACY_READ_CAP
from ese_server.validation import CLICK_SUBTYPES, MAX_TIMESTAMP, ORDER_STATES


def test_every_placeholder_is_filled() -> None:
    assert b"{{" in openapi.TEMPLATE.read_bytes()
    text = orjson.dumps(openapi.openapi_document(Settings()))
    assert b"{{" not in text


def test_settings_and_limits_are_filled_in() -> None:
    doc = openapi.openapi_document(Settings(role="ingest", max_batch=7, ingest_token="t"))
    schemas = doc["components"]["schemas"]
    assert schemas["Batch"]["properties"]["events"]["maxItems"] == 7
    assert "(role: ingest)" in doc["info"]["description"]
    assert doc["paths"]["/event"]["post"]["security"] == [{"ingestToken": []}]
    assert doc["paths"]["/stats"]["get"]["security"] == []
    assert schemas["Event"]["properties"]["timestamp"]["maximum"] == MAX_TIMESTAMP
    click = schemas["ClickStreamEvent"]["properties"]["data"]["properties"]["event"]
    assert click["enum"] == list(CLICK_SUBTYPES)
    state = schemas["OrderStateUpdateEvent"]["properties"]["data"]["properties"]["state"]
    assert state["enum"] == list(ORDER_STATES)
    described = doc["paths"]["/events"]["get"]["responses"]["200"]["description"]
    assert f"{LEGACY_READ_CAP:,}" in described


def test_an_unknown_placeholder_fails_at_load() -> None:
    template: Any = {"a": ["{{nope}}"]}
    with pytest.raises(KeyError):
        openapi._fill(template, {})
    assert openapi._fill({"n": "{{n}}", "t": "up to {{n:,}} x"}, {"n": 12345}) == {
        "n": 12345,
        "t": "up to 12,345 x",
    }
