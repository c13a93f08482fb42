"""Drive the simulation plan over HTTP: ticks, order life cycles, click batches, stop and abort.

One process runs `concurrency` simulated clients as asyncio tasks sharing one keep-alive
connection pool. Per client, each order life cycle is a task that sends its states one after
the other (each waits for the previous one's answer), so the states of one order always reach
the server in life-cycle order; click events are buffered and sent in batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from ese_client.config import Settings
from ese_client.identity import own_ipv4
from ese_client.sender import Counters, RetryPolicy, Sender
from ese_client.simulation import Tick, materialize, plan_ticks, split_limit

# Open order life cycles per client. With delay 0 ticks come as fast as the click batches are
# acknowledged; this bound is the back-pressure that keeps the number of waiting tasks and open
# connections finite.
MAX_OPEN_CYCLES = 32


@dataclass(frozen=True)
class Summary:
    """The outcome of a run, printed as one line."""

    created: int
    requests: int
    acknowledged: int
    failed: int
    retries: int
    elapsed_seconds: float
    interrupted: bool
    crashed: bool = False

    @property
    def exit_code(self) -> int:
        """0 when no event was given up on (and nothing crashed), else 1."""
        return 1 if self.failed or self.crashed else 0

    def line(self) -> str:
        """The one summary line: key=value pairs, easy to read and to grep."""
        rate = self.acknowledged / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0
        return (
            f"ese-client summary: events_created={self.created} requests_sent={self.requests} "
            f"events_acknowledged={self.acknowledged} events_failed={self.failed} "
            f"retries={self.retries} elapsed_s={self.elapsed_seconds:.2f} "
            f"events_per_s={rate:.0f}" + (" interrupted=yes" if self.interrupted else "")
        )


class Schedule:
    """When each tick is due: `delay` apart, re-based after a stall instead of catching up.

    A tick late by less than half a delay (timer jitter) keeps the grid, so the rate stays
    exact; one later than that (the tick loop waited on a slow batch, a server outage) starts a
    new grid at now, so missed ticks are skipped, not fired in a burst.
    """

    def __init__(self, delay_seconds: float, clock: Callable[[], float]) -> None:
        self.delay = delay_seconds
        self._clock = clock
        self._origin = clock()
        self.rebased = 0

    def due(self, start_seconds: float) -> float:
        """The clock time at which the tick planned `start_seconds` after the start is due."""
        deadline = self._origin + start_seconds
        now = self._clock()
        if self.delay > 0 and now - deadline > self.delay / 2:
            self._origin = now - start_seconds
            self.rebased += 1
            return now
        return deadline


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Runner:
    """One run of ese-client. `stop()` ends it gracefully, `abort()` at once."""

    def __init__(self, settings: Settings, *, ip: str | None = None, run_id: str | None = None):
        self.settings = settings
        self.ip = ip or own_ipv4()
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.counters = Counters()
        self._stop = asyncio.Event()
        self._instances: list[asyncio.Task[None]] = []
        self._interrupted = False
        self._sender: Sender | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    def stop(self) -> None:
        """Create no more events; flush the buffers and finish the requests under way.

        All of that gets `stop_grace_seconds` in total: backoff pauses end at once, no retry is
        planned past the deadline, and whatever is still unacknowledged then is given up on.
        """
        self._interrupted = True
        self._stop.set()
        if self._watchdog is not None:
            return
        grace = self.settings.stop_grace_seconds
        if self._sender is not None:
            self._sender.stop(grace)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not running (yet): nothing under way to bound
        self._watchdog = loop.call_later(grace, self._grace_over)

    def _grace_over(self) -> None:
        """The stop's grace period is used up: requests still under way are given up on."""
        if any(not task.done() for task in self._instances):
            print(
                f"ese-client: stop grace of {self.settings.stop_grace_seconds:g}s used up, "
                "giving up on unacknowledged events; hint: ESE_STOP_GRACE_SECONDS sets it",
                file=sys.stderr,
                flush=True,
            )
            self._cancel_all()

    def abort(self) -> None:
        """Cancel everything now; events not yet acknowledged count as failed."""
        self.stop()
        self._cancel_all()

    def _cancel_all(self) -> None:
        for task in self._instances:
            task.cancel()

    async def run(self) -> Summary:
        """Run every simulated client to its share of the limit (or until stopped)."""
        settings = self.settings
        started = time.perf_counter()
        connector = aiohttp.TCPConnector(limit=max(16, 8 * settings.concurrency))
        # Time the request on the socket, not in total: a request that waits for a free pooled
        # connection has not reached the server yet and must not time out (and be re-counted).
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=settings.timeout_seconds, sock_read=settings.timeout_seconds
        )
        policy = RetryPolicy(max_attempts=settings.max_attempts, max_seconds=settings.retry_seconds)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            sender = Sender(
                session,
                settings.base_url,
                token=settings.token,
                policy=policy,
                counters=self.counters,
            )
            self._sender = sender
            if self._stop.is_set():
                sender.stop(settings.stop_grace_seconds)
            shares = split_limit(settings.limit, settings.concurrency)
            for number, share in enumerate(shares, start=1):
                rng = random.Random(None if settings.seed is None else settings.seed + number)
                coro = self._run_client(sender, number, share, rng)
                self._instances.append(asyncio.create_task(coro))
            results = await asyncio.gather(*self._instances, return_exceptions=True)
        if self._watchdog is not None:
            self._watchdog.cancel()
        crashed = False
        for number, result in enumerate(results, start=1):
            if isinstance(result, Exception):
                # A bug, not a server problem: say so in one line and fail the run.
                crashed = True
                print(f"ese-client: client {number} crashed: {result!r}", file=sys.stderr)
        counters = self.counters
        return Summary(
            created=counters.created,
            requests=counters.requests,
            acknowledged=counters.acknowledged,
            failed=counters.failed,
            retries=counters.retries,
            elapsed_seconds=time.perf_counter() - started,
            interrupted=self._interrupted,
            crashed=crashed,
        )

    def _halted(self, sender: Sender) -> bool:
        return self._stop.is_set() or sender.fatal is not None

    async def _sleep_until(self, deadline: float) -> None:
        """Sleep until the loop time `deadline`, waking early when the run is stopped."""
        pause = deadline - asyncio.get_running_loop().time()
        if pause <= 0 or self._stop.is_set():
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), pause)

    async def _run_client(
        self, sender: Sender, number: int, share: int, rng: random.Random
    ) -> None:
        """One simulated client: a tick every delay_ms until its share of events is created."""
        settings = self.settings
        identity = f"{self.ip}-{number}"
        schedule = Schedule(settings.delay_ms / 1000, asyncio.get_running_loop().time)
        buffer: list[dict[str, object]] = []
        cycles: set[asyncio.Task[None]] = set()
        open_cycles = asyncio.Semaphore(MAX_OPEN_CYCLES)
        plan = plan_ticks(
            rng=rng,
            run_id=self.run_id,
            instance=number,
            limit=share,
            delay_ms=settings.delay_ms,
            order_step_ms=settings.order_step_ms,
        )
        try:
            for tick in plan:
                await self._sleep_until(schedule.due(tick.start_ms / 1000))
                await open_cycles.acquire()
                if self._halted(sender):
                    open_cycles.release()
                    break
                cycle = asyncio.create_task(self._run_order(sender, tick, identity))
                cycles.add(cycle)
                cycle.add_done_callback(cycles.discard)
                cycle.add_done_callback(lambda _task: open_cycles.release())
                now = _now_ms()
                for planned in tick.clicks:
                    buffer.append(materialize(planned, identity, now))
                    self.counters.created += 1
                    if len(buffer) >= settings.batch_size:
                        batch, buffer = buffer, []
                        await sender.send_batch(batch)
            if buffer:
                # The flush at the end and after SIGINT/SIGTERM.
                batch, buffer = buffer, []
                await sender.send_batch(batch)
            await asyncio.gather(*cycles)
        except asyncio.CancelledError:
            self.counters.failed += len(buffer)
            for cycle in list(cycles):
                cycle.cancel()
            await asyncio.gather(*cycles, return_exceptions=True)
            raise

    async def _run_order(self, sender: Sender, tick: Tick, identity: str) -> None:
        """Send one order's states in order, each at its offset after the cycle's start."""
        start = asyncio.get_running_loop().time()
        for planned in tick.order:
            await self._sleep_until(start + planned.offset_ms / 1000)
            if self._halted(sender):
                return  # a stopped cycle stays open, as a disrupted one does
            event = materialize(planned, identity, _now_ms())
            self.counters.created += 1
            await sender.send_event(event)
