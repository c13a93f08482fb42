"""Request bodies: JSON only, read up to ESE_MAX_BODY_BYTES, parsed with clear 4xx answers."""

from __future__ import annotations

from typing import Any

import orjson

from ese_server.asgi import Receive, RequestHead
from ese_server.errors import HTTPError


def is_json(content_type: bytes) -> bool:
    """application/json (any parameters, any case) or a +json type such as problem+json."""
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def too_large(limit: int) -> HTTPError:
    return HTTPError(
        413,
        f"request body is larger than {limit} bytes (ESE_MAX_BODY_BYTES)",
        "body_too_large",
        [{"field": "body", "message": f"must be at most {limit} bytes"}],
    )


async def read_body(receive: Receive, head: RequestHead, limit: int) -> bytes:
    """The body of a POST, refused unless JSON (no Content-Type is read as JSON) or when over
    `limit` bytes: at once when Content-Length says so, else as soon as the bytes do. A body
    read to its end clears `head.body_pending`."""
    if head.content_type is not None and not is_json(head.content_type):
        raise HTTPError(
            415,
            "request body must be JSON: send Content-Type: application/json",
            "unsupported_media_type",
            [{"field": "Content-Type", "message": "must be application/json"}],
        )
    if head.content_length > limit:
        raise too_large(limit)
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body", False):
        head.body_pending = False
        if len(body) > limit:
            raise too_large(limit)
        return bytes(body)
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPError(400, "client disconnected while sending the body", "malformed_json")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    head.body_pending = False
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """The JSON document of a body; a 400 naming the problem for an empty or invalid one."""
    if not body:
        raise HTTPError(
            400,
            "request body is empty; send a JSON document",
            "malformed_json",
            [{"field": "body", "message": "is required"}],
        )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPError(
            400,
            f"request body is not valid JSON: {exc}",
            "malformed_json",
            [{"field": "body", "message": "must be valid JSON"}],
        ) from None
