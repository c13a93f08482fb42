"""The click-through page in a real Chromium, posting to real shards on a real Redis.

Every test acts as a person would (clicks, typing, keys) and checks what the analytics shard
stored, in order, and what the browser sent (Playwright sees each request as sent); the page's
counters and error line are read as a person reads them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image, ImageStat
from playwright.sync_api import Route

from tests.browsers import capture
from tests.conftest import RedisServer
from tests.tooling import free_port
from tests.webclient.conftest import (
    ARTIFACTS,
    DESKTOP,
    PHONE,
    TOKEN,
    OpenPage,
    PageStack,
    identity,
)

pytestmark = [pytest.mark.redis, pytest.mark.timeout(120)]

StartStack = Callable[..., PageStack]
OpenPageFn = Callable[..., OpenPage]


def wait_stored(stack: PageStack, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The stored events once there are `count` (and, a moment later, still no more)."""
    deadline = time.monotonic() + timeout
    events = stack.stored()
    while len(events) < count and time.monotonic() < deadline:
        time.sleep(0.1)
        events = stack.stored()
    time.sleep(0.3)  # anything extra would have landed by now
    return stack.stored()


def clicks_of(events: list[dict[str, Any]]) -> list[str]:
    return [e["data"]["event"] for e in events if e["eventType"] == "CLICK_STREAM_EVENT"]


def test_five_clicks_are_one_batch_of_five(page_stack: StartStack, open_page: OpenPageFn) -> None:
    stack = page_stack()
    opened = open_page(stack)
    for _ in range(5):
        opened.page.get_by_test_id("click-button").click()
    assert opened.wait_counts(sent=5, acknowledged=5, failed=0)

    stored = wait_stored(stack, 5)
    assert [e["eventType"] for e in stored] == ["CLICK_STREAM_EVENT"] * 5
    assert clicks_of(stored) == ["BUTTON_CLICK_EVENT"] * 5
    assert {e["ip"] for e in stored} == {identity()}
    # One request, to POST /events, with the token; the ids are distinct and in click order.
    assert [p.path for p in opened.posted] == ["/events"]
    sent = opened.posted[0]
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert [e["id"] for e in stored] == [e["id"] for e in sent.events]
    assert len({e["id"] for e in stored}) == 5
    stamps = [e["timestamp"] for e in stored]
    assert stamps == sorted(stamps)
    assert opened.last_error() == ""
    assert opened.errors == []


def test_three_clicks_then_a_second_idle_send_a_batch_of_three(
    page_stack: StartStack, open_page: OpenPageFn
) -> None:
    stack = page_stack()
    opened = open_page(stack)
    for _ in range(3):
        opened.page.get_by_test_id("click-button").click()
    clicked = time.monotonic()
    opened.page.wait_for_timeout(500)
    assert opened.posted == [], "a partial batch waits for the idle second"
    assert "3 events waiting" in opened.page.locator("#waiting").inner_text()
    opened.wait_counts(acknowledged=3)

    assert [len(p.events) for p in opened.posted] == [3]
    waited = opened.posted[0].at - clicked
    assert 0.9 <= waited <= 3.0, f"the partial batch went after {waited:.2f}s"
    assert clicks_of(wait_stored(stack, 3)) == ["BUTTON_CLICK_EVENT"] * 3


def test_typing_into_the_empty_field_is_one_event_not_one_per_key(
    page_stack: StartStack, open_page: OpenPageFn
) -> None:
    stack = page_stack()
    opened = open_page(stack)
    field = opened.page.get_by_test_id("text-input")
    # "fluffy": an F typed into the field is typing, not the F key.
    field.press_sequentially("fluffy", delay=30)
    opened.wait_counts(acknowledged=1)
    opened.page.wait_for_timeout(1300)  # a second event would have gone by now
    assert clicks_of(wait_stored(stack, 1)) == ["INPUT_PASSED_EVENT"]

    # Emptied and filled again: the step from empty to text happens once more.
    field.fill("")
    field.press_sequentially("ok", delay=30)
    opened.wait_counts(acknowledged=2)
    assert clicks_of(wait_stored(stack, 2)) == ["INPUT_PASSED_EVENT"] * 2
    assert opened.count("sent") == 2


def test_the_f_key_is_a_key_press(page_stack: StartStack, open_page: OpenPageFn) -> None:
    stack = page_stack()
    opened = open_page(stack)
    keyboard = opened.page.keyboard
    opened.page.locator("h1").click()  # focus on the page, outside the field
    keyboard.press("f")
    keyboard.press("Shift+F")
    keyboard.press("g")  # other keys are not events
    keyboard.press("Control+f")  # the browser's search, not the F key
    opened.wait_counts(acknowledged=2)
    opened.page.wait_for_timeout(300)
    assert clicks_of(wait_stored(stack, 2)) == ["KEY_PRESS_EVENT"] * 2
    assert [len(p.events) for p in opened.posted] == [2]


