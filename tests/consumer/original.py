"""The original demo's `GET /events` data shape, as test data."""

from __future__ import annotations

from typing import Any

BASE_MS = 1_706_000_000_000


def original_events() -> list[dict[str, Any]]:
    """A small data set in the original server's shape: 2 clients, clicks and 2 orders."""
    a, b = "10.0.0.5-1", "10.0.0.6-1"
    return [
        {
            "ip": a,
            "eventLogs": [
                {
                    "eventType": "CLICK_STREAM_EVENT",
                    "timestamp": BASE_MS,
                    "ip": a,
                    "data": {"event": "BUTTON_CLICK_EVENT"},
                },
                {
                    "eventType": "CLICK_STREAM_EVENT",
                    "timestamp": BASE_MS + 1500,
                    "ip": a,
                    "data": {"event": "KEY_PRESS_EVENT"},
                },
                {
                    "eventType": "ORDER_STATE_UPDATE_EVENT",
                    "timestamp": BASE_MS + 2000,
                    "ip": a,
                    "data": {"orderId": "o-1", "state": "ORDER_CREATED", "timestamp": BASE_MS},
                },
                {
                    "eventType": "ORDER_STATE_UPDATE_EVENT",
                    "timestamp": BASE_MS + 2600,
                    "ip": a,
                    "data": {"orderId": "o-1", "state": "ORDER_COMPLETED", "timestamp": BASE_MS},
                },
            ],
        },
        {
            "ip": b,
            # The original's events do not all repeat the ip; the group's ip applies.
            "eventLogs": [
                {
                    "eventType": "CLICK_STREAM_EVENT",
                    "timestamp": BASE_MS + 3000,
                    "data": {"event": "INPUT_PASSED_EVENT"},
                },
                {
                    "eventType": "ORDER_STATE_UPDATE_EVENT",
                    "timestamp": BASE_MS + 4000,
                    "ip": b,
                    "data": {"orderId": "o-2", "state": "ORDER_CREATED", "timestamp": BASE_MS},
                },
                {"eventType": "SOMETHING_ELSE", "timestamp": BASE_MS + 5000, "ip": b, "data": {}},
            ],
        },
    ]
