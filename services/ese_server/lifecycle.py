"""The shard's link to its event store over the app's life.

`StoreLink` opens the store at startup and closes it at shutdown. Between the two, a monitor
keeps `redis_up` and the stream-length gauge fresh (so GET / never calls Redis) and trims the
stream while Redis refuses writes for maxmemory. Every store call of the handlers goes through
it, which turns store failures into the contract's 503s; the store itself knows nothing of HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ese_server.config import Settings
from ese_server.errors import HTTPError, unavailable
from ese_server.metrics import Metrics
from ese_server.redis_client import Connect, RedisError, RedisNotSent, RedisOutOfMemory
from ese_server.store import AppendResult, Store, with_server_ts
from ese_server.validation import CheckedEvent

log = logging.getLogger("ese_server")

T = TypeVar("T")

STORE_FAILURES = (RedisError, OSError, asyncio.TimeoutError)
STORE_FULL_MESSAGE = (
    "event store full: Redis reached its maxmemory limit, so nothing was stored; events "
    "leaving the retention window (ESE_RETENTION_SECONDS) free memory: retry later "
    "(or give Redis more maxmemory, or a shorter retention)"
)
# WHY seconds and not 1: memory comes back only as events age out of the window.
STORE_FULL_RETRY_AFTER = 5
REDIS_DOWN_RETRY_AFTER = 1
MONITOR_TIMEOUT = 2.0  # seconds a monitor round may wait for Redis


class StoreLink:
    """The store as the handlers use it: started, watched, trimmed, its failures made 503s."""

    def __init__(self, settings: Settings, metrics: Metrics, connect: Connect) -> None:
        self.settings = settings
        self.metrics = metrics
        self.connect = connect
        self.store: Store | None = None
        self.redis_up = False
        # True from a write refused for maxmemory until a write succeeds: the monitor trims
        # the stream meanwhile, because the refused appends cannot.
        self.store_full = False
        self._monitor: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Create the store and the monitor; Redis may still be down (the monitor retries)."""
        s = self.settings
        self.store = Store(s.redis_url, s.retention_seconds, s.key_prefix, self.connect)
        self._monitor = asyncio.create_task(self._watch_redis())

    async def stop(self) -> None:
        """Stop the monitor and close the store (in-flight requests have finished)."""
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        if self.store is not None:
            await self.store.close()

    def _started(self) -> Store:
        if self.store is None:
            raise RuntimeError("the store is used before the app started")
        return self.store

    async def _watch_redis(self) -> None:
        store = self._started()
        while True:
            try:
                length = await asyncio.wait_for(store.stream_length(), MONITOR_TIMEOUT)
                self.metrics.stream_length.set(length)
                if self.store_full:
                    await self._trim(store)
                if not self.redis_up:
                    log.warning("redis is reachable at %s", self.settings.redacted_redis_url())
                self._set_redis(True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure means "down"; never let the monitor die
                if self.redis_up:
                    log.warning("redis is unreachable: %s", exc)
                    self.metrics.redis_errors.inc()
                self._set_redis(False)
            await asyncio.sleep(1.0 if self.redis_up else 0.5)

    async def _trim(self, store: Store) -> None:
        """Trim the stream by retention while appends are refused for maxmemory."""
        try:
            dropped = await asyncio.wait_for(store.trim(), MONITOR_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the next round tries again; Redis health is XLEN's call
            log.warning("trimming the full store failed: %s", exc)
            return
        if dropped:
            log.warning("store full: trimmed %d events older than the retention window", dropped)

    def _set_redis(self, up: bool) -> None:
        self.redis_up = up
        self.metrics.redis_up.set(1 if up else 0)

    # ----- store calls -----------------------------------------------------------------------

    async def append(self, events: list[CheckedEvent]) -> list[bytes]:
        """Store the events (all or none) and count them; the stored events' JSON."""
        store = self._started()
        try:
            result = await store.append(events, lambda late: self._count(events, late))
        except RedisOutOfMemory as exc:
            raise self._store_is_full() from exc
        except STORE_FAILURES as exc:
            raise self._redis_failed(exc, writes=True) from exc
        if not self.redis_up:
            self._set_redis(True)
        self.store_full = False
        self._count(events, result)
        return [with_server_ts(ev.payload, sid) for ev, sid in zip(events, result.ids, strict=True)]

    async def read(self, call: Callable[[Store], Awaitable[T]]) -> T:
        """The result of one read of the store; a 503 when Redis fails it."""
        store = self._started()
        try:
            return await call(store)
        except STORE_FAILURES as exc:
            raise self._redis_failed(exc) from exc

    def _count(self, events: list[CheckedEvent], result: AppendResult) -> None:
        """Count stored (non-duplicate) events, also for a reply that came after a 503."""
        self.metrics.stream_length.set(result.stream_length)
        if len(events) == 1:
            if not result.duplicates[0]:
                self.metrics.ingest(events[0].type_key)
            return
        counts: dict[str, int] = {}
        for event, duplicate in zip(events, result.duplicates, strict=True):
            if not duplicate:
                counts[event.type_key] = counts.get(event.type_key, 0) + 1
        for type_key, count in counts.items():
            self.metrics.ingest(type_key, count)

    # ----- failures --------------------------------------------------------------------------

    def _store_is_full(self) -> HTTPError:
        """The 503 for a write Redis refused for maxmemory: Redis is up, the store is full."""
        self.metrics.store_full.inc()
        if not self.store_full:
            log.warning("redis refuses writes: maxmemory reached (the event store is full)")
        self.store_full = True
        self._set_redis(True)
        return unavailable(STORE_FULL_MESSAGE, STORE_FULL_RETRY_AFTER)

    def _redis_failed(self, exc: BaseException, writes: bool = False) -> HTTPError:
        self.metrics.redis_errors.inc()
        self._set_redis(False)
        log.warning("redis call failed: %s", exc)
        if not writes:
            message = "storage unavailable (Redis); retry later"
        elif isinstance(exc, RedisNotSent):
            message = "storage unavailable (Redis): nothing was stored; retry later"
        else:
            # Sent but unanswered (timeout, connection lost): Redis may still have run it.
            message = (
                "storage unavailable (Redis did not answer): the event(s) may have been "
                "stored; retry with the same id (a stored id is not stored again)"
            )
        return unavailable(message, REDIS_DOWN_RETRY_AFTER)
