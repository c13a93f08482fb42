"""Fixtures of the consumer tests.

`original_server` stands in for the original demo's Go server, which this repository does not
ship: a real HTTP server on loopback that answers `GET /events` with the original's plain
`[{"ip", "eventLogs"}]` list and 404 elsewhere (no `/stats`, `since` ignored). Its `answer`
can be switched to a status code or to broken JSON, to drive the consumer's error paths.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.browsers import chromium  # noqa: F401 - the real-browser fixture, for test_screenshot
from tests.consumer.original import original_events


@dataclass
class OriginalServer:
    """The stand-in server; set `answer` to "ok", "malformed" or an HTTP status code."""

    url: str
    answer: str | int = "ok"
    events: list[dict[str, Any]] = field(default_factory=original_events)
    # When set, `/stats` answers this document (a server with /stats but no `since` support).
    stats: dict[str, Any] | None = None
    # When set (with `stats`), `/events?since=` answers this page: a server with cursors.
    page: dict[str, Any] | None = None
    # When set, every request gets these raw headers and body (e.g. a broken gzip encoding).
    raw: tuple[dict[str, str], bytes] | None = None
    requests: list[str] = field(default_factory=list)


def _handler(state: OriginalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            if state.raw is not None:
                headers, body = state.raw
                self.send_response(200)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            elif state.answer == "malformed":
                self._send(200, b'{"ip": "10.0.0.5-1", "eventLogs": [')
            elif isinstance(state.answer, int):
                self._send(state.answer, json.dumps({"message": "nope", "errors": []}).encode())
            elif self.path == "/stats" and state.stats is not None:
                self._send(200, json.dumps(state.stats).encode())
            elif "since=" in self.path and state.page is not None:
                self._send(200, json.dumps(state.page).encode())
            elif self.path.split("?")[0] == "/events":
                self._send(200, json.dumps(state.events).encode())
            else:
                self._send(404, b"404 page not found")

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

    return Handler


@pytest.fixture
def original_server() -> Iterator[OriginalServer]:
    """A running stand-in of the original Go server on a free loopback port."""
    state = OriginalServer(url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    # A short poll interval keeps shutdown() fast.
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
