"""Event validation: every offending field is reported, and nothing is stored unless all pass.

The rules follow DESIGN's wire contract. `eventType` values other than the two known ones are
accepted (counted as "other"); the two known types must carry their sub-type fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

CLICK = "CLICK_STREAM_EVENT"
ORDER = "ORDER_STATE_UPDATE_EVENT"
EVENT_TYPES = (CLICK, ORDER)
CLICK_SUBTYPES = ("KEY_PRESS_EVENT", "BUTTON_CLICK_EVENT", "INPUT_PASSED_EVENT")
ORDER_STATES = ("ORDER_CREATED", "ORDER_ALLOCATED", "ORDER_STARTED", "ORDER_COMPLETED")
MAX_ID_CHARS = 128
MAX_STRING_CHARS = 256
MAX_TIMESTAMP = 2**53  # JavaScript's safe integer limit; the original clients are JS

FieldError = dict[str, str]


@dataclass(frozen=True, slots=True)
class CheckedEvent:
    """A valid event, ready for the append script."""

    event: dict[str, Any]  # as sent, minus any client-supplied server_ts
    payload: bytes  # its JSON, as stored in the stream
    id: str  # '' when the client gave none
    type_key: str  # CLICK_STREAM_EVENT, ORDER_STATE_UPDATE_EVENT or other
    subtype: str  # data.event / data.state for the known types, else ''
    ip: str
    order_id: str  # '' unless an order update


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short_string(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


def check_event(obj: Any, path: str, errors: list[FieldError]) -> CheckedEvent | None:
    """Validate one event; append one error per offending field (field path + message)."""
    if not isinstance(obj, dict):
        errors.append({"field": path or "body", "message": "must be a JSON object (an event)"})
        return None
    prefix = f"{path}." if path else ""
    before = len(errors)

    def bad(name: str, message: str) -> None:
        errors.append({"field": prefix + name if name else (path or "body"), "message": message})

    event_type: Any = obj.get("eventType")
    if "eventType" not in obj:
        bad("eventType", "is required")
    elif not _short_string(event_type, MAX_STRING_CHARS):
        bad("eventType", f"must be a non-empty string of at most {MAX_STRING_CHARS} characters")
    timestamp: Any = obj.get("timestamp")
    if "timestamp" not in obj:
        bad("timestamp", "is required")
    elif not (_is_int(timestamp) and 0 <= timestamp <= MAX_TIMESTAMP):
        bad("timestamp", "must be an integer (epoch milliseconds, >= 0)")
    ip: Any = obj.get("ip")
    if "ip" not in obj:
        bad("ip", "is required")
    elif not _short_string(ip, MAX_STRING_CHARS):
        bad("ip", f"must be a non-empty string of at most {MAX_STRING_CHARS} characters")
    event_id: Any = obj.get("id", "")
    if "id" in obj and not _short_string(event_id, MAX_ID_CHARS):
        bad("id", f"must be a non-empty string of at most {MAX_ID_CHARS} characters")
    data = obj.get("data")
    subtype: Any = ""
    order_id = ""
    if "data" not in obj:
        bad("data", "is required")
    elif not isinstance(data, dict):
        bad("data", "must be a JSON object")
    elif event_type == CLICK:
        subtype = data.get("event", "")
        if subtype not in CLICK_SUBTYPES:
            bad("data.event", f"must be one of {', '.join(CLICK_SUBTYPES)}")
    elif event_type == ORDER:
        subtype = data.get("state", "")
        if subtype not in ORDER_STATES:
            bad("data.state", f"must be one of {', '.join(ORDER_STATES)}")
        raw_order: Any = data.get("orderId")
        if _is_int(raw_order):
            order_id = str(raw_order)
        elif _short_string(raw_order, MAX_STRING_CHARS):
            order_id = raw_order
        else:
            bad("data.orderId", "must be a non-empty string or an integer")
        if "timestamp" in data and not _is_int(data["timestamp"]):
            bad("data.timestamp", "must be an integer (epoch milliseconds)")
    if len(errors) != before:
        return None
    if "server_ts" in obj:
        # The server sets server_ts; a client-sent one would be a second, conflicting copy.
        obj = {k: v for k, v in obj.items() if k != "server_ts"}
    try:
        payload = orjson.dumps(obj)
    except (TypeError, orjson.JSONEncodeError):
        bad("", "cannot be stored as JSON")
        return None
    type_key = event_type if event_type in EVENT_TYPES else "other"
    return CheckedEvent(obj, payload, event_id, type_key, subtype, ip, order_id)


def check_batch(obj: Any, max_batch: int) -> tuple[list[CheckedEvent], list[FieldError], bool]:
    """Validate a POST /events body; returns (events, errors, too_large)."""
    errors: list[FieldError] = []
    if not isinstance(obj, dict):
        return [], [{"field": "body", "message": 'must be a JSON object {"events": [...]}'}], False
    events = obj.get("events")
    if "events" not in obj:
        return [], [{"field": "events", "message": "is required"}], False
    if not isinstance(events, list):
        return [], [{"field": "events", "message": "must be an array of events"}], False
    if not events:
        return [], [{"field": "events", "message": "must contain at least one event"}], False
    if len(events) > max_batch:
        message = f"has {len(events)} events; at most {max_batch} are allowed per request"
        return [], [{"field": "events", "message": message}], True
    checked: list[CheckedEvent] = []
    for index, item in enumerate(events):
        result = check_event(item, f"events[{index}]", errors)
        if result is not None:
            checked.append(result)
    return checked, errors, False
