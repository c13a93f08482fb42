"""Screenshot a page in headless Chromium once it has rendered, over the DevTools protocol.

Chromium's own `--screenshot --virtual-time-budget=N` captures a Streamlit page blank: virtual
time runs ahead without waiting for the websocket that delivers the page's content (tried: the
capture comes back after ~1 s with only the toolbar). So Chromium is started headless with a
DevTools port, and the test navigates, waits in real time (bounded) until a JavaScript probe says
the page is ready, then captures it. Waiting on the probe again later also shows whether the
page refreshes by itself (the fragment's timer) without a reload.
"""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from tests.tooling import stop_process

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]


class _DevTools:
    """Minimal DevTools client: one page, request/response by id, events ignored."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"DevTools {method} did not answer in {timeout}s")
            message = json.loads(self.ws.recv(timeout=remaining))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"DevTools {method} failed: {message['error']}")
                return dict(message.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")


def _devtools_port(profile: Path, proc: subprocess.Popen[bytes], timeout: float) -> int:
    """The port Chromium chose, from the DevToolsActivePort file it writes into the profile."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited early with code {proc.returncode}")
        if marker.exists():
            first = marker.read_text().splitlines()[:1]
            if first and first[0].isdigit():
                return int(first[0])
        time.sleep(0.1)
    raise TimeoutError(f"chromium wrote no DevToolsActivePort in {timeout}s")


class Browser:
    """A headless Chromium with one page, driven over DevTools (use as a context manager)."""

    def __init__(self, chromium: str, profile: Path, size: tuple[int, int] = (1400, 1800)):
        self.chromium, self.profile, self.size = chromium, profile, size
        self._stack = contextlib.ExitStack()
        self._tools: _DevTools | None = None

    def __enter__(self) -> Browser:
        width, height = self.size
        args = [self.chromium, *FLAGS, f"--user-data-dir={self.profile}"]
        args += [f"--window-size={width},{height}", "about:blank"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._stack.callback(stop_process, proc)
        try:
            port = _devtools_port(self.profile, proc, 30.0)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
                targets = json.load(resp)
            page = next(t for t in targets if t.get("type") == "page")
            ws = self._stack.enter_context(
                connect(page["webSocketDebuggerUrl"], max_size=64 * 2**20)
            )
            self._tools = _DevTools(ws)
            self._tools.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def tools(self) -> _DevTools:
        assert self._tools is not None, "use Browser as a context manager"
        return self._tools

    def open(self, url: str) -> None:
        self.tools.call("Page.navigate", url=url)

    def wait_for(
        self, probe: str, done: Callable[[Any], bool], timeout: float = 60.0
    ) -> tuple[bool, Any]:
        """Evaluate the JS `probe` every 0.5 s until `done(value)`; (done?, last value)."""
        value: Any = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.tools.evaluate(probe)
            if done(value):
                return True, value
            time.sleep(0.5)
        return False, value

    def capture(self, out: Path) -> Path:
        """Write a PNG of the viewport to `out`."""
        # Let the last chart finish drawing before the capture.
        time.sleep(1.0)
        shot = self.tools.call("Page.captureScreenshot", format="png")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(shot["data"]))
        return out
