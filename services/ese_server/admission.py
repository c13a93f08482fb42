"""Who may call what: the role a shard serves, headers that must come once, bearer tokens."""

from __future__ import annotations

import hmac

from ese_server.asgi import RequestHead
from ese_server.config import Settings
from ese_server.errors import HTTPError


class Admission:
    """Admits a request to a route of a role, or refuses it with a 400, 401 or 403."""

    def __init__(self, settings: Settings) -> None:
        self.role = settings.role
        self.tokens = {"ingest": settings.ingest_token, "analytics": settings.analytics_token}
        self.serves = {"ingest": settings.serves_ingest, "analytics": settings.serves_analytics}

    def admit(self, role: str | None, head: RequestHead) -> None:
        """Refuse a request this shard's role does not serve, with a header sent twice, or
        without the role's token, in that order (a role refusal tells the most). `role` None:
        a route every role serves, open to all."""
        if role is not None:
            self._check_role(role)
        if head.repeated:
            raise HTTPError(
                400,
                f"header {head.repeated[0]} sent more than once",
                "duplicate_header",
                [{"field": field, "message": "must be sent once"} for field in head.repeated],
            )
        if role is not None:
            self._authorize(role, head.authorization)

    def _check_role(self, role: str) -> None:
        if not self.serves[role]:
            raise HTTPError(
                403,
                f"this shard has role {self.role!r} and does not serve {role} routes",
                "forbidden_role",
            )

    def _authorize(self, role: str, authorization: bytes | None) -> None:
        token = self.tokens[role]
        if token is None:
            return
        # RFC 7235: the scheme is case-insensitive and followed by one or more spaces.
        scheme, _, credentials = (authorization or b"").partition(b" ")
        given = credentials.strip(b" ") if scheme.lower() == b"bearer" else b""
        if not hmac.compare_digest(given, token.encode()):
            what = "missing" if not authorization else "wrong"
            raise HTTPError(
                401,
                f"{what} token: send 'Authorization: Bearer <{role} token>'",
                "unauthorized",
                [{"field": "Authorization", "message": f"{what} Bearer token"}],
                headers=[(b"www-authenticate", b"Bearer")],
            )
