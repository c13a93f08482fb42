"""The OpenAPI 3.0 document served at GET /openapi.json, kept as data in `openapi.json`.

It describes every route, so clients and the fuzz test (schemathesis) can be generated from it.
The file holds placeholders for what this shard's settings and the code's limits decide, filled
in once at start: a string that is exactly `{{name}}` becomes the value itself (a number, a
list, ...), and `{{name}}` or `{{name:spec}}` inside a longer string becomes the value formatted
with that spec (e.g. `{{legacy_read_cap:,}}` gives 50,000). WHY placeholders instead of copies
of the numbers: the document cannot drift from the limits the code enforces.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import orjson

from ese_server.config import ROLES, Settings
from ese_server.http_protocol import MAX_HEAD_BYTES
from ese_server.store import LEGACY_READ_CAP, MAX_TRACKED_CLIENTS, MAX_TRACKED_ORDERS
from ese_server.validation import (
    CLICK,
    CLICK_SUBTYPES,
    MAX_ID_CHARS,
    MAX_TIMESTAMP,
    ORDER,
    ORDER_STATES,
)

TEMPLATE = Path(__file__).with_name("openapi.json")
_PLACEHOLDER = re.compile(r"\{\{(\w+)(?::([^}]*))?\}\}")


@functools.cache
def _template() -> Any:
    return orjson.loads(TEMPLATE.read_bytes())


def _fill(node: Any, values: dict[str, Any]) -> Any:
    """`node` with every placeholder replaced; an unknown name raises KeyError."""
    if isinstance(node, dict):
        return {key: _fill(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill(value, values) for value in node]
    if isinstance(node, str):
        whole = _PLACEHOLDER.fullmatch(node)
        if whole is not None and whole.group(2) is None:
            return values[whole.group(1)]
        return _PLACEHOLDER.sub(lambda m: format(values[m.group(1)], m.group(2) or ""), node)
    return node


def openapi_document(settings: Settings) -> dict[str, Any]:
    """The document, with this shard's settings and limits filled in."""
    # Security is declared only where this shard really requires a token, so the document
    # matches the running shard (and a fuzzer can check that unauthenticated calls get 401).
    values: dict[str, Any] = {
        "role": settings.role,
        "roles": list(ROLES),
        "max_batch": settings.max_batch,
        "ingest_security": [{"ingestToken": []}] if settings.ingest_token else [],
        "analytics_security": [{"analyticsToken": []}] if settings.analytics_token else [],
        "max_head_bytes": MAX_HEAD_BYTES,
        "legacy_read_cap": LEGACY_READ_CAP,
        "max_tracked_clients": MAX_TRACKED_CLIENTS,
        "max_tracked_orders": MAX_TRACKED_ORDERS,
        "max_timestamp": MAX_TIMESTAMP,
        "max_id_chars": MAX_ID_CHARS,
        "click": CLICK,
        "order": ORDER,
        "click_subtypes": list(CLICK_SUBTYPES),
        "order_states": list(ORDER_STATES),
    }
    document: dict[str, Any] = _fill(_template(), values)
    return document
