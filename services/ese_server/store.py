"""Redis storage: one stream of events plus the /stats counters, changed by one Lua script.

Keys (prefix `ese`): `ese:events` (stream; entry fields `ip` and `e` = event JSON),
`ese:stats` (total, open, completed), `ese:stats:type`, `ese:stats:subtype`, `ese:stats:client`,
`ese:orders` (orderId -> latest state; ORDER_COMPLETED is final), `ese:orders:seen` and
`ese:stats:client:seen` (zsets: orderId / ip -> last seen ms; entries older than the retention
window, or beyond MAX_TRACKED_*, are dropped together with their counts), `ese:ids:<bucket>`
(hashes of idempotency claims, id -> stream id, one per time bucket; an id is remembered for
at least the retention window, at least 60 s). Needs Redis >= 7.0 (scripts replicated by
effect: they call TIME).

Replication (`ack_replicas` N > 0): an append is acknowledged only once `WAIT N` says N
replicas hold it; otherwise, or when the master refuses it for too few replicas (NOREPLICAS,
`min-replicas-to-write`), `append` raises `NotReplicated`. With Sentinels the client finds
the master through them (redis_client.py, sentinel.py).

`server_ts` is not stored in the payload: it is the millisecond part of the stream id, so the
stored event and its id can never disagree.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ese_server.redis_client import (
    Commands,
    Connect,
    RedisClient,
    RedisNoReplicas,
    RedisUnavailable,
)
from ese_server.redis_script import Script
from ese_server.sentinel import Sentinels
from ese_server.validation import CLICK_SUBTYPES, EVENT_TYPES, ORDER_STATES, CheckedEvent

if TYPE_CHECKING:
    from ese_server.config import Settings

CURSOR_RE = re.compile(r"0|[0-9]{1,20}(-[0-9]{1,20})?")
MAX_ID_PART = 2**64 - 1  # each half of a Redis stream id is an unsigned 64-bit integer
# Most events GET /events (no query) returns: one read of this many costs the shard ~40 MiB
# at its peak (replies, grouped JSON, body), which keeps it well inside its 150 MiB budget.
LEGACY_READ_CAP = 50_000
# /stats tracks orders and clients seen within the retention window, and at most this many
# (least recently seen dropped first), so neither structure grows forever.
MAX_TRACKED_ORDERS = 100_000
MAX_TRACKED_CLIENTS = 10_000

Entry = tuple[bytes, bytes, bytes]  # (stream id, ip, event JSON)


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What one append did: stream length after it, stream id and duplicate flag per event."""

    stream_length: int
    ids: list[bytes]
    duplicates: list[int]


class NotReplicated(RedisUnavailable):
    """An append fewer replicas confirmed than `ack_replicas` asks for: not acknowledged.

    `result` is what the master did: the events it stored (`duplicates` marks those it had
    already), or None when it refused the append (NOREPLICAS: nothing was stored). Either way a
    retry with the same ids is safe: it stores none of them twice, and its `duplicates` say
    which were stored before. `confirmed` replicas confirmed; `wanted` were asked for (0 when
    only the master's own `min-replicas-to-write` refused).
    """

    def __init__(
        self, message: str, result: AppendResult | None, confirmed: int, wanted: int
    ) -> None:
        super().__init__(message)
        self.result = result
        self.confirmed = confirmed
        self.wanted = wanted


def with_server_ts(payload: bytes, stream_id: bytes) -> bytes:
    """The stored event JSON with `server_ts` (ms part of the stream id) spliced in.

    WHY splice instead of parse+dump: reads return thousands of events; the payload is always
    a non-empty JSON object written by us, so replacing its closing brace is safe and cheap.
    """
    return payload[:-1] + b',"server_ts":' + stream_id.split(b"-", 1)[0] + b"}"


def valid_cursor(text: str) -> bool:
    """True for '0', '<ms>' or '<ms>-<seq>' with both parts within Redis' 64-bit range."""
    if not CURSOR_RE.fullmatch(text):
        return False
    return all(int(part) <= MAX_ID_PART for part in text.split("-"))


