"""Retries are bounded: with nothing listening, ese-client gives up, says so and exits 1."""

from __future__ import annotations

from tests.client.conftest import run_client
from tests.tooling import free_port


def test_an_unreachable_server_is_retried_then_given_up_on() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    run = run_client(url, "--event-limit", "12", "--retry-seconds", "1", "--seed", "1", timeout=60)

    assert run.returncode == 1
    assert run.count("events_created") == run.count("events_failed") == 12
    assert run.count("events_acknowledged") == 0
    assert run.count("retries") > 0
    assert run.count("requests_sent") > run.count("retries")
    assert "gave up on" in run.stderr and "hint:" in run.stderr
    assert "Traceback" not in run.stderr


def test_attempts_bound_the_retries_too() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = run_client(url, "--event-limit", "3", "--max-attempts", "2", "--seed", "1", timeout=60)

    assert run.returncode == 1
    assert run.count("events_failed") == 3
    # Each request is tried twice: one retry per request.
    assert run.count("requests_sent") == 2 * run.count("retries")
