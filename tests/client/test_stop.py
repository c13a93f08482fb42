"""SIGINT/SIGTERM end the client within `docker stop`'s 10 s grace, even when the server is gone."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator

import pytest

from tests.client.conftest import finish, start_client

pytestmark = pytest.mark.timeout(120)

# `docker stop` sends SIGTERM and kills the container 10 s later.
DOCKER_STOP_GRACE = 10.0


@pytest.fixture
def hanging_listener() -> Iterator[socket.socket]:
    """A port that accepts connections but never answers a request."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        yield sock


def first_connection(listener: socket.socket, timeout: float = 60) -> socket.socket:
    """Wait until the client connects: it is running and sending, however slow its start.

    A fixed sleep was not enough on a loaded machine: the signal arrived while the client was
    still importing, before its handlers were installed.
    """
    listener.settimeout(timeout)
    conn, _ = listener.accept()
    return conn


@pytest.mark.parametrize("server", ["refused", "hanging"])
def test_sigterm_with_the_server_unreachable_ends_in_time_with_the_summary(server: str) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    # Retries would go on for a minute; a request to the hanging server waits 10 s.
    proc = start_client(
        url,
        "--event-limit",
        "5000",
        "--event-delay-ms",
        "20",
        "--retry-seconds",
        "60",
        "--max-attempts",
        "1000",
        "--timeout-seconds",
        "10",
    )
    conn = first_connection(listener)
    if server == "refused":
        conn.close()
        listener.close()  # from now on nothing listens there: connections are refused
    time.sleep(1.0)  # retries (or a hanging request) under way
    assert proc.poll() is None
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    run = finish(proc, timeout=60)
    took = time.monotonic() - sent

    # The default grace (5 s) plus the interpreter's exit must stay inside docker stop's 10 s.
    assert took < DOCKER_STOP_GRACE - 1, f"took {took:.1f}s to exit after SIGTERM"
    assert run.returncode == 1, "events were given up on"
    assert run.summary.get("interrupted") == "yes"
    assert run.count("events_acknowledged") == 0
    assert run.count("events_failed") == run.count("events_created") > 0
    assert "Traceback" not in run.stderr
    listener.close()


def test_a_short_grace_is_configurable(hanging_listener: socket.socket) -> None:
    url = f"http://127.0.0.1:{hanging_listener.getsockname()[1]}"
    proc = start_client(
        url,
        "--event-limit",
        "5000",
        "--retry-seconds",
        "60",
        "--max-attempts",
        "1000",
        ESE_STOP_GRACE_SECONDS="0.5",
    )
    first_connection(hanging_listener)
    time.sleep(0.5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    run = finish(proc, timeout=60)
    took = time.monotonic() - sent

    assert took < 4, f"took {took:.1f}s to exit after SIGINT with a 0.5 s grace"
    assert run.returncode == 1
    assert run.count("events_failed") == run.count("events_created") > 0
