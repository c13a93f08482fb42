"""Seeding a real ese-server with a known mix of events over `POST /events`."""

from __future__ import annotations

import time
from typing import Any

import httpx

CLIENTS = ("10.9.0.2-1", "10.9.0.3-1", "10.9.0.4-2")
CLICKS = ("KEY_PRESS_EVENT", "BUTTON_CLICK_EVENT", "INPUT_PASSED_EVENT")
LIFE_CYCLE = ("ORDER_CREATED", "ORDER_ALLOCATED", "ORDER_STARTED", "ORDER_COMPLETED")


def demo_events(rounds: int = 12, now_ms: int | None = None) -> list[dict[str, Any]]:
    """`rounds` ticks per client, 1 s apart: a click burst and one order life cycle each.

    One order in three is left open (no ORDER_COMPLETED), like the simulator's disrupted cycles.
    """
    start = (now_ms if now_ms is not None else int(time.time() * 1000)) - rounds * 1000
    events: list[dict[str, Any]] = []
    for tick in range(rounds):
        for n, ip in enumerate(CLIENTS):
            ts = start + tick * 1000 + n * 10
            burst = [*CLICKS, *[CLICKS[(tick + n) % 3]] * ((tick * 7 + n) % 5)]
            for k, sub in enumerate(burst):
                events.append(
                    {
                        "eventType": "CLICK_STREAM_EVENT",
                        "timestamp": ts + k,
                        "ip": ip,
                        "data": {"event": sub},
                        "id": f"c-{ip}-{tick}-{k}",
                    }
                )
            states = LIFE_CYCLE if (tick + n) % 3 else LIFE_CYCLE[:3]
            order_id = f"o-{ip}-{tick}"
            for k, state in enumerate(states):
                events.append(
                    {
                        "eventType": "ORDER_STATE_UPDATE_EVENT",
                        "timestamp": ts + 200 * k,
                        "ip": ip,
                        "data": {"orderId": order_id, "state": state, "timestamp": ts},
                        "id": f"{order_id}-{k}",
                    }
                )
    return events


def seed(base_url: str, events: list[dict[str, Any]], token: str | None = None) -> None:
    """POST the events in batches of 100; fail loudly on anything but 200."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        for start in range(0, len(events), 100):
            response = client.post("/events", json={"events": events[start : start + 100]})
            assert response.status_code == 200, response.text


def stats(base_url: str, token: str | None = None) -> dict[str, Any]:
    """The server's `/stats` document."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{base_url}/stats", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
