"""The shard's error model: every refusal is an `HTTPError` with the contract's JSON body.

The body is `{"message": ..., "errors": [{"field": ..., "message": ...}]}` (docs/contract.md,
"Errors"); `reason` names the refusal in the rejected-requests metric. A 503 says when to come
back: build it with `unavailable`, which adds the Retry-After header.
"""

from __future__ import annotations

import orjson

from ese_server.validation import FieldError

Header = tuple[bytes, bytes]


def error_body(message: str, errors: list[FieldError] | None = None) -> bytes:
    """The JSON body of every error answer, including the protocol's own 400 and 431."""
    return orjson.dumps({"message": message, "errors": errors or []})


INTERNAL_ERROR = error_body("internal error")


class HTTPError(Exception):
    """A 4xx/5xx answer with the contract's error body and the reason counted in metrics."""

    def __init__(
        self,
        status: int,
        message: str,
        reason: str | None,
        errors: list[FieldError] | None = None,
        headers: list[Header] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason  # None: not a client's fault, so not a rejected request
        self.errors = errors or []
        self.headers = headers or []

    def body(self) -> bytes:
        return error_body(self.message, self.errors)


def unavailable(message: str, retry_after_seconds: int) -> HTTPError:
    """A 503 with Retry-After: the shard is fine, what it depends on is not (yet)."""
    return HTTPError(
        503, message, None, headers=[(b"retry-after", str(retry_after_seconds).encode())]
    )