def test_an_order_moves_through_its_states_in_order(
    page_stack: StartStack, open_page: OpenPageFn
) -> None:
    stack = page_stack()
    opened = open_page(stack)
    page = opened.page
    page.get_by_test_id("order-new").click()
    order_id = page.locator("#order-id").inner_text()
    names = ("created", "allocated", "started", "completed")
    # Only the next state can be chosen.
    assert [page.get_by_test_id(f"order-{n}").is_enabled() for n in names] == [
        True,
        False,
        False,
        False,
    ]
    for name in names:
        page.get_by_test_id(f"order-{name}").click()
    opened.wait_counts(sent=4, acknowledged=4, failed=0)
    assert not any(page.get_by_test_id(f"order-{n}").is_enabled() for n in names)

    stored = wait_stored(stack, 4)
    assert [e["eventType"] for e in stored] == ["ORDER_STATE_UPDATE_EVENT"] * 4
    assert [e["data"]["state"] for e in stored] == [
        "ORDER_CREATED",
        "ORDER_ALLOCATED",
        "ORDER_STARTED",
        "ORDER_COMPLETED",
    ]
    assert {e["data"]["orderId"] for e in stored} == {order_id}
    assert all(e["data"]["timestamp"] == e["timestamp"] for e in stored)
    # One by one to POST /event.
    assert [p.path for p in opened.posted] == ["/event"] * 4
    stats = stack_stats(stack)
    assert stats["orders"] == {"open": 0, "completed": 1}

    # A new order starts over with its own id.
    page.get_by_test_id("order-new").click()
    assert page.locator("#order-id").inner_text() != order_id
    assert page.get_by_test_id("order-created").is_enabled()


def stack_stats(stack: PageStack) -> dict[str, Any]:
    from tests.conftest import get_json

    stats: dict[str, Any] = get_json(f"{stack.analytics.url}/stats")
    return stats


def test_a_wrong_token_is_shown_in_words_and_nothing_is_stored(
    page_stack: StartStack, open_page: OpenPageFn
) -> None:
    stack = page_stack(shard_token=TOKEN, page_token="not-the-token")
    opened = open_page(stack)
    for _ in range(5):
        opened.page.get_by_test_id("click-button").click()
    opened.wait_counts(sent=5, acknowledged=0, failed=5)
    error = opened.last_error()
    assert "401: token rejected" in error
    assert "ESE_INGEST_TOKEN" in error
    assert len(opened.posted) == 1, "a rejected token is not retried"
    capture(opened.page, ARTIFACTS / "webclient-error.png", settle_seconds=0.2)
    assert stack.stored() == []


def test_without_a_token_no_authorization_header_is_sent(
    page_stack: StartStack, open_page: OpenPageFn
) -> None:
    # Shards without a token accept the page's events.
    open_stack = page_stack(shard_token=None, page_token=None)
    opened = open_page(open_stack)
    opened.page.get_by_test_id("order-created").click()
    opened.wait_counts(acknowledged=1)
    assert "authorization" not in opened.posted[0].headers
    assert "without a token" in opened.page.locator("#token-state").inner_text()
    assert len(wait_stored(open_stack, 1)) == 1

    # Shards with a token: the page says the token is missing.
    locked = page_stack(shard_token=TOKEN, page_token=None)
    opened = open_page(locked)
    opened.page.get_by_test_id("order-created").click()
    opened.wait_counts(failed=1)
    assert "401: token required" in opened.last_error()


def test_an_unreachable_server_is_retried_then_shown_as_a_network_error(
    page_stack: StartStack, open_page: OpenPageFn
) -> None:
    stack = page_stack(be_server=f"http://127.0.0.1:{free_port()}")
    opened = open_page(stack)
    opened.page.get_by_test_id("order-created").click()
    # 5 attempts with 0.25 + 0.5 + 1 + 2 s between them.
    opened.wait_counts(timeout=20, sent=1, acknowledged=0, failed=1)
    error = opened.last_error()
    assert "network error: is the load balancer up" in error
    assert stack.origin in error, "the hint names the origin ESE_CORS_ORIGINS must list"
    assert "gave up after 5 attempts" in error
    assert len(opened.posted) == 5
    assert len({p.body["id"] for p in opened.posted}) == 1, "every retry has the same id"


def test_a_lost_answer_is_retried_with_the_same_ids_and_stored_once(
    page_stack: StartStack, open_page: OpenPageFn
) -> None:
    stack = page_stack()
    opened = open_page(stack)
    attempts: list[str] = []

    def lose_the_first_answer(route: Route) -> None:
        attempts.append(route.request.post_data or "")
        if len(attempts) == 1:
            # The request reaches the shard and is stored; the browser never hears back.
            route.fetch()
            route.abort("connectionreset")
        else:
            route.continue_()

    opened.page.route(f"{stack.be_server}/events", lose_the_first_answer)
    for _ in range(5):
        opened.page.get_by_test_id("click-button").click()
    opened.wait_counts(sent=5, acknowledged=5, failed=0)
    assert len(attempts) == 2
    assert attempts[0] == attempts[1], "the retry sends the very same body"
    stored = wait_stored(stack, 5)
    assert len(stored) == 5, "the retried batch is stored once"
    assert [e["id"] for e in stored] == [e["id"] for e in opened.posted[0].events]


