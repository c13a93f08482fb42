"""One screenshot of the running dashboard, with data, in headless Chromium.

The real `ese-consumer` command runs against a real, seeded ese-server; the system Chromium,
driven by Playwright, loads the page and the capture is taken once the browser shows the metrics
and four drawn charts. Then more
events are posted and the open page must show the new total by itself (the timed fragment).
The PNG is kept as a test artifact in `artifacts/consumer.png` (git-ignored).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat
from playwright.sync_api import Browser

from tests.browsers import capture, collect_errors, find_browser, new_page, wait_for
from tests.consumer.dashboard import PROBE
from tests.consumer.dashboard import ready as drawn
from tests.consumer.seed import demo_events, seed, stats
from tests.tooling import free_port, stop_process

pytestmark = pytest.mark.redis

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = REPO_ROOT / "artifacts" / "consumer.png"
SIZE = (1400, 1800)


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ese-consumer exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not healthy after {timeout}s")


@pytest.fixture
def consumer(ese_server_factory: Callable[..., Any], tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A seeded analytics server and the real `ese-consumer` on it: (server URL, page URL)."""
    server = ese_server_factory(role="all")
    seed(server.url, demo_events(rounds=20))
    port = free_port()
    script = Path(sys.executable).with_name("ese-consumer")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "ese_consumer"]
    env = {**os.environ, "ESE_SERVER_URL": f"{server.url}/events", "ESE_POLL_SECONDS": "3"}
    env.pop("ESE_ANALYTICS_TOKEN", None)
    log = open(tmp_path / "consumer.log", "w+b")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [*command, "--port", str(port), "--address", "127.0.0.1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", proc)
        yield server.url, f"http://127.0.0.1:{port}/"
    finally:
        stop_process(proc, 15)
        log.close()


def test_dashboard_screenshot_and_live_refresh(
    consumer: tuple[str, str], chromium: Browser
) -> None:
    server_url, page_url = consumer
    page = new_page(chromium, SIZE)
    # A chart whose spec Vega cannot draw leaves an empty frame and logs an error, nothing else.
    errors: list[str] = []
    collect_errors(page, errors)
    try:
        page.goto(page_url)
        ready, probe = wait_for(page, PROBE, drawn, timeout=60)
        # Captured even when not ready, so a failure leaves the picture for inspection.
        capture(page, ARTIFACT)
        assert ready, probe
        assert probe["exceptions"] == 0
        assert probe["alerts"] == []
        doc = stats(server_url)
        assert probe["metrics"]["Total events"] == str(doc["total"])
        assert probe["metrics"]["Open orders"] == str(doc["orders"]["open"])

        # New events show up by themselves at a later poll (ESE_POLL_SECONDS=3), no reload.
        more = demo_events(rounds=1)
        for event in more:
            event["id"] = "late-" + event["id"]
        seed(server_url, more)
        total = str(stats(server_url)["total"])
        refreshed, probe = wait_for(
            page, PROBE, lambda v: drawn(v) and v["metrics"]["Total events"] == total, timeout=30
        )
        assert refreshed, probe
        assert errors == []
    finally:
        page.context.close()

    with Image.open(ARTIFACT) as image:
        assert image.format == "PNG"
        assert image.size == SIZE
        rgb = image.convert("RGB")
    # Not blank: real content has spread in brightness and many colours (charts, text).
    spread = ImageStat.Stat(rgb.convert("L")).stddev[0]
    assert spread > 10, f"image looks uniform (stddev {spread:.1f})"
    colours = rgb.getcolors(maxcolors=SIZE[0] * SIZE[1])
    assert colours is not None and len(colours) > 100
    # The chart colours are drawn: Streamlit's default blue series appears in quantity.
    blue = sum(n for n, (r, g, b) in colours if b > 150 and r < 80 and g < 140)
    assert blue > 2000, f"only {blue} chart-blue pixels"


def test_the_browser_is_found_under_any_of_its_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chrome = tmp_path / "google-chrome"
    chrome.write_text("#!/bin/sh\n")
    chrome.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_browser() == str(chrome)

    chrome.unlink()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium"):
        find_browser()
