"""The shapes the app works with: ASGI's aliases, the request head it reads, its answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ese_server.errors import Header

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"


class Response:
    """Status, body and content type of an answer (headers added by the app)."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: bytes = JSON,
        headers: list[Header] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or []


class RequestHead:
    """The request headers the app acts on, read in one pass over the raw ASGI headers, and
    whether the request's body is still unread (`body_pending`, cleared by the body reader)."""

    __slots__ = (
        "authorization",
        "body_pending",
        "content_length",
        "content_type",
        "origin",
        "repeated",
    )

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.authorization: bytes | None = None
        self.content_type: bytes | None = None
        self.content_length = -1  # -1: absent or not a number (the body is read to its end)
        self.origin = b""
        self.repeated: list[str] = []  # headers that must come once but came more often
        chunked = False
        for name, value in raw:
            if name == b"authorization":
                if self.authorization is not None:
                    self.repeated.append("Authorization")
                self.authorization = value
            elif name == b"content-type":
                if self.content_type is not None:
                    self.repeated.append("Content-Type")
                self.content_type = value
            elif name == b"content-length":
                self.content_length = int(value) if value.isdigit() else -1
            elif name == b"origin":
                self.origin = value
            elif name == b"transfer-encoding":
                chunked = True
        self.body_pending = self.content_length > 0 or chunked