def test_a_partial_batch_goes_when_the_page_is_hidden(
    page_stack: StartStack, open_page: OpenPageFn
) -> None:
    stack = page_stack()
    opened = open_page(stack)
    page = opened.page
    for _ in range(2):
        page.get_by_test_id("click-button").click()
    # Headless Chromium has no window to hide: make the document report "hidden" as a
    # switched-away tab does, and fire the event the browser would.
    page.evaluate(
        """() => {
        Object.defineProperty(document, "visibilityState", {value: "hidden", configurable: true});
        document.dispatchEvent(new Event("visibilitychange"));
    }"""
    )
    opened.wait_counts(timeout=0.8, acknowledged=2)
    assert [len(p.events) for p in opened.posted] == [2]


def test_a_partial_batch_goes_when_the_page_is_left(
    page_stack: StartStack, open_page: OpenPageFn
) -> None:
    stack = page_stack()
    opened = open_page(stack)
    page = opened.page
    for _ in range(3):
        page.get_by_test_id("click-button").click()
    page.get_by_test_id("text-input").fill("x")
    # Leaving the page (pagehide) sends the 4 waiting events; keepalive carries the request,
    # with its Authorization header, past the unload.
    page.goto("about:blank")
    stored = wait_stored(stack, 4)
    assert clicks_of(stored) == ["BUTTON_CLICK_EVENT"] * 3 + ["INPUT_PASSED_EVENT"]


def test_injected_settings_cannot_break_out_of_the_page(
    page_stack: StartStack, open_page: OpenPageFn
) -> None:
    # U+2028 is covered by script_json's unit test: an HTTP header cannot carry it.
    nasty = "</script><script>window.pwned=1</script><!--\"'&"
    stack = page_stack(shard_token=nasty, page_token=nasty)
    opened = open_page(stack)
    page = opened.page
    config = page.evaluate("JSON.parse(document.getElementById('ese-config').textContent)")
    assert config["token"] == nasty
    assert config["server"] == stack.ingest.url
    assert page.evaluate("window.pwned") is None
    assert page.locator("script").count() == 2, "the blob did not open another script element"
    # The exact token reaches the shard, which accepts it.
    page.get_by_test_id("order-created").click()
    opened.wait_counts(acknowledged=1)
    assert opened.errors == []


def test_a_token_http_cannot_carry_is_shown_not_sent(
    page_stack: StartStack, open_page: OpenPageFn
) -> None:
    stack = page_stack(page_token="tok\u20acn")
    opened = open_page(stack)
    assert "HTTP header" in opened.last_error()
    opened.page.get_by_test_id("order-created").click()
    opened.wait_counts(sent=1, acknowledged=0, failed=1)
    assert opened.posted == []


def _no_overflow(opened: OpenPage) -> None:
    page = opened.page
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"page is {width}px wide"  # type: ignore[index]
    for test_id in ("click-button", "text-input", "order-created", "order-new"):
        box = page.get_by_test_id(test_id).bounding_box()
        assert box is not None
        assert box["height"] >= 44, f"{test_id} is {box['height']}px tall"
        assert box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("size", "mobile", "name"), [(DESKTOP, False, "desktop"), (PHONE, True, "phone")]
)
def test_screenshots_desktop_and_phone(
    page_stack: StartStack, open_page: OpenPageFn, size: tuple[int, int], mobile: bool, name: str
) -> None:
    stack = page_stack()
    opened = open_page(stack, size=size, mobile=mobile)
    page = opened.page
    for _ in range(7):
        page.get_by_test_id("click-button").click()
    page.get_by_test_id("text-input").fill("hello")
    page.get_by_test_id("order-created").click()
    page.get_by_test_id("order-allocated").click()
    # 7 clicks and the field: a batch of 5 and one of 3 after the idle second; 2 order states.
    opened.wait_counts(sent=10, acknowledged=10, failed=0)
    _no_overflow(opened)
    page.evaluate("window.scrollTo(0, 0)")  # the clicks scrolled; show the page from its top
    out = capture(page, ARTIFACTS / f"webclient-{name}.png", settle_seconds=0.2)
    with Image.open(out) as image:
        assert image.size == size
        spread = ImageStat.Stat(image.convert("L")).stddev[0]
    assert spread > 10, f"{name} screenshot looks blank"
    assert opened.errors == []


def test_a_redis_outage_is_shown_and_the_retry_lands_once_it_is_back(
    page_stack: StartStack, open_page: OpenPageFn, redis_server: RedisServer
) -> None:
    stack = page_stack()
    opened = open_page(stack)
    redis_server.stop()
    try:
        opened.page.get_by_test_id("order-created").click()
        deadline = time.monotonic() + 3
        while "503" not in opened.last_error() and time.monotonic() < deadline:
            opened.page.wait_for_timeout(50)
        error = opened.last_error()
        assert "503: the ingest side is unavailable" in error
        assert "retrying" in error
    finally:
        redis_server.start()
    opened.wait_counts(timeout=10, sent=1, acknowledged=1, failed=0)
    assert len(opened.posted) >= 2
    assert len({p.body["id"] for p in opened.posted}) == 1
    assert len(wait_stored(stack, 1)) == 1