def _entries(reply: list[Any]) -> list[Entry]:
    out: list[Entry] = []
    for stream_id, fields in reply:
        values = dict(zip(fields[::2], fields[1::2], strict=True))
        out.append((stream_id, values.get(b"ip", b""), values[b"e"]))
    return out


def _result(reply: list[Any]) -> AppendResult:
    length, ids, dups = reply
    return AppendResult(int(length), ids, dups)


def _ints(flat: list[bytes]) -> dict[str, int]:
    return {k.decode(errors="replace"): int(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}


class Store:
    """Async access to the event stream and counters."""

    def __init__(
        self,
        url: str,
        retention_seconds: int,
        prefix: str = "ese",
        connect: Connect | None = None,
        *,
        sentinels: Sequence[tuple[str, int]] = (),
        master_name: str = "ese",
        ack_replicas: int = 0,
        ack_timeout_ms: int = 1000,
    ) -> None:
        # No retry inside: a failed call becomes a 503 and the client retries (with its event
        # ids, idempotently). Retrying here would hide an outage behind long latencies.
        if sentinels:
            if connect is not None:
                raise ValueError(
                    "an injected Redis client takes a plain REDIS_URL, not Sentinels; "
                    "unset ESE_REDIS_SENTINELS"
                )
            # One locator for both clients: they ask the same Sentinels for the same master.
            connect = functools.partial(RedisClient, locator=Sentinels(sentinels, master_name))
        make = RedisClient if connect is None else connect
        self.redis: Commands = make(url)
        # Acknowledged appends have a connection of their own (RedisClient opens it when first
        # used). WHY: WAIT blocks its connection in Redis until the replicas confirm, and reads
        # and the monitor must not queue behind it. Two such connections (the master runs one's
        # appends while the other waits) were measured and did not pay: batches kept 0.80x of
        # ack 0 over HTTP instead of 0.86-0.88x with one.
        acked = make(url) if ack_replicas else self.redis
        self.ack_replicas = ack_replicas
        self.ack_timeout_ms = ack_timeout_ms
        self.retention_ms = retention_seconds * 1000
        self.idempotency_ttl_ms = max(retention_seconds, 60) * 1000
        self.prefix = prefix
        self.k_stream = f"{prefix}:events"
        self.k_stats = f"{prefix}:stats"
        self.k_type = f"{prefix}:stats:type"
        self.k_sub = f"{prefix}:stats:subtype"
        self.k_client = f"{prefix}:stats:client"
        self.k_orders = f"{prefix}:orders"
        self.k_orders_seen = f"{prefix}:orders:seen"
        self.k_clients_seen = f"{prefix}:stats:client:seen"
        here = Path(__file__).parent
        append_lua = (here / "append.lua").read_text("utf-8")
        self._append = Script(self.redis, append_lua)
        self._acked = Script(acked, append_lua)
        self._trim = Script(self.redis, (here / "trim.lua").read_text("utf-8"))
        self._stats = Script(self.redis, (here / "stats.lua").read_text("utf-8"))
        self._keys = [
            self.k_stream,
            self.k_stats,
            self.k_type,
            self.k_sub,
            self.k_client,
            self.k_orders,
            self.k_orders_seen,
            self.k_clients_seen,
        ]
        self._head = [
            self.retention_ms,
            f"{prefix}:ids:",
            self.idempotency_ttl_ms,
            self.retention_ms,  # horizon of the order and client tracking
            MAX_TRACKED_ORDERS,
            MAX_TRACKED_CLIENTS,
        ]

    @classmethod
    def from_settings(cls, settings: Settings, connect: Connect | None = None) -> Store:
        """The store of one shard, as its settings describe it.

        `connect`: an injected client for a plain REDIS_URL (benchmarks inject redis-py's);
        None: the project's own, which also finds the master through the Sentinels."""
        return cls(
            settings.redis_url,
            settings.retention_seconds,
            settings.key_prefix,
            connect,
            sentinels=settings.redis_sentinels,
            master_name=settings.redis_master_name,
            ack_replicas=settings.ack_replicas,
            ack_timeout_ms=settings.ack_timeout_ms,
        )

    def connected_to(self) -> set[tuple[str, int]]:
        """(host, port) of the node each open connection goes to (the master, normally one)."""
        clients = (self.redis, self._acked.client)
        found = {c.address for c in clients if isinstance(c, RedisClient)}
        return {address for address in found if address is not None}

    async def close(self) -> None:
        """Close the connections."""
        await self.redis.close()
        if self._acked.client is not self.redis:
            await self._acked.client.close()

    async def append(
        self,
        events: Sequence[CheckedEvent],
        late: Callable[[AppendResult], None] | None = None,
    ) -> AppendResult:
        """Append all events (skipping ids already stored) in one atomic script call.

        With `ack_replicas` N > 0, return only once N replicas hold them (one WAIT for every
        append sent in the same loop turn); raise `NotReplicated` when fewer confirmed within
        `ack_timeout_ms`, or when the master refused the append for too few replicas.
        `late(result)` runs if Redis answers after this call raised `RedisNoReply` (it timed
        out, but Redis ran the script after all).
        """
        args: list[Any] = list(self._head)
        for ev in events:
            args += (ev.id, ev.payload, ev.type_key, ev.subtype, ev.ip, ev.order_id)
        on_late = None if late is None else (lambda reply: late(_result(reply)))
        wanted = self.ack_replicas
        try:
            if not wanted:
                return _result(await self._append(self._keys, args, on_late))
            reply, confirmed = await self._acked.replicated(
                self._keys, args, wanted, self.ack_timeout_ms, on_late
            )
        except RedisNoReplicas as exc:
            raise NotReplicated(
                f"Redis refused the append for too few replicas ({exc}); nothing was stored",
                None,
                0,
                wanted,
            ) from None
        result = _result(reply)
        if confirmed < wanted:
            raise NotReplicated(
                f"{confirmed} of {wanted} replica(s) confirmed the append within "
                f"{self.ack_timeout_ms} ms; the events are stored on the master, not acknowledged",
                result,
                confirmed,
                wanted,
            )
        return result

    async def trim(self) -> int:
        """Drop events older than the retention window, even when Redis is over maxmemory;
        returns how many were dropped."""
        return int(await self._trim([self.k_stream], [self.retention_ms]))

    def _window_start_ms(self) -> int:
        return int(time.time() * 1000) - self.retention_ms

    async def read_window(self, cap: int = LEGACY_READ_CAP) -> tuple[list[Entry], bool]:
        """The newest `cap` events inside the retention window, oldest first, and whether
        older events of the window were left out (XREVRANGE: the newest are what matters)."""
        start = str(self._window_start_ms())
        reply = await self.redis.execute("XREVRANGE", self.k_stream, "+", start, "COUNT", cap + 1)
        truncated = len(reply) > cap
        entries = _entries(reply[:cap])
        entries.reverse()
        return entries, truncated

    async def read_since(self, cursor: str, limit: int) -> list[Entry]:
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
        return await self._xrange(f"{first[0]}-{first[1]}", limit)

    async def _xrange(self, start: str, count: int) -> list[Entry]:
        reply = await self.redis.execute("XRANGE", self.k_stream, start, "+", "COUNT", count)
        return _entries(reply)

    async def stream_length(self) -> int:
        """Entries currently in the stream."""
        return int(await self.redis.execute("XLEN", self.k_stream))

    async def stats(self, retention_seconds: int) -> dict[str, Any]:
        """The /stats document, read in one script call (a consistent snapshot)."""
        keys = [self.k_stats, self.k_type, self.k_sub, self.k_client, self.k_stream]
        base, by_type, by_sub, clients, length = await self._stats(keys, [])
        types = dict.fromkeys((*EVENT_TYPES, "other"), 0)
        types.update(_ints(by_type))
        subtypes = dict.fromkeys((*CLICK_SUBTYPES, *ORDER_STATES), 0)
        subtypes.update(_ints(by_sub))
        totals = _ints(base)
        return {
            "total": totals.get("total", 0),
            "by_type": types,
            "by_subtype": subtypes,
            "clients": _ints(clients),
            "orders": {"open": totals.get("open", 0), "completed": totals.get("completed", 0)},
            "stream_length": int(length),
            "retention_seconds": retention_seconds,
        }
