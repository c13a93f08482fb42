"""The OpenAPI 3.0 document served at GET /openapi.json (written by hand, kept next to the app).

It describes every route, so clients and the fuzz test (schemathesis) can be generated from it.
"""

from __future__ import annotations

from typing import Any

from ese_server.config import Settings
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


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def openapi_document(settings: Settings) -> dict[str, Any]:
    """The document, with this shard's limits filled in."""
    event_props: dict[str, Any] = {
        "eventType": {
            "type": "string",
            "minLength": 1,
            "maxLength": 256,
            "description": "CLICK_STREAM_EVENT or ORDER_STATE_UPDATE_EVENT; other values are "
            "accepted and counted as 'other'.",
            "example": "CLICK_STREAM_EVENT",
        },
        "timestamp": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_TIMESTAMP,
            "description": "Client time, epoch milliseconds.",
        },
        "ip": {
            "type": "string",
            "minLength": 1,
            "maxLength": 256,
            "description": "Client identity, '<IPv4>-<instance>' (not validated as an IP).",
        },
        "id": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_ID_CHARS,
            "description": "Optional client-chosen id: a retried event with the same id is "
            "stored once.",
        },
        "data": {"type": "object", "description": "Depends on eventType (see Event)."},
    }
    stored_props = dict(event_props)
    stored_props["server_ts"] = {"type": "integer", "description": "Server time, epoch ms."}
    schemas: dict[str, Any] = {
        "Event": {
            "type": "object",
            "required": ["eventType", "timestamp", "ip", "data"],
            "properties": event_props,
            "anyOf": [_ref("ClickStreamEvent"), _ref("OrderStateUpdateEvent"), _ref("OtherEvent")],
            "example": {
                "eventType": "CLICK_STREAM_EVENT",
                "timestamp": 1706000000123,
                "ip": "10.1.2.3-7",
                "data": {"event": "BUTTON_CLICK_EVENT"},
            },
        },
        "ClickStreamEvent": {
            "type": "object",
            "required": ["eventType", "data"],
            "properties": {
                "eventType": {"type": "string", "enum": [CLICK]},
                "data": {
                    "type": "object",
                    "required": ["event"],
                    "properties": {"event": {"type": "string", "enum": list(CLICK_SUBTYPES)}},
                },
            },
        },
        "OrderStateUpdateEvent": {
            "type": "object",
            "required": ["eventType", "data"],
            "properties": {
                "eventType": {"type": "string", "enum": [ORDER]},
                "data": {
                    "type": "object",
                    "required": ["orderId", "state"],
                    "properties": {
                        "orderId": {
                            "oneOf": [
                                {"type": "string", "minLength": 1, "maxLength": 256},
                                {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
                            ]
                        },
                        "state": {"type": "string", "enum": list(ORDER_STATES)},
                        "timestamp": {
                            "type": "integer",
                            "minimum": -(2**63),
                            "maximum": 2**63 - 1,
                        },
                    },
                },
            },
        },
        "OtherEvent": {
            "type": "object",
            "required": ["eventType"],
            "properties": {"eventType": {"not": {"enum": [CLICK, ORDER]}}},
        },
        "StoredEvent": {
            "type": "object",
            "required": ["eventType", "timestamp", "ip", "data", "server_ts"],
            "properties": stored_props,
        },
        "Batch": {
            "type": "object",
            "required": ["events"],
            "properties": {
                "events": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": settings.max_batch,
                    "items": _ref("Event"),
                }
            },
        },
        "StoredBatch": {
            "type": "object",
            "required": ["events"],
            "properties": {"events": {"type": "array", "items": _ref("StoredEvent")}},
        },
        "ClientLog": {
            "type": "object",
            "required": ["ip", "eventLogs"],
            "properties": {
                "ip": {"type": "string"},
                "eventLogs": {"type": "array", "items": _ref("StoredEvent")},
            },
        },
        "Page": {
            "type": "object",
            "required": ["events", "cursor"],
            "properties": {
                "events": {"type": "array", "items": _ref("StoredEvent")},
                "cursor": {"type": "string", "description": "Pass as `since` next time."},
            },
        },
        "Stats": {
            "type": "object",
            "required": [
                "total",
                "by_type",
                "by_subtype",
                "clients",
                "orders",
                "stream_length",
                "retention_seconds",
            ],
            "description": "total, by_type and by_subtype count every event ever stored "
            "(duplicates once). clients and orders cover only the clients and orders seen "
            f"within the retention window (at most {MAX_TRACKED_CLIENTS:,} clients and "
            f"{MAX_TRACKED_ORDERS:,} orders, least recently seen dropped first); the window "
            "is applied as events arrive.",
            "properties": {
                "total": {"type": "integer", "description": "Events stored, ever."},
                "by_type": {"type": "object", "additionalProperties": {"type": "integer"}},
                "by_subtype": {"type": "object", "additionalProperties": {"type": "integer"}},
                "clients": {
                    "type": "object",
                    "additionalProperties": {"type": "integer"},
                    "description": "Events per client ip, for clients seen within the "
                    "retention window (counted since the client became active).",
                },
                "orders": {
                    "type": "object",
                    "required": ["open", "completed"],
                    "description": "Orders seen within the retention window. An order is "
                    "open until an ORDER_COMPLETED arrives; completion is final (a state that "
                    "arrives late does not reopen it).",
                    "properties": {
                        "open": {"type": "integer"},
                        "completed": {"type": "integer"},
                    },
                },
                "stream_length": {"type": "integer"},
                "retention_seconds": {"type": "integer"},
            },
        },
        "Health": {
            "type": "object",
            "required": ["message", "role", "redis"],
            "properties": {
                "message": {"type": "string"},
                "role": {"type": "string", "enum": ["ingest", "analytics", "all"]},
                "redis": {"type": "string", "enum": ["up", "down"]},
            },
        },
        "Error": {
            "type": "object",
            "required": ["message", "errors"],
            "properties": {
                "message": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "field": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        },
    }
    # Security is declared only where this shard really requires a token, so the document
    # matches the running shard (and a fuzzer can check that unauthenticated calls get 401).
    ingest_security: list[dict[str, list[str]]] = (
        [{"ingestToken": []}] if settings.ingest_token else []
    )
    analytics_security: list[dict[str, list[str]]] = (
        [{"analyticsToken": []}] if settings.analytics_token else []
    )
    common = {
        "401": _error(
            "Token missing or wrong (when a token is configured): 'Authorization: Bearer "
            "<token>' (scheme in any case)."
        ),
        "403": _error("This shard's role does not serve the route."),
        "503": _error(
            "Redis unavailable. The message says whether nothing was stored (Redis could "
            "not be reached) or the outcome is unknown (Redis did not answer in time; the "
            "events may have been stored: retry with the same ids, which are stored once). "
            "On writes also 'event store full': Redis reached its maxmemory, nothing was "
            "stored, and a retry succeeds once older events leave the retention window."
        ),
    }
    ingest_errors = {
        "400": _error(
            "Malformed JSON or schema violation (every offending field is named), or a "
            "header sent twice (Authorization, Content-Type)."
        ),
        "413": _error("Body over ESE_MAX_BODY_BYTES, or batch over ESE_MAX_BATCH events."),
        "415": _error(
            "Content-Type is not JSON (application/json, any parameters; a request without "
            "Content-Type is read as JSON)."
        ),
        **common,
    }
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "summary": "Liveness; also reports whether Redis is reachable (never 5xx).",
                "operationId": "health",
                "responses": {"200": _json(_ref("Health"), "Running.")},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (text format).",
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document.",
                "operationId": "openapi",
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.0 document.")},
            }
        },
        "/event": {
            "post": {
                "summary": "Store one event (ingest role).",
                "operationId": "addEvent",
                "security": ingest_security,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("Event")}},
                },
                "responses": {
                    "201": _json(_ref("StoredEvent"), "Stored (or already stored: same id)."),
                    **ingest_errors,
                },
            }
        },
        "/events": {
            "post": {
                "summary": "Store a batch of events, all or nothing (ingest role).",
                "operationId": "addEvents",
                "security": ingest_security,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("Batch")}},
                },
                "responses": {
                    "200": _json(_ref("StoredBatch"), "All stored (ids seen before: once)."),
                    **ingest_errors,
                },
            },
            "get": {
                "summary": "Events of the retention window (analytics role). Without a query: "
                "grouped per client as in the original demo. With since/limit: one page.",
                "operationId": "getEvents",
                "security": analytics_security,
                "parameters": [
                    {
                        "name": "since",
                        "in": "query",
                        "required": False,
                        "description": "Cursor: 0 = oldest retained event, else a returned cursor.",
                        "schema": {"type": "string", "pattern": "^(0|[0-9]{1,20}(-[0-9]{1,20})?)$"},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "description": "Page size (default 1000).",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 10_000},
                    },
                ],
                "responses": {
                    "200": {
                        **_json(
                            {
                                "oneOf": [
                                    {"type": "array", "items": _ref("ClientLog")},
                                    _ref("Page"),
                                ]
                            },
                            "Events (array without query, page with since/limit). Without a "
                            f"query at most the NEWEST {LEGACY_READ_CAP:,} events of the "
                            "window are returned (oldest first); X-ESE-Truncated says whether "
                            "older ones were left out (page with since/limit to read them all).",
                        ),
                        "headers": {
                            "X-ESE-Truncated": {
                                "description": "Without a query: true when the window held "
                                "more events than X-ESE-Read-Cap and only the newest are "
                                "returned.",
                                "schema": {"type": "string", "enum": ["true", "false"]},
                            },
                            "X-ESE-Read-Cap": {
                                "description": "Most events a request without a query returns.",
                                "schema": {"type": "integer"},
                            },
                        },
                    },
                    "400": _error("Bad since/limit, or a query parameter given twice."),
                    **common,
                },
            },
        },
        "/stats": {
            "get": {
                "summary": "Totals by type and sub-type, per client, open/completed orders.",
                "operationId": "getStats",
                "security": analytics_security,
                "responses": {"200": _json(_ref("Stats"), "Aggregates."), **common},
            }
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "ese-server",
            "version": "1.0.0",
            "description": "Event API of one ese-server shard (role: "
            + settings.role
            + f"). Every route: a request whose URL and headers exceed {MAX_HEAD_BYTES} bytes "
            "is answered 431 (JSON error body) and the connection closed; HEAD is answered "
            "like GET without a body.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "ingestToken": {"type": "http", "scheme": "bearer"},
                "analyticsToken": {"type": "http", "scheme": "bearer"},
            },
        },
    }
