"""Redis storage: one stream of events plus the /stats counters, changed by one Lua script.

Keys (prefix `ese`): `ese:events` (stream; entry fields `ip` and `e` = event JSON),
`ese:stats` (total, open, completed), `ese:stats:type`, `ese:stats:subtype`, `ese:stats:client`,
`ese:orders` (orderId -> latest state), `ese:id:<id>` (idempotency, expires after retention).

`server_ts` is not stored in the payload: it is the millisecond part of the stream id, so the
stored event and its id can never disagree.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ese_server.validation import CLICK_SUBTYPES, EVENT_TYPES, ORDER_STATES, CheckedEvent

CURSOR_RE = re.compile(r"0|[0-9]{1,20}(-[0-9]{1,20})?")
MAX_ID_PART = 2**64 - 1  # each half of a Redis stream id is an unsigned 64-bit integer
LEGACY_READ_CAP = 200_000  # most events GET /events (no query) returns, to bound memory


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What one append did: stream length after it, stream id and duplicate flag per event."""

    stream_length: int
    ids: list[bytes]
    duplicates: list[bool]


def with_server_ts(payload: bytes, stream_id: bytes) -> bytes:
    """The stored event JSON with `server_ts` (ms part of the stream id) spliced in.

    WHY splice instead of parse+dump: reads return thousands of events; the payload is always
    a non-empty JSON object written by us, so replacing its closing brace is safe and cheap.
    """
    return payload[:-1] + b',"server_ts":' + stream_id.split(b"-", 1)[0] + b"}"


class Store:
    """Async access to the event stream and counters (one connection pool per shard)."""

    def __init__(self, url: str, retention_seconds: int, prefix: str = "ese") -> None:
        # No client-side retry: a failed call becomes a 503 and the client retries (with its
        # event ids, idempotently). Retrying here could hide an outage behind long latencies.
        self.redis = aioredis.Redis.from_url(
            url,
            decode_responses=False,
            socket_timeout=5,
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), 0),
            max_connections=256,
        )
        self.retention_ms = retention_seconds * 1000
        self.idempotency_ttl_ms = max(retention_seconds, 60) * 1000
        self.prefix = prefix
        self.k_stream = f"{prefix}:events"
        self.k_stats = f"{prefix}:stats"
        self.k_type = f"{prefix}:stats:type"
        self.k_sub = f"{prefix}:stats:subtype"
        self.k_client = f"{prefix}:stats:client"
        self.k_orders = f"{prefix}:orders"
        source = (Path(__file__).parent / "append.lua").read_text("utf-8")
        # register_script reloads the script by itself after a Redis restart (NOSCRIPT).
        self._append = self.redis.register_script(source)
        self._keys = [
            self.k_stream,
            self.k_stats,
            self.k_type,
            self.k_sub,
            self.k_client,
            self.k_orders,
        ]

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.redis.aclose()

    async def ping(self) -> bool:
        """True if Redis answers."""
        return bool(await self.redis.ping())

    async def append(self, events: Sequence[CheckedEvent]) -> AppendResult:
        """Append all events (skipping ids already stored) in one atomic script call."""
        args: list[Any] = [self.retention_ms, f"{self.prefix}:id:", self.idempotency_ttl_ms]
        for ev in events:
            args += (ev.id, ev.payload, ev.type_key, ev.subtype, ev.ip, ev.order_id)
        length, ids, dups = await self._append(keys=self._keys, args=args)
        return AppendResult(int(length), list(ids), [bool(d) for d in dups])

    def _window_start_ms(self) -> int:
        return int(time.time() * 1000) - self.retention_ms

    async def read_window(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Every event inside the retention window, oldest first (capped)."""
        start = str(self._window_start_ms())
        return await self._xrange(start, LEGACY_READ_CAP)

    async def read_since(self, cursor: str, limit: int) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Up to `limit` events after `cursor` ('0' = oldest retained), oldest first."""
        window = self._window_start_ms()
        ms_text, _, seq_text = cursor.partition("-")
        ms, seq = int(ms_text), int(seq_text) if seq_text else None
        # The first id strictly after the cursor; a bare ms cursor means "after that whole ms".
        first = (ms, seq + 1) if seq is not None and seq < MAX_ID_PART else (ms + 1, 0)
        if cursor == "0" or first[0] < window:
            first = (window, 0)
        if first[0] > MAX_ID_PART:
            return []
        start = f"{first[0]}-{first[1]}"
        return await self._xrange(start, limit)

    async def _xrange(self, start: str, count: int) -> list[tuple[bytes, dict[bytes, bytes]]]:
        entries: Any = await self.redis.xrange(self.k_stream, start, "+", count=count)
        return list(entries)

    async def stream_length(self) -> int:
        """Entries currently in the stream."""
        return int(await self.redis.xlen(self.k_stream))

    async def stats(self, retention_seconds: int) -> dict[str, Any]:
        """The /stats document, read in one pipelined round trip."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.k_stats)
            pipe.hgetall(self.k_type)
            pipe.hgetall(self.k_sub)
            pipe.hgetall(self.k_client)
            pipe.xlen(self.k_stream)
            base, by_type, by_sub, clients, length = await pipe.execute()

        def ints(raw: dict[bytes, bytes]) -> dict[str, int]:
            return {k.decode(errors="replace"): int(v) for k, v in raw.items()}

        types = dict.fromkeys((*EVENT_TYPES, "other"), 0)
        types.update(ints(by_type))
        subtypes = dict.fromkeys((*CLICK_SUBTYPES, *ORDER_STATES), 0)
        subtypes.update(ints(by_sub))
        totals = ints(base)
        return {
            "total": totals.get("total", 0),
            "by_type": types,
            "by_subtype": subtypes,
            "clients": ints(clients),
            "orders": {"open": totals.get("open", 0), "completed": totals.get("completed", 0)},
            "stream_length": int(length),
            "retention_seconds": retention_seconds,
        }


def valid_cursor(text: str) -> bool:
    """True for '0', '<ms>' or '<ms>-<seq>' with both parts within Redis' 64-bit range."""
    if not CURSOR_RE.fullmatch(text):
        return False
    return all(int(part) <= MAX_ID_PART for part in text.split("-"))
