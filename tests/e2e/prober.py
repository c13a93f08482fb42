"""A probe writer beside the clients: one event at a time through the load balancer, each answer
kept with the time it was asked, so a drill can say when writes stopped and started again."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass

from tests.e2e import outside

PROBE_IP = "e2e-probe"
ACKNOWLEDGED = 201


@dataclass(frozen=True)
class Answer:
    """One probe request: when it was sent (monotonic), its status (0: no HTTP answer), the
    error message of a non-2xx answer, and the event's id."""

    sent: float
    status: int
    message: str
    event_id: str


class Prober(threading.Thread):
    """POSTs one event at a time through the load balancer until stopped (bounded in count and
    time); never retries, so each answer is one observation."""

    def __init__(
        self,
        token: str,
        max_seconds: float = 90,
        max_requests: int = 2000,
        pause: float = 0.05,
        timeout: float = 5,
    ) -> None:
        super().__init__(name="prober", daemon=True)
        self.token = token
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.pause = pause
        self.timeout = timeout
        self.answers: list[Answer] = []
        self.stop = threading.Event()

    @property
    def statuses(self) -> list[int]:
        return [a.status for a in self.answers]

    @property
    def acknowledged(self) -> set[str]:
        return {a.event_id for a in self.answers if a.status == ACKNOWLEDGED}

    def since(self, moment: float) -> list[Answer]:
        """The answers to requests sent at or after `moment` (time.monotonic())."""
        return [a for a in self.answers if a.sent >= moment]

    def first_acknowledged_after(self, moment: float) -> float | None:
        """Seconds from `moment` to the first acknowledged request sent after it."""
        for answer in self.since(moment):
            if answer.status == ACKNOWLEDGED:
                return answer.sent - moment
        return None

    def longest_outage(self) -> float:
        """The longest time between a refused request and the next acknowledged one that
        followed an acknowledged one (seconds): how long writers saw no success."""
        longest, failing_since = 0.0, None
        for answer in self.answers:
            if answer.status == ACKNOWLEDGED:
                if failing_since is not None:
                    longest = max(longest, answer.sent - failing_since)
                failing_since = None
            elif failing_since is None:
                failing_since = answer.sent
        if failing_since is not None and self.answers:
            longest = max(longest, self.answers[-1].sent - failing_since)
        return longest

    def summary(self) -> dict[int, int]:
        return {s: self.statuses.count(s) for s in sorted(set(self.statuses))}

    def finish(self) -> None:
        self.stop.set()
        self.join(self.timeout + 5)

    def run(self) -> None:
        headers = {"Content-Type": "application/json", **outside.bearer(self.token)}
        deadline = time.monotonic() + self.max_seconds
        run_id = uuid.uuid4().hex[:8]
        for n in range(self.max_requests):
            if self.stop.is_set() or time.monotonic() > deadline:
                return
            event_id = f"{PROBE_IP}-{run_id}-{n}"
            event = {
                "eventType": "CLICK_STREAM_EVENT",
                "timestamp": int(time.time() * 1000),
                "ip": PROBE_IP,
                "data": {"event": "BUTTON_CLICK_EVENT"},
                "id": event_id,
            }
            sent = time.monotonic()
            message = ""
            try:
                status, body = outside.request(
                    "POST",
                    f"{outside.LB}/event",
                    json.dumps(event).encode(),
                    headers,
                    timeout=self.timeout,
                )
                if status != ACKNOWLEDGED:
                    message = error_message(body)
            except OSError as exc:
                status, message = 0, str(exc)
            self.answers.append(Answer(sent, status, message, event_id))
            self.stop.wait(self.pause)


def error_message(body: bytes) -> str:
    """The `message` of a JSON error body, else the body's first characters."""
    try:
        return str(json.loads(body).get("message", ""))
    except (ValueError, AttributeError):
        return body[:200].decode(errors="replace")
