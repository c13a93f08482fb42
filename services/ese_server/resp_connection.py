"""One Redis connection as an asyncio protocol: replies parsed by hiredis, matched in order.

Commands are written at once (`send`) and their futures queued; replies resolve them in
order, so concurrent callers pipeline by themselves. A connection that is `closed` takes no new
commands; a `retire`d one still delivers the replies of the commands already on it, then
closes (the client retires a connection to a node that is no longer the master).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import hiredis

from ese_server.redis_errors import RedisNoReply

Late = Callable[[Any], None]


class Pending:
    """One command written and not yet answered."""

    __slots__ = ("future", "late", "sent_at")

    def __init__(self, future: asyncio.Future[Any], sent_at: float, late: Late | None) -> None:
        self.future = future
        self.sent_at = sent_at
        self.late = late


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A shared WAIT whose waiters all went away must not log "exception never retrieved".
    if not future.cancelled():
        future.exception()


class Connection(asyncio.Protocol):
    """The transport, the reply parser and the queue of commands awaiting their reply."""

    def __init__(self, address: tuple[str, int] | None = None) -> None:
        self.address = address  # (host, port) as connected to; None for a unix socket
        self.reader = hiredis.Reader()
        self.pending: deque[Pending] = deque()
        self.transport: asyncio.Transport | None = None
        self.progress = time.monotonic()  # last time a reply arrived or the queue started
        self.closed = False  # takes no new commands (lost, aborted or retired)
        self.lost = False  # the transport is gone
        self._wait: asyncio.Future[Any] | None = None  # the next WAIT, shared, not yet written
        self._wait_args: tuple[int, int] = (0, 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.progress = time.monotonic()
        self.reader.feed(data)
        pending = self.pending
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError:
                self.abort()
                return
            if reply is False:
                break
            entry = pending.popleft()
            if not entry.future.done():
                entry.future.set_result(reply)
            elif entry.late is not None:
                # The caller already answered "outcome unknown"; let it account for the truth.
                # A bookkeeping callback must never break the connection.
                with contextlib.suppress(Exception):
                    entry.late(reply)
        if self.closed and not pending and self.transport is not None:
            self.transport.close()  # a retired connection has delivered its last reply

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = self.lost = True
        error = RedisNoReply(
            f"connection to Redis lost with the command in flight ({exc or 'closed by server'})"
        )
        while self.pending:
            future = self.pending.popleft().future
            if not future.done():
                future.set_exception(error)

    def abort(self) -> None:
        """Drop the connection now; commands in flight get RedisNoReply."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def retire(self) -> None:
        """Take no new commands; close once the commands already sent have their replies."""
        self.closed = True
        if not self.pending and self.transport is not None:
            self.transport.close()

    def oldest_wait(self, now: float) -> float:
        """Seconds the oldest unanswered command has waited (0 when none)."""
        return now - self.pending[0].sent_at if self.pending else 0.0

    def send(
        self, packed: bytes, count: int, late: Late | None = None
    ) -> list[asyncio.Future[Any]]:
        """Write `count` packed commands; their reply futures, in order."""
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(count)]
        self._write(packed, futures, late)
        return futures

    def _write(self, packed: bytes, futures: list[asyncio.Future[Any]], late: Late | None) -> None:
        now = time.monotonic()
        if not self.pending:
            self.progress = now
        self.pending.extend(Pending(f, now, late) for f in futures)
        assert self.transport is not None
        self.transport.write(packed)

    def wait_after(self, replicas: int, timeout_ms: int) -> asyncio.Future[Any]:
        """The reply of a `WAIT replicas timeout_ms` written after every command sent so far.

        WHY shared: WAIT counts the replicas that hold every write this connection made before
        it, so one WAIT written at the end of the loop turn confirms all the writes that
        concurrent requests sent in that turn, instead of one blocking WAIT each.
        """
        if self._wait is not None and self._wait_args != (replicas, timeout_ms):
            self._flush_wait()  # another level asked for: write the pending one first
        if self._wait is None:
            loop = asyncio.get_running_loop()
            self._wait = loop.create_future()
            self._wait.add_done_callback(_retrieve)
            self._wait_args = (replicas, timeout_ms)
            loop.call_soon(self._flush_wait)
        return self._wait

    def _flush_wait(self) -> None:
        shared, self._wait = self._wait, None
        if shared is None or shared.done():
            return
        if self.lost or self.transport is None or self.transport.is_closing():
            shared.set_exception(RedisNoReply("connection to Redis lost before WAIT was sent"))
            return
        command: tuple[Any, ...] = ("WAIT", *self._wait_args)
        # The shared future is the WAIT's own: its reply resolves it in the same pass over the
        # received data as the writes' replies, so their callers find it done and go on
        # without another turn of the loop.
        self._write(hiredis.pack_command(command), [shared], None)
