"""uvicorn's httptools protocol with a size cap on the request head and JSON protocol errors.

WHY: httptools has no limit of its own on the URL or on header values; it keeps appending what
arrives, so one request with a 100 MiB header costs 100 MiB+ of RSS (and the analytics shard
listens on every interface). Here the bytes of an unfinished head are counted as they arrive
and the connection is answered 431 and closed once URL + headers exceed `MAX_HEAD_BYTES`.
Requests httptools cannot parse (unknown method, bad Content-Length, ...) get the contract's
JSON error body (docs/contract.md) instead of uvicorn's plain text, and both are counted in the
rejected-requests metric. Without httptools (Windows) uvicorn falls back to h11, which caps an
unfinished head at 16 KiB by itself.

A connection the app answered while the request's body was still arriving closes lingeringly
(lingering.py): the answer reaches the client instead of being lost to a reset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar, cast

from ese_server.errors import error_body
from ese_server.lingering import LingeringTransport

MAX_HEAD_BYTES = 16 * 1024

Reject = Callable[[str], None]


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head over the cap."""


def _error_response(status: bytes, message: str, errors: list[dict[str, str]]) -> bytes:
    body = error_body(message, errors)
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


def protocol_class(reject: Reject) -> Any:
    """The capped protocol class for `uvicorn.Config(http=...)`, or "auto" without httptools."""
    try:
        import httptools
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - no httptools (Windows): h11 has its own cap
        return "auto"

    class CappedHttpToolsProtocol(HttpToolsProtocol):
        """HttpToolsProtocol + head cap (431) + JSON 400s, counted through `reject`, + a
        lingering close while a request's body is still arriving."""

        count_reject: ClassVar[Reject] = staticmethod(reject)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._in_head = True  # waiting for (more of) a request head
            self._in_body = False  # the head is complete, the body still arriving
            self._head_seen = 0  # bytes received while in the head (bounds memory)
            self._head_size = 0  # exact size of URL + completed headers
            self._linger: LingeringTransport | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            # uvicorn (the protocol and each request's cycle) closes through this wrapper.
            self._linger = LingeringTransport(transport, lambda: self._in_body)
            super().connection_made(cast(asyncio.Transport, self._linger))

        def data_received(self, data: bytes) -> None:
            if self._linger is not None and self._linger.lingering:
                self._linger.discard(data)  # the answer is out; this is the refused body
                return
            self._unset_keepalive_if_required()
            if self._in_head:
                self._head_seen += len(data)
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()
                return
            except httptools.HttpParserError as exc:
                if isinstance(exc.__context__, _HeadTooLarge):
                    self._reject_head()
                else:
                    self.send_400_response(str(exc) or "Invalid HTTP request received.")
                return
            if self._in_head and self._head_seen > MAX_HEAD_BYTES:
                self._reject_head()

        def _grow(self, size: int) -> None:
            self._head_size += size
            if self._head_size > MAX_HEAD_BYTES:
                raise _HeadTooLarge

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head = True
            self._in_body = False
            self._head_size = 0

        def on_url(self, url: bytes) -> None:
            self._grow(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._grow(len(name) + len(value) + 4)  # "name: value\r\n"
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._in_body = True
            self._head_seen = 0
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head = True
            self._in_body = False
            self._head_seen = 0

        def _reject_head(self) -> None:
            type(self).count_reject("headers_too_large")
            message = (
                f"request URL and headers are larger than {MAX_HEAD_BYTES} bytes; "
                "send a shorter request"
            )
            errors = [{"field": "headers", "message": f"must be at most {MAX_HEAD_BYTES} bytes"}]
            self.transport.write(
                _error_response(b"431 Request Header Fields Too Large", message, errors)
            )
            self.transport.close()

        def send_400_response(self, msg: str) -> None:
            type(self).count_reject("bad_http")
            message = f"invalid HTTP request ({msg}); see GET /openapi.json"
            self.transport.write(_error_response(b"400 Bad Request", message, []))
            self.transport.close()

    return CappedHttpToolsProtocol
