"""`invoke webclient`: the click-through page in its container, clicked in a real browser,
posting through the stack's load balancer with the tasks' CORS origins and the ingest token."""

from __future__ import annotations

from playwright.sync_api import Browser

from tests.browsers import chromium
from tests.e2e import harness, page

__all__ = ["chromium"]  # the browser fixture, for this module's tests


def test_the_page_in_its_container_sends_clicks_through_the_stack(
    stack: harness.Stack, chromium: Browser
) -> None:
    since = stack.stream_end()
    harness.invoke("webclient", timeout=600)  # removed by `invoke down` at the end of the run
    page.click(chromium, 5)
    stored = page.stored_clicks(stack.analytics_token, since, 5)
    assert [e["data"]["event"] for e in stored] == ["BUTTON_CLICK_EVENT"] * 5
    assert len({e["id"] for e in stored}) == 5
