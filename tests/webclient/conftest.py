"""Fixtures of the click-through page tests: real shards, the real `ese-client --web`, Chromium.

`page_stack(...)` starts what one test needs: a real ingest shard and a real analytics shard on
the test Redis, both allowing the page's origin (ESE_CORS_ORIGINS), and the page served by the
real `ese-client --web` on a free loopback port. The page's port is picked first, since the
shards must know its origin before they start.

`open_page(stack)` opens it in the system Chromium (Playwright) and records every request the
page makes to the event server, as the browser sent it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from playwright.sync_api import Browser, Page, Request

from ese_client.identity import own_ipv4
from tests.browsers import chromium, collect_errors, new_page  # noqa: F401 - `chromium` is a fixture
from tests.conftest import REPO_ROOT, ServerHandle, stored_events
from tests.tooling import free_port, stop_process

TOKEN = "page-write-key"
DESKTOP = (1280, 800)
PHONE = (390, 844)
ARTIFACTS = REPO_ROOT / "artifacts"


def web_env(**env: str) -> dict[str, str]:
    """Environment of an `ese-client --web` process: ours without ESE_* leftovers, plus `env`."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("ESE_")}
    full.pop("REACT_APP_BE_SERVER", None)
    full.setdefault("PYTHONPATH", str(REPO_ROOT / "services"))
    full.update(env)
    return full


def wait_listening(port: int, proc: subprocess.Popen[Any], timeout: float = 20.0) -> None:
    """Until something accepts connections on 127.0.0.1:port; fail if the process ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ese-client --web exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"ese-client --web did not listen on {port} within {timeout}s")


@dataclass
class PageStack:
    """The shards and the page's server of one test."""

    url: str  # the page, e.g. http://127.0.0.1:PORT/
    origin: str
    ingest: ServerHandle
    analytics: ServerHandle
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    be_server: str

    def stored(self) -> list[dict[str, Any]]:
        return stored_events(self.analytics.url)

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


def start_page_server(
    port: int, logdir: Path, be_server: str, token: str | None, *extra: str
) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    """The real `ese-client --web` (python -m ese_client) on 127.0.0.1:port."""
    env = web_env(REACT_APP_BE_SERVER=be_server)
    if token is not None:
        env["ESE_INGEST_TOKEN"] = token
    log = open(logdir / f"web-{port}.log", "w+b")  # noqa: SIM115 - closed by the fixture
    proc = subprocess.Popen(
        [sys.executable, "-m", "ese_client", "--web", "--port", str(port), *extra],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=str(REPO_ROOT),
    )
    wait_listening(port, proc)
    return proc, log


@pytest.fixture
def page_stack(
    ese_server_factory: Callable[..., ServerHandle], tmp_path: Path
) -> Iterator[Callable[..., PageStack]]:
    """`start(shard_token=TOKEN, page_token=TOKEN, be_server=None) -> PageStack`.

    `page_token` is what the page sends (None: no ESE_INGEST_TOKEN at all); `be_server` is the
    page's REACT_APP_BE_SERVER, the ingest shard's URL by default.
    """
    started: list[PageStack] = []

    def start(
        shard_token: str | None = TOKEN,
        page_token: str | None = TOKEN,
        be_server: str | None = None,
    ) -> PageStack:
        port = free_port()
        origin = f"http://127.0.0.1:{port}"
        env = {"ESE_CORS_ORIGINS": origin}
        if shard_token is not None:
            env["ESE_INGEST_TOKEN"] = shard_token
        ingest = ese_server_factory(role="ingest", **env)
        analytics = ese_server_factory(role="analytics", **env)
        target = be_server or ingest.url
        proc, log = start_page_server(port, tmp_path, target, page_token, "--host", "127.0.0.1")
        stack = PageStack(f"{origin}/", origin, ingest, analytics, proc, log, target)
        started.append(stack)
        return stack

    yield start
    for stack in started:
        stop_process(stack.proc)
        stack.log.close()


@dataclass
class Posted:
    """One request the page made to the event server, as the browser sent it."""

    path: str
    headers: dict[str, str]
    body: Any
    at: float  # time.monotonic() when the browser sent it

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(self.body["events"]) if self.path == "/events" else [self.body]


@dataclass
class OpenPage:
    """A page in Chromium, the requests it made to `be_server`, and its console errors."""

    page: Page
    be_server: str
    posted: list[Posted] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def record(self, request: Request) -> None:
        if request.method == "POST" and request.url.startswith(self.be_server):
            path = request.url[len(self.be_server) :]
            body = json.loads(request.post_data or "null")
            self.posted.append(Posted(path, request.headers, body, time.monotonic()))

    def count(self, name: str) -> int:
        """A counter of the page: sent, acknowledged or failed."""
        return int(self.page.get_by_test_id(f"{name}-count").inner_text())

    def wait_counts(self, timeout: float = 15.0, **expected: int) -> dict[str, int]:
        """Until the page's counters show `expected` (e.g. acknowledged=5); the last values."""
        deadline = time.monotonic() + timeout
        while True:
            seen = {name: self.count(name) for name in ("sent", "acknowledged", "failed")}
            if all(seen[name] == value for name, value in expected.items()):
                return seen
            if time.monotonic() > deadline:
                raise AssertionError(f"counters {seen}, expected {expected}")
            self.page.wait_for_timeout(100)

    def last_error(self) -> str:
        box = self.page.get_by_test_id("last-error")
        return box.inner_text() if box.is_visible() else ""


@pytest.fixture
def open_page(chromium: Browser) -> Iterator[Callable[..., OpenPage]]:  # noqa: F811
    """`open(stack, size=DESKTOP, mobile=False) -> OpenPage`, loaded and ready."""
    opened: list[OpenPage] = []

    def open_(stack: PageStack, size: tuple[int, int] = DESKTOP, mobile: bool = False) -> OpenPage:
        page = new_page(chromium, size, mobile=mobile)
        handle = OpenPage(page, stack.be_server)
        opened.append(handle)
        page.on("request", handle.record)
        collect_errors(page, handle.errors)
        page.goto(stack.url)
        page.wait_for_selector("html[data-ready=true]", timeout=15_000)
        return handle

    yield open_
    for handle in opened:
        handle.page.context.close()


def identity() -> str:
    """The `ip` the page's events carry: this host's address, instance `web`."""
    return f"{own_ipv4()}-web"
