"""`invoke webclient`: the click-through page in its container, clicked in a real browser,
posting through the stack's load balancer with the tasks' CORS origins and the ingest token."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser

from tests.browsers import chromium, new_page, wait_for
from tests.e2e import harness, outside

__all__ = ["chromium"]  # the browser fixture, for this module's tests

PAGE = "http://localhost:3006"


def web_clicks(token: str, since: str) -> list[dict[str, Any]]:
    events, _ = outside.read_stream(token, since)
    return [e for e in events if str(e.get("ip", "")).endswith("-web")]


def test_the_page_in_its_container_sends_clicks_through_the_stack(
    stack: harness.Stack, chromium: Browser
) -> None:
    since = stack.stream_end()
    harness.invoke("webclient", timeout=600)  # removed by `invoke down` at the end of the run
    outside.wait_until(lambda: outside.request("GET", PAGE)[0] == 200, 60, "the page answers")
    page = new_page(chromium, (1280, 800))
    page.goto(PAGE)
    for _ in range(5):
        page.get_by_test_id("click-button").click()
    probe = "document.querySelector('[data-testid=acknowledged-count]').textContent"
    done, shown = wait_for(page, probe, lambda text: text.strip() == "5")
    assert done, f"acknowledged-count shows {shown!r}"

    def five_stored() -> list[dict[str, Any]]:
        found = web_clicks(stack.analytics_token, since)
        return found if len(found) >= 5 else []

    stored = outside.wait_until(five_stored, 30, "the 5 clicks stored")
    assert [e["data"]["event"] for e in stored] == ["BUTTON_CLICK_EVENT"] * 5
    assert len({e["id"] for e in stored}) == 5
