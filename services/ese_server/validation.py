"""Event validation: every offending field is reported, and nothing is stored unless all pass.

The rules follow the wire contract (docs/contract.md). `eventType` values other than the two
known ones are accepted (counted as "other"); the two known types must carry their sub-type
fields.
"""

from __future__ import annotations

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


class CheckedEvent:
    """A valid event, ready for the append script.

    A plain slotted class: it is built once per event on the hot path, and a frozen dataclass
    costs several times more to construct.
    """

    __slots__ = ("event", "id", "ip", "order_id", "payload", "subtype", "type_key")

    def __init__(
        self,
        event: dict[str, Any],
        payload: bytes,
        event_id: str,
        type_key: str,
        subtype: str,
        ip: str,
        order_id: str,
    ) -> None:
        self.event = event  # as sent, minus any client-supplied server_ts
        self.payload = payload  # its JSON, as stored in the stream
        self.id = event_id  # '' when the client gave none
        self.type_key = type_key  # CLICK_STREAM_EVENT, ORDER_STATE_UPDATE_EVENT or other
        self.subtype = subtype  # data.event / data.state for the known types, else ''
        self.ip = ip
        self.order_id = order_id  # '' unless an order update


def _field(path: str, name: str) -> str:
    if not name:
        return path or "body"
    return f"{path}.{name}" if path else name


def _is_int(value: Any) -> bool:
    return type(value) is int


def _short_string(value: Any, limit: int) -> bool:
    return type(value) is str and 0 < len(value) <= limit


def check_event(obj: Any, path: str, errors: list[FieldError]) -> CheckedEvent | None:
    """Validate one event; append one error per offending field (field path + message).

    `path` locates the event in the request (e.g. "events[3]"); field names are only built
    when something is wrong, so a valid event costs no string formatting.
    """
    if type(obj) is not dict:
        errors.append({"field": path or "body", "message": "must be a JSON object (an event)"})
        return None
    found: list[tuple[str, str]] = []
    event_type: Any = obj.get("eventType")
    if type(event_type) is not str or not 0 < len(event_type) <= MAX_STRING_CHARS:
        found.append(
            ("eventType", "is required")
            if event_type is None and "eventType" not in obj
            else ("eventType", f"must be a non-empty string of at most {MAX_STRING_CHARS} chars")
        )
    timestamp: Any = obj.get("timestamp")
    if type(timestamp) is not int or not 0 <= timestamp <= MAX_TIMESTAMP:
        found.append(
            ("timestamp", "is required")
            if "timestamp" not in obj
            else ("timestamp", "must be an integer (epoch milliseconds, >= 0)")
        )
    ip: Any = obj.get("ip")
    if type(ip) is not str or not 0 < len(ip) <= MAX_STRING_CHARS:
        found.append(
            ("ip", "is required")
            if "ip" not in obj
            else ("ip", f"must be a non-empty string of at most {MAX_STRING_CHARS} characters")
        )
    event_id: Any = obj.get("id", "")
    bad_id = type(event_id) is not str or not 0 < len(event_id) <= MAX_ID_CHARS
    if (event_id != "" or "id" in obj) and bad_id:
        found.append(("id", f"must be a non-empty string of at most {MAX_ID_CHARS} characters"))
    data: Any = obj.get("data")
    subtype: Any = ""
    order_id = ""
    if type(data) is not dict:
        found.append(
            ("data", "is required") if "data" not in obj else ("data", "must be a JSON object")
        )
    elif event_type == CLICK:
        subtype = data.get("event", "")
        if subtype not in CLICK_SUBTYPES:
            found.append(("data.event", f"must be one of {', '.join(CLICK_SUBTYPES)}"))
    elif event_type == ORDER:
        subtype = data.get("state", "")
        if subtype not in ORDER_STATES:
            found.append(("data.state", f"must be one of {', '.join(ORDER_STATES)}"))
        raw_order: Any = data.get("orderId")
        if _is_int(raw_order):
            order_id = str(raw_order)
        elif _short_string(raw_order, MAX_STRING_CHARS):
            order_id = raw_order
        else:
            found.append(("data.orderId", "must be a non-empty string or an integer"))
        if "timestamp" in data and not _is_int(data["timestamp"]):
            found.append(("data.timestamp", "must be an integer (epoch milliseconds)"))
    if found:
        errors.extend({"field": _field(path, name), "message": msg} for name, msg in found)
        return None
    if "server_ts" in obj:
        # The server sets server_ts; a client-sent one would be a second, conflicting copy.
        obj = {k: v for k, v in obj.items() if k != "server_ts"}
    try:
        payload = orjson.dumps(obj)
    except (TypeError, orjson.JSONEncodeError):
        errors.append({"field": path or "body", "message": "cannot be stored as JSON"})
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
