"""The summary line and the exit code."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import pytest

from ese_client import runner as runner_module
from ese_client.config import Settings
from ese_client.runner import Runner, Summary
from ese_client.sender import RetryPolicy
from tests.tooling import free_port


def _summary(**changes: object) -> Summary:
    values: dict[str, object] = {
        "created": 10,
        "requests": 4,
        "acknowledged": 10,
        "failed": 0,
        "retries": 1,
        "elapsed_seconds": 2.0,
        "interrupted": False,
    }
    values.update(changes)
    return Summary(**values)  # type: ignore[arg-type]


def test_summary_line_names_the_four_counts_on_one_line() -> None:
    line = _summary().line()
    assert "\n" not in line
    for part in (
        "events_created=10",
        "requests_sent=4",
        "events_acknowledged=10",
        "events_failed=0",
        "events_per_s=5",
    ):
        assert part in line.split()
    assert "interrupted" not in line
    assert "interrupted=yes" in _summary(interrupted=True).line()


def test_exit_code_is_non_zero_only_when_events_were_given_up_on() -> None:
    assert _summary().exit_code == 0
    assert _summary(interrupted=True).exit_code == 0
    assert _summary(acknowledged=9, failed=1).exit_code == 1
    assert _summary(crashed=True).exit_code == 1


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(base_seconds=0.1, cap_seconds=1.0)
    rng = random.Random(0)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        pauses = {policy.backoff(attempt, rng) for _ in range(50)}
        assert all(ceiling / 2 <= p <= ceiling for p in pauses)
        assert len(pauses) > 1, "jitter spreads the pauses"


def test_a_crashing_client_is_reported_in_one_line_and_fails_the_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken_plan(**_kwargs: object) -> Iterator[object]:
        raise RuntimeError("bug in the plan")
        yield  # pragma: no cover - makes this a generator

    monkeypatch.setattr(runner_module, "plan_ticks", broken_plan)
    settings = Settings(server=f"http://127.0.0.1:{free_port()}", limit=10, concurrency=2)
    summary = asyncio.run(Runner(settings, ip="10.0.0.1").run())

    assert summary.crashed and summary.exit_code == 1
    assert summary.requests == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "ese-client: client 1 crashed: RuntimeError('bug in the plan')",
        "ese-client: client 2 crashed: RuntimeError('bug in the plan')",
    ]
