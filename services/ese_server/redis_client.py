"""A small asyncio Redis client: one auto-pipelined connection, C packing and parsing (hiredis).

WHY not redis-py's asyncio client: it packs commands in Python (a batch of 50 events is a
300-argument script call) and takes a pooled connection per concurrent request. Here every
command is packed by `hiredis.pack_command`, written at once on one shared connection, and the
replies are matched in order; concurrent requests pipeline by themselves. Measured against
redis-py in the same shard, writes cost about half the shard CPU per event (BENCHMARKS.md,
`server_bench.py --redis-client ese redis-py`). redis-py's Sentinel support was weighed for
failover and not taken: it finds the master with SENTINEL MASTERS, checks no ROLE on connect
and reacts to READONLY only; the Sentinel protocol is a small part of this client instead.

Faults, and what the caller may conclude from them (redis_errors.py):
- `RedisNotSent`: the command certainly did not run (cannot connect, handshake failed, the
  connection is stalled and new commands are refused, or the node refused it as not the
  master: `RedisNotMaster`, `RedisNoReplicas`).
- `RedisNoReply`: the command was written but no reply came (no answer within
  `command_timeout`, or the connection was lost). Redis may still run it (a frozen Redis runs
  its socket buffer when it thaws), so the outcome is unknown. A reply that arrives after the
  timeout is handed to the command's `late` callback, so callers can still account for it.
Connecting is one shared attempt for every waiter, bounded by `connect_timeout`; after a failed
attempt new commands fail at once for `connect_backoff` seconds instead of queueing up another
slow attempt each. A connection with no reply for `stall_timeout` seconds is aborted.

With a `locator` (the Sentinels, sentinel.py) the client follows the Sentinel client protocol:
it asks the Sentinels for the master's address on every connect, checks `ROLE` there, and
leaves a connection (finding the master again on the next command) when it is lost, when the
node answers READONLY, LOADING or MASTERDOWN, and when the Sentinels name another master: they
are asked again every `MASTER_CHECK_SECONDS` and after a NOREPLICAS refusal. So it never keeps
writing to a node that the Sentinels no longer call master.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis

from ese_server.redis_errors import (
    RedisError,
    RedisNoReplicas,
    RedisNoReply,
    RedisNotMaster,
    RedisNotSent,
    RedisOutOfMemory,
    RedisReplyError,
    RedisUnavailable,
    reply_error,
)
from ese_server.resp_connection import Connection, Late

__all__ = [
    "COMMAND_TIMEOUT",
    "Commands",
    "Connect",
    "Late",
    "Locator",
    "RedisClient",
    "RedisError",
    "RedisNoReplicas",
    "RedisNoReply",
    "RedisNotMaster",
    "RedisNotSent",
    "RedisOutOfMemory",
    "RedisReplyError",
    "RedisUnavailable",
]

COMMAND_TIMEOUT = 5.0  # seconds a command may go unanswered before the caller is told so
MASTER_CHECK_SECONDS = 1.0  # how often the Sentinels are asked whether the master moved

log = logging.getLogger("ese_server.redis")


class Commands(Protocol):
    """What the store needs of a Redis client (RedisClient, or redis-py's in benchmarks)."""

    async def execute(self, *args: Any, late: Late | None = None) -> Any: ...

    async def execute_replicated(
        self, *args: Any, replicas: int, timeout_ms: int, late: Late | None = None
    ) -> tuple[Any, int]: ...

    async def close(self) -> None: ...


# Makes the store's client from the Redis URL: RedisClient, unless the caller injects another
# (benchmarks inject redis-py's). An injected one takes plain URLs: Sentinels are RedisClient's.
Connect = Callable[[str], Commands]


class Locator(Protocol):
    """Where the master is: `sentinel.Sentinels`. Raises RedisNotSent when nobody knows."""

    async def master_address(self, max_age: float = 0.0) -> tuple[str, int]: ...


def _where(conn: Connection) -> str:
    return f"{conn.address[0]}:{conn.address[1]}" if conn.address else "the unix socket"


class RedisClient:
    """Commands over one shared, lazily (re)connected connection."""

    def __init__(
        self,
        url: str,
        connect_timeout: float = 2.0,
        command_timeout: float = COMMAND_TIMEOUT,
        connect_backoff: float = 0.5,
        locator: Locator | None = None,
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
        # With a locator the URL gives only the scheme, credentials and database.
        self.locator = locator
        # WHY abort only after much longer than a command timeout: a frozen Redis runs what is
        # in its socket buffer when it thaws; keeping the connection lets those late replies
        # be accounted for. Aborting is for a peer that is really gone (no FIN/RST ever).
        self.stall_timeout = 3 * command_timeout
        self._conn: Connection | None = None
        self._retired: set[Connection] = set()  # left, still awaiting replies
        self._connecting: asyncio.Future[Connection] | None = None
        self._failed_at = -1e9
        self._failure = ""
        self._watchdog: asyncio.Task[None] | None = None
        self._check: asyncio.Task[None] | None = None
        self._checked_at = -1e9

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) of the open connection, None when there is none (or a unix socket)."""
        conn = self._conn
        return None if conn is None or conn.closed else conn.address

    async def _connect(self) -> Connection:
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

    def _connect_done(self, attempt: asyncio.Future[Connection]) -> None:
        self._connecting = None
        if attempt.cancelled():
            return
        exc = attempt.exception()  # also marks it retrieved
        if exc is not None:
            self._failed_at = time.monotonic()
            self._failure = str(exc)

    async def _open(self) -> Connection:
        loop = asyncio.get_running_loop()
        address: tuple[str, int] | None = None
        if self.locator is not None:
            address = await self.locator.master_address()  # RedisNotSent when nobody knows
        elif not self._unix:
            address = (self._host, self._port)
        try:
            if address is None:
                coro = loop.create_unix_connection(Connection, self._path)
            else:
                host, port = address
                factory = functools.partial(Connection, address)
                coro = loop.create_connection(factory, host, port, ssl=self._ssl)
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
        # proves the connection is usable. ROLE proves it too, and that the node is the master
        # (the Sentinels' answer may be stale while a failover is under way).
        handshake.append(("ROLE",) if self.locator is not None else ("PING",))
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
        if self.locator is not None and replies[-1][0] != b"master":
            conn.abort()
            role = replies[-1][0].decode(errors="replace")
            raise RedisNotMaster(
                f"{_where(conn)} is a {role}, not the master; asking the Sentinels again shortly"
            )
        self._conn = conn
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.create_task(self._watch())
        return conn

    async def _watch(self) -> None:
        """Time out unanswered commands, abort stalled connections, check where the master is."""
        while True:
            await asyncio.sleep(min(0.25, self.command_timeout / 4))
            now = time.monotonic()
            self._retired = {c for c in self._retired if c.pending and not c.lost}
            for conn in (self._conn, *self._retired):
                if conn is not None and conn.pending and not conn.lost:
                    self._expire(conn, now)
            if now - self._checked_at >= MASTER_CHECK_SECONDS:
                self.check_master()

    def _expire(self, conn: Connection, now: float) -> None:
        if now - conn.progress > self.stall_timeout:
            conn.abort()
            conn.connection_lost(TimeoutError("no reply within the stall timeout"))
            return
        message = f"no reply from Redis within {self.command_timeout:g} s; it may still run"
        for entry in conn.pending:  # oldest first: stop at the first one still in time
            if now - entry.sent_at <= self.command_timeout:
                break
            if not entry.future.done():
                entry.future.set_exception(RedisNoReply(message))

    def check_master(self) -> None:
        """Ask the Sentinels, in the background, whether the master moved; leave if it did.

        At most one ask at a time and two a second (NOREPLICAS replies may come in bursts).
        """
        conn = self._conn
        if self.locator is None or conn is None or conn.closed:
            return
        now = time.monotonic()
        if (self._check is not None and not self._check.done()) or (
            now - self._checked_at < MASTER_CHECK_SECONDS / 2
        ):
            return
        self._checked_at = now
        self._check = asyncio.create_task(self._check_master(conn))

    async def _check_master(self, conn: Connection) -> None:
        assert self.locator is not None
        try:
            address = await self.locator.master_address(max_age=MASTER_CHECK_SECONDS / 2)
        except RedisError:
            # No Sentinel answers: keep the connection. An isolated master stops taking writes
            # by itself (min-replicas-to-write), and WAIT confirms nothing there.
            return
        if address != conn.address:
            self._leave(conn, f"the Sentinels name {address[0]}:{address[1]} the master now")

    def _leave(self, conn: Connection, why: str) -> None:
        """Send nothing more on `conn` (its replies still arrive); the next command reconnects."""
        if conn.closed:
            return
        log.warning("redis: leaving %s: %s", _where(conn), why)
        conn.retire()
        if conn.pending:
            self._retired.add(conn)

    def _checked(self, conn: Connection, reply: Any) -> Any:
        """The reply, or its error raised (leaving a node that answers as no master)."""
        if not isinstance(reply, hiredis.ReplyError):
            return reply
        error = reply_error(str(reply))
        if isinstance(error, RedisNotMaster):
            self._leave(conn, str(error))
        elif isinstance(error, RedisNoReplicas):
            self.check_master()  # an isolated master: maybe the Sentinels moved on
        raise error

    async def _send(
        self, packed: bytes, count: int, late: Late | None = None
    ) -> tuple[Connection, list[asyncio.Future[Any]]]:
        conn = self._conn
        if conn is None or conn.closed:
            conn = await self._connect()
        waited = conn.oldest_wait(time.monotonic())
        if waited > self.command_timeout:
            # Redis is not answering: refuse instead of queueing more work behind the stall,
            # so these callers get a fast and certain answer (nothing sent, nothing stored).
            raise RedisNotSent(f"Redis has not answered for {waited:.1f} s")
        return conn, conn.send(packed, count, late)

    async def execute(self, *args: Any, late: Late | None = None) -> Any:
        """Run one command; raise RedisReplyError for an error reply.

        `late(reply)` is called if the reply arrives after this call raised RedisNoReply.
        """
        conn, (future,) = await self._send(hiredis.pack_command(args), 1, late)
        return self._checked(conn, await future)

    async def execute_replicated(
        self, *args: Any, replicas: int, timeout_ms: int, late: Late | None = None
    ) -> tuple[Any, int]:
        """Run one write, then `WAIT replicas timeout_ms` on the same connection.

        Returns the reply and how many replicas confirmed they hold the write; 0 when the WAIT
        got no answer (no replica is known to hold it). One WAIT serves every write sent in the
        same loop turn (see `Connection.wait_after`). Errors and `late` as in `execute`.
        """
        conn, (future,) = await self._send(hiredis.pack_command(args), 1, late)
        confirmation = conn.wait_after(replicas, timeout_ms)
        reply = self._checked(conn, await future)
        try:
            confirmed = int(self._checked(conn, await confirmation))
        except RedisError:
            confirmed = 0
        return reply, confirmed

    async def close(self) -> None:
        """Close the connections and stop the watchdog."""
        for task in (self._watchdog, self._check):
            if task is not None:
                task.cancel()
        for conn in (self._conn, *self._retired):
            if conn is not None and conn.transport is not None:
                conn.transport.close()
        self._conn = None
        self._retired.clear()
