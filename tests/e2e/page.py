"""The click-through page served by `invoke webclient`, clicked in a real browser."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from playwright.sync_api import Browser

from tests.browsers import new_page, wait_for
from tests.e2e import outside

PAGE = "http://localhost:3006"


def web_clicks(token: str, since: str) -> list[dict[str, Any]]:
    """The page's clicks stored after the cursor `since` (their ip ends in -web)."""
    events, _ = outside.read_stream(token, since)
    return [e for e in events if str(e.get("ip", "")).endswith("-web")]


def click(chromium: Browser, times: int) -> None:
    """Open the page once it answers, click its button `times` times, and wait until it shows
    them all acknowledged."""
    outside.wait_until(lambda: outside.request("GET", PAGE)[0] == 200, 60, "the page answers")
    page = new_page(chromium, (1280, 800))
    page.goto(PAGE)
    for _ in range(times):
        page.get_by_test_id("click-button").click()
    probe = "document.querySelector('[data-testid=acknowledged-count]').textContent"
    done, shown = wait_for(page, probe, lambda text: text.strip() == str(times))
    assert done, f"acknowledged-count shows {shown!r}"


def stored_clicks(token: str, since: str, times: int) -> list[dict[str, Any]]:
    """Wait until `times` clicks are stored after `since`; exactly those."""

    def all_stored() -> list[dict[str, Any]]:
        found = web_clicks(token, since)
        return found if len(found) >= times else []

    stored = outside.wait_until(all_stored, 30, f"the {times} clicks stored")
    assert len(stored) == times, [e["id"] for e in stored]
    return stored


def post_clicks(token: str, times: int) -> None:
    """Post `times` clicks as the page does (ids, ip ending in -web) through the load balancer,
    in one batch, and check they were acknowledged."""
    run = uuid.uuid4().hex[:8]
    events = [
        {
            "eventType": "CLICK_STREAM_EVENT",
            "timestamp": int(time.time() * 1000),
            "ip": f"e2e-{run}-web",
            "data": {"event": "BUTTON_CLICK_EVENT"},
            "id": f"e2e-web-{run}-{n}",
        }
        for n in range(times)
    ]
    headers = {"Content-Type": "application/json", **outside.bearer(token)}
    body = json.dumps({"events": events}).encode()
    status, reply = outside.request("POST", f"{outside.LB}/events", body, headers)
    assert status in (200, 201), (status, reply[:300])
