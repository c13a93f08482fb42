"""HTTP transport of ese-client: POST /event and POST /events with bounded, idempotent retries.

A request is retried on connection errors, timeouts, 5xx (503 while Redis is down) and 429, with
exponential backoff and jitter, until `max_attempts` or `retry_seconds` is used up. The retry
sends the very same body, so the same event ids: the server stores an id once and answers the
retry with the usual 201/200, which counts as acknowledged. Any other 4xx is final: its events
count as failed and the first few rejections are reported on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import aiohttp
import orjson

# A rejection that no retry can fix and that will hit every request: stop the run early.
FATAL_STATUSES = {401: "unauthorized", 403: "forbidden", 404: "not found"}
FATAL_HINTS = {
    401: "set ESE_INGEST_TOKEN / --ingest-token to the ingest shards' token",
    403: "point REACT_APP_BE_SERVER at an ingest shard (or the load balancer), not analytics",
    404: "REACT_APP_BE_SERVER must be the server's base URL, without /event",
}
MAX_REPORTED = 5


@dataclass
class Counters:
    """What the summary line reports; `created == acknowledged + failed` once a run ended."""

    created: int = 0
    requests: int = 0
    acknowledged: int = 0
    failed: int = 0
    retries: int = 0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded in attempts and in total time."""

    max_attempts: int = 20
    max_seconds: float = 30.0
    base_seconds: float = 0.05
    cap_seconds: float = 2.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Pause before retry number `attempt` (1 = first retry): half fixed, half jitter."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1))
        # "Equal jitter": never zero (no hammering a 503), yet spread so that many clients
        # that failed together do not come back together.
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


class Sender:
    """Posts events to one ese-server base URL and keeps the counters."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        token: str | None,
        policy: RetryPolicy,
        counters: Counters,
        rng: random.Random | None = None,
        err: TextIO | None = None,
    ) -> None:
        self._session = session
        self._event_url = f"{base_url}/event"
        self._events_url = f"{base_url}/events"
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._policy = policy
        self.counters = counters
        self._rng = rng or random.Random()
        self._err = err or sys.stderr
        self._reported = 0
        self.fatal: str | None = None
        # Set by `stop()`: wakes every backoff pause; no retry may end after `_deadline`.
        self._stopping = asyncio.Event()
        self._deadline: float | None = None

    def stop(self, grace_seconds: float) -> None:
        """The run is stopping: retries under way get `grace_seconds` in total, then give up."""
        if self._deadline is None:
            self._deadline = asyncio.get_running_loop().time() + grace_seconds
        self._stopping.set()

    async def send_event(self, event: dict[str, Any]) -> bool:
        """POST one event to /event; True when the server acknowledged it."""
        return await self._post(self._event_url, orjson.dumps(event), 1)

    async def send_batch(self, events: Sequence[dict[str, Any]]) -> bool:
        """POST a batch to /events (stored all or nothing); True when acknowledged."""
        body = orjson.dumps({"events": list(events)})
        return await self._post(self._events_url, body, len(events))

    def _report(self, line: str) -> None:
        """Print a problem on stderr, at most MAX_REPORTED times so a bad run stays readable."""
        self._reported += 1
        if self._reported <= MAX_REPORTED:
            print(f"ese-client: {line}", file=self._err, flush=True)
        elif self._reported == MAX_REPORTED + 1:
            print("ese-client: further problems not shown", file=self._err, flush=True)

    async def _post(self, url: str, body: bytes, count: int) -> bool:
        """Send `body` until acknowledged, rejected or out of retries; update the counters."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        attempt = 0
        try:
            while True:
                attempt += 1
                self.counters.requests += 1
                problem: str
                try:
                    async with self._session.post(url, data=body, headers=self._headers) as resp:
                        payload = await resp.read()
                        status = resp.status
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    problem = f"{type(exc).__name__}: {exc}".rstrip(": ")
                else:
                    if 200 <= status < 300:
                        self.counters.acknowledged += count
                        return True
                    if status < 500 and status != 429:
                        self._reject(url, status, payload, count)
                        return False
                    problem = f"HTTP {status}"
                waited = loop.time() - started
                pause = self._policy.backoff(attempt, self._rng)
                stopping = self._deadline is not None and loop.time() + pause > self._deadline
                if (
                    attempt >= self._policy.max_attempts
                    or waited + pause > self._policy.max_seconds
                    or stopping
                ):
                    self.counters.failed += count
                    why = "the client is stopping; " if stopping else ""
                    self._report(
                        f"gave up on {count} event(s) to {url} after {attempt} attempt(s) "
                        f"in {waited:.1f}s ({problem}); {why}"
                        "hint: is the server up and Redis reachable?"
                    )
                    return False
                self.counters.retries += 1
                await self._pause(pause)
        except asyncio.CancelledError:
            # Aborted (second SIGINT/SIGTERM): these events were never acknowledged.
            self.counters.failed += count
            raise

    async def _pause(self, seconds: float) -> None:
        """Back off for `seconds`, cut short when the run starts stopping (its deadline rules)."""
        if self._stopping.is_set():
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _reject(self, url: str, status: int, payload: bytes, count: int) -> None:
        """Count a final 4xx and report it with the server's own message."""
        self.counters.failed += count
        message = _message_of(payload)
        if status in FATAL_STATUSES and self.fatal is None:
            self.fatal = (
                f"{url} answered {status} {FATAL_STATUSES[status]} ({message}); "
                f"hint: {FATAL_HINTS[status]}"
            )
            self._report(f"stopping: {self.fatal}")
            return
        self._report(f"{url} rejected {count} event(s) with {status}: {message}")


def _message_of(payload: bytes) -> str:
    """The `message` (and first error) of an ese-server error body, else a short raw excerpt."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload[:200].decode("utf-8", "replace") or "empty body"
    if isinstance(body, dict) and "message" in body:
        errors = body.get("errors") or []
        first = f" - {_error_text(errors[0])}" if isinstance(errors, list) and errors else ""
        return f"{body['message']}{first}"
    return str(body)[:200]


def _error_text(error: object) -> str:
    """One entry of `errors`: `field: message` when it has that shape, else its text."""
    if isinstance(error, dict) and "message" in error:
        field = error.get("field")
        return f"{field}: {error['message']}" if field else str(error["message"])
    return str(error)
