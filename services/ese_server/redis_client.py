"""A small asyncio Redis client: one auto-pipelined connection, C packing and parsing (hiredis).

WHY not redis-py's asyncio client: it packs commands in Python (a batch of 50 events is a
300-argument script call) and takes a pooled connection per concurrent request. Here every
command is packed by `hiredis.pack_command`, written at once on one shared connection, and the
replies are matched in order; concurrent requests pipeline by themselves.

Faults: a lost connection fails every pending command with `RedisUnavailable`; the next command
reconnects (one attempt at a time, bounded by a connect timeout). A command with no answer for
`command_timeout` seconds aborts the connection, so a frozen Redis cannot hang requests.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis


class RedisError(Exception):
    """Base of every error raised by this client."""


class RedisUnavailable(RedisError):
    """No connection to Redis (refused, lost, timed out)."""


class RedisReplyError(RedisError):
    """Redis answered with an error reply."""


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.pending: deque[asyncio.Future[Any]] = deque()
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
            future = pending.popleft()
            if not future.done():
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        error = RedisUnavailable(f"connection to Redis lost ({exc or 'closed by server'})")
        while self.pending:
            future = self.pending.popleft()
            if not future.done():
                future.set_exception(error)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def send(self, packed: bytes, count: int) -> list[asyncio.Future[Any]]:
        loop = asyncio.get_running_loop()
        if not self.pending:
            self.progress = time.monotonic()
        futures = [loop.create_future() for _ in range(count)]
        self.pending.extend(futures)
        assert self.transport is not None
        self.transport.write(packed)
        return futures


class RedisClient:
    """Commands over one shared, lazily (re)connected connection."""

    def __init__(
        self, url: str, connect_timeout: float = 2.0, command_timeout: float = 5.0
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
        self._conn: _Connection | None = None
        self._lock = asyncio.Lock()
        self._watchdog: asyncio.Task[None] | None = None

    async def _connect(self) -> _Connection:
        async with self._lock:
            conn = self._conn
            if conn is not None and not conn.closed:
                return conn
            loop = asyncio.get_running_loop()
            try:
                if self._unix:
                    coro = loop.create_unix_connection(_Connection, self._path)
                else:
                    coro = loop.create_connection(
                        _Connection, self._host, self._port, ssl=self._ssl
                    )
                _, new = await asyncio.wait_for(coro, self.connect_timeout)
            except (OSError, asyncio.TimeoutError) as exc:
                raise RedisUnavailable(f"cannot connect to Redis: {exc or 'timeout'}") from None
            conn = new
            handshake: list[tuple[Any, ...]] = []
            if self._password is not None:
                if self._username:
                    handshake.append(("AUTH", self._username, self._password))
                else:
                    handshake.append(("AUTH", self._password))
            if self._db:
                handshake.append(("SELECT", self._db))
            if handshake:
                packed = b"".join(hiredis.pack_command(c) for c in handshake)
                futures = conn.send(packed, len(handshake))
                try:
                    replies = await asyncio.wait_for(asyncio.gather(*futures), self.connect_timeout)
                except (RedisError, asyncio.TimeoutError) as exc:
                    conn.abort()
                    raise RedisUnavailable(f"Redis handshake failed: {exc}") from None
                for reply in replies:
                    if isinstance(reply, hiredis.ReplyError):
                        conn.abort()
                        # AUTH/SELECT errors are configuration errors, but still "unavailable".
                        raise RedisUnavailable(f"Redis refused the handshake: {reply}")
            self._conn = conn
            if self._watchdog is None or self._watchdog.done():
                self._watchdog = asyncio.create_task(self._watch())
            return conn

    async def _watch(self) -> None:
        """Abort a connection whose oldest command went unanswered for command_timeout."""
        while True:
            await asyncio.sleep(min(0.5, self.command_timeout / 4))
            conn = self._conn
            if conn is None or conn.closed or not conn.pending:
                continue
            if time.monotonic() - conn.progress > self.command_timeout:
                conn.abort()
                conn.connection_lost(TimeoutError("no reply within the command timeout"))

    async def _send(self, packed: bytes, count: int) -> list[asyncio.Future[Any]]:
        conn = self._conn
        if conn is None or conn.closed:
            conn = await self._connect()
        return conn.send(packed, count)

    async def execute(self, *args: Any) -> Any:
        """Run one command; raise RedisReplyError for an error reply."""
        (future,) = await self._send(hiredis.pack_command(args), 1)
        reply = await future
        if isinstance(reply, hiredis.ReplyError):
            raise RedisReplyError(str(reply))
        return reply

    async def pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Run several commands in one write; raise on the first error reply."""
        packed = b"".join(hiredis.pack_command(c) for c in commands)
        futures = await self._send(packed, len(commands))
        replies = [await f for f in futures]
        for reply in replies:
            if isinstance(reply, hiredis.ReplyError):
                raise RedisReplyError(str(reply))
        return replies

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

    def __init__(self, client: RedisClient, source: str) -> None:
        import hashlib

        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self.client.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except RedisReplyError as exc:
            # NOSCRIPT means the script did not run, so running it again cannot double-write.
            if not str(exc).startswith("NOSCRIPT"):
                raise
        await self.client.execute("SCRIPT", "LOAD", self.source)
        return await self.client.execute("EVALSHA", self.sha, len(keys), *keys, *args)
