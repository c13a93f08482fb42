"""A small asyncio Redis client: one auto-pipelined connection, C packing and parsing (hiredis).

WHY not redis-py's asyncio client: it packs commands in Python (a batch of 50 events is a
300-argument script call) and takes a pooled connection per concurrent request. Here every
command is packed by `hiredis.pack_command`, written at once on one shared connection, and the
replies are matched in order; concurrent requests pipeline by themselves. Measured against
redis-py in the same shard, writes cost about half the shard CPU per event (BENCHMARKS.md,
`server_bench.py --redis-client ese redis-py`).

Faults, and what the caller may conclude from them:
- `RedisNotSent`: the command certainly never reached Redis (cannot connect, handshake failed,
  or the connection is stalled and new commands are refused). Nothing ran.
- `RedisNoReply`: the command was written but no reply came (no answer within
  `command_timeout`, or the connection was lost). Redis may still run it (a frozen Redis runs
  its socket buffer when it thaws), so the outcome is unknown. A reply that arrives after the
  timeout is handed to the command's `late` callback, so callers can still account for it.
Connecting is one shared attempt for every waiter, bounded by `connect_timeout`; after a failed
attempt new commands fail at once for `connect_backoff` seconds instead of queueing up another
slow attempt each. A connection with no reply for `stall_timeout` seconds is aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, cast
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis

Late = Callable[[Any], None]


class Commands(Protocol):
    """What the store needs of a Redis client (RedisClient, or redis-py's in benchmarks)."""

    async def execute(self, *args: Any, late: Late | None = None) -> Any: ...

    async def close(self) -> None: ...


# Makes the store's client from the Redis URL: RedisClient, unless the caller injects another.
Connect = Callable[[str], Commands]


class RedisError(Exception):
    """Base of every error raised by this client."""


class RedisUnavailable(RedisError):
    """No usable answer from Redis (see the two subclasses for what that means)."""


class RedisNotSent(RedisUnavailable):
    """The command never reached Redis: it certainly did not run."""


class RedisNoReply(RedisUnavailable):
    """The command was sent but got no reply: it may or may not have run."""


class RedisReplyError(RedisError):
    """Redis answered with an error reply."""


class RedisOutOfMemory(RedisReplyError):
    """Redis refused a write because it reached `maxmemory` (policy noeviction): nothing ran."""


def _reply_error(reply: hiredis.ReplyError) -> RedisReplyError:
    text = str(reply)
    return RedisOutOfMemory(text) if text.startswith("OOM ") else RedisReplyError(text)


class _Pending:
    __slots__ = ("future", "late", "sent_at")

    def __init__(self, future: asyncio.Future[Any], sent_at: float, late: Late | None) -> None:
        self.future = future
        self.sent_at = sent_at
        self.late = late


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.pending: deque[_Pending] = deque()
        self.transport: asyncio.Transport | None = None
        self.progress = time.monotonic()  # last time a reply arrived or the queue started
        self.closed = False

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
                return
            entry = pending.popleft()
            if not entry.future.done():
                entry.future.set_result(reply)
            elif entry.late is not None:
                # The caller already answered "outcome unknown"; let it account for the truth.
                # A bookkeeping callback must never break the connection.
                with contextlib.suppress(Exception):
                    entry.late(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        error = RedisNoReply(
            f"connection to Redis lost with the command in flight ({exc or 'closed by server'})"
        )
        while self.pending:
            future = self.pending.popleft().future
            if not future.done():
                future.set_exception(error)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def oldest_wait(self, now: float) -> float:
        """Seconds the oldest unanswered command has waited (0 when none)."""
        return now - self.pending[0].sent_at if self.pending else 0.0

    def send(
        self, packed: bytes, count: int, late: Late | None = None
    ) -> list[asyncio.Future[Any]]:
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        if not self.pending:
            self.progress = now
        futures = [loop.create_future() for _ in range(count)]
        self.pending.extend(_Pending(f, now, late) for f in futures)
        assert self.transport is not None
        self.transport.write(packed)
        return futures


class RedisClient:
    """Commands over one shared, lazily (re)connected connection."""

    def __init__(
        self,
        url: str,
        connect_timeout: float = 2.0,
        command_timeout: float = 5.0,
        connect_backoff: float = 0.5,
    ) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self._unix = parts.scheme == "unix"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 6379
        self._path = parts.path
        self._ssl = ssl.create_default_context() if parts.scheme == "rediss" else None
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        db_text = query.get("db", [""])[0] if self._unix else parts.path.lstrip("/")
        self._db = int(db_text) if db_text.isdigit() else 0
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.connect_backoff = connect_backoff
        # WHY abort only after much longer than a command timeout: a frozen Redis runs what is
        # in its socket buffer when it thaws; keeping the connection lets those late replies
        # be accounted for. Aborting is for a peer that is really gone (no FIN/RST ever).
        self.stall_timeout = 3 * command_timeout
        self._conn: _Connection | None = None
        self._connecting: asyncio.Future[_Connection] | None = None
        self._failed_at = -1e9
        self._failure = ""
        self._watchdog: asyncio.Task[None] | None = None

    async def _connect(self) -> _Connection:
        """The open connection, or one shared attempt to open it (fail fast after a failure)."""
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        if self._connecting is None:
            since = time.monotonic() - self._failed_at
            if since < self.connect_backoff:
                raise RedisNotSent(f"{self._failure} ({since:.1f} s ago; retrying shortly)")
            self._connecting = asyncio.ensure_future(self._open())
            self._connecting.add_done_callback(self._connect_done)
        # shield: a waiter that gives up (cancelled) must not cancel the attempt of the others
        return await asyncio.shield(self._connecting)

    def _connect_done(self, attempt: asyncio.Future[_Connection]) -> None:
        self._connecting = None
        if attempt.cancelled():
            return
        exc = attempt.exception()  # also marks it retrieved
        if exc is not None:
            self._failed_at = time.monotonic()
            self._failure = str(exc)

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            if self._unix:
                coro = loop.create_unix_connection(_Connection, self._path)
            else:
                coro = loop.create_connection(_Connection, self._host, self._port, ssl=self._ssl)
            _, conn = await asyncio.wait_for(coro, self.connect_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise RedisNotSent(f"cannot connect to Redis: {exc or 'timeout'}") from None
        handshake: list[tuple[Any, ...]] = []
        if self._password is not None:
            if self._username:
                handshake.append(("AUTH", self._username, self._password))
            else:
                handshake.append(("AUTH", self._password))
        if self._db:
            handshake.append(("SELECT", self._db))
        # PING: a frozen Redis still completes TCP connects (kernel backlog); only an answer
        # proves the connection is usable.
        handshake.append(("PING",))
        packed = b"".join(hiredis.pack_command(c) for c in handshake)
        futures = conn.send(packed, len(handshake))
        try:
            replies = await asyncio.wait_for(asyncio.gather(*futures), self.connect_timeout)
        except (RedisError, asyncio.TimeoutError) as exc:
            conn.abort()
            raise RedisNotSent(f"Redis handshake failed: {exc or 'no answer in time'}") from None
        for reply in replies:
            if isinstance(reply, hiredis.ReplyError):
                conn.abort()
                # AUTH/SELECT errors are configuration errors, but still "unavailable".
                raise RedisNotSent(f"Redis refused the handshake: {reply}")
        self._conn = conn
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.create_task(self._watch())
        return conn

    async def _watch(self) -> None:
        """Time out unanswered commands; abort a connection stalled for stall_timeout."""
        while True:
            await asyncio.sleep(min(0.25, self.command_timeout / 4))
            conn = self._conn
            if conn is None or conn.closed or not conn.pending:
                continue
            now = time.monotonic()
            if now - conn.progress > self.stall_timeout:
                conn.abort()
                conn.connection_lost(TimeoutError("no reply within the stall timeout"))
                continue
            message = f"no reply from Redis within {self.command_timeout:g} s; it may still run"
            for entry in conn.pending:  # oldest first: stop at the first one still in time
                if now - entry.sent_at <= self.command_timeout:
                    break
                if not entry.future.done():
                    entry.future.set_exception(RedisNoReply(message))

    async def _send(
        self, packed: bytes, count: int, late: Late | None = None
    ) -> list[asyncio.Future[Any]]:
        conn = self._conn
        if conn is None or conn.closed:
            conn = await self._connect()
        waited = conn.oldest_wait(time.monotonic())
        if waited > self.command_timeout:
            # Redis is not answering: refuse instead of queueing more work behind the stall,
            # so these callers get a fast and certain answer (nothing sent, nothing stored).
            raise RedisNotSent(f"Redis has not answered for {waited:.1f} s")
        return conn.send(packed, count, late)

    async def execute(self, *args: Any, late: Late | None = None) -> Any:
        """Run one command; raise RedisReplyError for an error reply.

        `late(reply)` is called if the reply arrives after this call raised RedisNoReply.
        """
        (future,) = await self._send(hiredis.pack_command(args), 1, late)
        reply = await future
        if isinstance(reply, hiredis.ReplyError):
            raise _reply_error(reply)
        return reply

    async def close(self) -> None:
        """Close the connection and stop the watchdog."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        conn = self._conn
        if conn is not None and conn.transport is not None:
            conn.transport.close()
        self._conn = None


class Script:
    """A Lua script called by EVALSHA, loaded again after a Redis restart (NOSCRIPT)."""

    def __init__(self, client: Commands, source: str) -> None:
        import hashlib

        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, keys: list[str], args: list[Any], late: Late | None = None) -> Any:
        """Run the script; `late` as in `RedisClient.execute` (error replies are not passed)."""
        if late is not None:
            late = _ok_replies_only(late)
        try:
            return await self.client.execute(
                "EVALSHA", self.sha, len(keys), *keys, *args, late=late
            )
        except RedisReplyError as exc:
            # NOSCRIPT means the script did not run, so running it again cannot double-write.
            if not str(exc).startswith("NOSCRIPT"):
                raise
        await self.client.execute("SCRIPT", "LOAD", self.source)
        return await self.client.execute("EVALSHA", self.sha, len(keys), *keys, *args, late=late)


def _ok_replies_only(late: Late) -> Late:
    def call(reply: Any) -> None:
        if not isinstance(reply, hiredis.ReplyError):
            late(reply)

    return call
