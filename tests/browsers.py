"""A real headless Chromium for page tests, driven by Playwright's Python API.

Playwright's own browser download needs the internet, so the tests drive the system's Chromium
(`find_browser`): missing, it is a skip on a user's machine and a failure under CI=true, like
every other real tool (see `tests.tooling`).

`chromium` is the browser fixture, one per test module: Playwright's sync API keeps an event loop
of its own in the thread while it runs, so it is ended before modules that run asyncio themselves.
Conftest modules that need it import it. Each test opens its own context (`new_page`), so
cookies, storage and viewport never leak between tests.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.tooling import need_binary

# Debian's package, Ubuntu's older name, and what GitHub's ubuntu runners have installed.
BROWSERS = ("chromium", "chromium-browser", "google-chrome")

# As root, Chromium's sandbox cannot start; no GPU in CI; and nothing may phone home (the only
# network here is loopback), so every background service that would is off.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def find_browser() -> str:
    """The first of BROWSERS on PATH; like `need_binary`, none is a skip (a failure in CI)."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path is not None:
            return path
    return need_binary(BROWSERS[0], "apt-get install chromium (or install google-chrome)")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One headless system Chromium for the test module."""
    executable = find_browser()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=FLAGS, timeout=60_000
        )
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Browser, size: tuple[int, int], *, mobile: bool = False) -> Page:
    """A page in a fresh context of `size` CSS pixels at scale 1 (a phone one with `mobile`)."""
    width, height = size
    context = browser.new_context(
        viewport={"width": width, "height": height},
        device_scale_factor=1,
        is_mobile=mobile,
        has_touch=mobile,
    )
    return context.new_page()


def collect_errors(page: Page, errors: list[str]) -> None:
    """Append to `errors` what the page logs as a console error and every uncaught exception."""

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))


def wait_for(
    page: Page, probe: str, done: Callable[[Any], bool], timeout: float = 60.0
) -> tuple[bool, Any]:
    """Evaluate the JS `probe` every 0.5 s until `done(value)`; (done?, last value).

    Unlike `page.wait_for_function`, a timeout hands back the last value, so the assertion
    message shows what the page did show.
    """
    value: Any = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = page.evaluate(probe)
        if done(value):
            return True, value
        page.wait_for_timeout(500)
    return False, value


def capture(page: Page, out: Path, settle_seconds: float = 1.0) -> Path:
    """Write a PNG of the viewport to `out`, after letting the last drawing finish."""
    page.wait_for_timeout(settle_seconds * 1000)
    out.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out), full_page=False)
    return out
