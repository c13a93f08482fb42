"""Ticks after a stall: the schedule is re-based, missed ticks are not fired in a burst."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from aiohttp import web

from ese_client.config import Settings
from ese_client.runner import Runner, Schedule
from tests.tooling import free_port

pytestmark = pytest.mark.timeout(60)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_on_time_ticks_keep_the_grid_and_small_lateness_does_not_drift() -> None:
    clock = FakeClock()
    schedule = Schedule(0.3, clock)
    assert schedule.due(0.0) == 100.0
    clock.now = 100.31  # 10 ms of timer jitter
    assert schedule.due(0.3) == pytest.approx(100.3)
    assert schedule.due(0.6) == pytest.approx(100.6), "jitter does not shift the grid"
    assert schedule.rebased == 0


def test_a_stall_rebases_instead_of_catching_up() -> None:
    clock = FakeClock()
    schedule = Schedule(0.3, clock)
    assert schedule.due(0.0) == 100.0
    clock.now = 104.0  # a 4 s outage blocked the tick loop
    # The tick planned at 0.3 s fires now; the following ones keep their spacing from now.
    assert schedule.due(0.3) == 104.0
    assert schedule.due(0.6) == pytest.approx(104.3)
    assert schedule.due(0.9) == pytest.approx(104.6)
    assert schedule.rebased == 1


def test_no_delay_means_no_waiting() -> None:
    clock = FakeClock()
    schedule = Schedule(0.0, clock)
    clock.now = 150.0
    assert schedule.due(0.0) <= clock.now
    assert schedule.rebased == 0


def test_the_runner_does_not_burst_after_a_stalled_batch() -> None:
    """A real runner against a stub server whose first POST /events hangs for 1.2 s."""
    created_at: list[float] = []
    stall = {"first": True, "released": 0.0}

    async def events(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        if stall["first"]:
            stall["first"] = False
            await asyncio.sleep(1.2)
            stall["released"] = time.monotonic()
        return web.json_response({"events": body["events"]})

    async def event(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        if body["data"]["state"] == "ORDER_CREATED":
            created_at.append(time.monotonic())
        return web.json_response(body, status=201)

    async def scenario() -> None:
        app = web.Application()
        app.router.add_post("/events", events)
        app.router.add_post("/event", event)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            settings = Settings(
                server=f"http://127.0.0.1:{port}", delay_ms=100, limit=100_000, seed=3
            )
            client = Runner(settings, ip="10.0.0.1")
            task = asyncio.create_task(client.run())
            for _ in range(100):  # bounded: the stall ends after 1.2 s
                await asyncio.sleep(0.05)
                if stall["released"]:
                    break
            await asyncio.sleep(0.6)
            client.stop()
            summary = await asyncio.wait_for(task, 15)
            assert summary.failed == 0
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
    released = stall["released"]
    assert released, "the stub never stalled"
    after = [t - released for t in created_at if t >= released]
    # About 6 ticks at 100 ms in the 0.6 s after the stall; a catch-up would fire ~12 at once.
    burst = [t for t in after if t < 0.05]
    assert len(burst) <= 1, f"{len(burst)} order cycles started within 50 ms after the stall"
    assert 3 <= len(after) <= 9
