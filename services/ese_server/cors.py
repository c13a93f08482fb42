"""CORS: which browser origins may read the shard's answers, and its preflight answers."""

from __future__ import annotations

from ese_server.asgi import Response
from ese_server.errors import Header

# Headers browser code may read on GET /events: the truncation marker and the cap it names.
EXPOSED = b"x-ese-truncated, x-ese-read-cap"
PREFLIGHT_MAX_AGE = b"600"  # seconds a browser may cache a preflight answer


class Cors:
    """The allowed origins (ESE_CORS_ORIGINS; "*" allows every origin)."""

    def __init__(self, origins: tuple[str, ...]) -> None:
        self.any = "*" in origins
        self.origins = frozenset(o.encode() for o in origins)

    def allows(self, origin: bytes) -> bool:
        """True for a request from an origin that may read the answer."""
        return bool(origin and self.origins and (self.any or origin in self.origins))

    def answer_headers(self, origin: bytes, route: str) -> list[Header]:
        """The CORS headers of an answer to `origin` on `route` (none for a foreign origin)."""
        if not self.allows(origin):
            return []
        headers = [(b"access-control-allow-origin", b"*" if self.any else origin)]
        headers.append((b"vary", b"Origin"))
        if route == "/events":  # let browser code read the truncation marker
            headers.append((b"access-control-expose-headers", EXPOSED))
        return headers

    def preflight(self, allow: str, origin: bytes) -> Response:
        """The 204 answer to OPTIONS on a route whose methods are `allow`."""
        headers = [(b"allow", allow.encode())]
        if self.allows(origin):
            headers += [
                (b"access-control-allow-methods", allow.encode()),
                (b"access-control-allow-headers", b"authorization, content-type"),
                (b"access-control-max-age", PREFLIGHT_MAX_AGE),
            ]
        return Response(204, b"", headers=headers)
