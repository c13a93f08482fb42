"""Lingering close, as nginx's `lingering_close`: a refused request still gets its answer.

A shard may answer a request before reading all of its body (a 413 on its Content-Length, a 401
or 403 before the body is read). Closing the socket right after the answer would be wrong: the
body bytes still arriving meet a closed socket, the kernel answers them with a reset, and the
reset makes the client's kernel discard the answer before the client has read it. So, while
the request's body is still arriving, closing means: stop writing once the answer is flushed
(shutdown(SHUT_WR), the client sees the end of the answer), read and discard what the client
still sends, and close when it is done (its FIN), after `LINGER_SECONDS`, or after
`LINGER_BYTES`, whichever comes first, so a client that sends forever cannot keep it open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

LINGER_SECONDS = 5.0  # longest a lingering connection stays open after the answer
# Most bytes it discards: several times the default ESE_MAX_BODY_BYTES (1 MiB), so a body that
# was refused for its size is still read to its end, not cut off by a reset.
LINGER_BYTES = 8 * 1024 * 1024


class LingeringTransport:
    """A connection's transport as uvicorn's protocol sees it: `close()` lingers while
    `body_arriving()` is true; every other attribute is the real transport's."""

    def __init__(self, transport: asyncio.Transport, body_arriving: Callable[[], bool]) -> None:
        self.transport = transport
        self.body_arriving = body_arriving
        self.lingering = False
        self.discarded = 0

    def close(self) -> None:
        """Close now, or lingeringly while the request's body is still arriving."""
        transport = self.transport
        if self.lingering or transport.is_closing():
            return
        if not self.body_arriving() or not transport.can_write_eof():
            transport.close()
            return
        self.lingering = True
        transport.write_eof()  # FIN after the answer is flushed; reading goes on
        transport.resume_reading()  # flow control may have paused it while the body queued
        # The timer needs no cancelling: closing a closed transport does nothing.
        asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)

    def is_closing(self) -> bool:
        """True once closing began, lingering included (uvicorn then starts nothing new)."""
        return self.lingering or self.transport.is_closing()

    def discard(self, data: bytes) -> None:
        """Drop bytes that came while lingering; close once they pass the byte bound."""
        self.discarded += len(data)
        if self.discarded > LINGER_BYTES:
            self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)
