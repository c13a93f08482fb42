"""Wait until every service of a project is healthy, with progress and a deadline.

Compose v1 has no `up --wait`, so the containers' health is polled through the Docker SDK.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ese.errors import EseError
from ese.host.sdk import ContainerInfo


class NotHealthy(EseError):
    """Some services did not become healthy; `services` names them."""

    def __init__(self, what: str, hint: str, services: Sequence[str]) -> None:
        super().__init__(what, hint)
        self.services = list(services)


def summarize(services: Iterable[str], found: Sequence[ContainerInfo]) -> dict[str, str]:
    """Per expected service: 'ok' or its state ('missing' when it has no container)."""
    out = {}
    for svc in services:
        mine = [c for c in found if c.service == svc]
        if not mine:
            out[svc] = "missing"
        elif all(c.ok for c in mine):
            out[svc] = "ok"
        else:
            out[svc] = next(c.state for c in mine if not c.ok)
    return out


def restart_loops(found: Sequence[ContainerInfo], first: dict[str, int]) -> list[tuple[str, str]]:
    """(service, why) for containers that are restarting or restarted during the wait.

    Why at once: a container in a restart loop never turns healthy, so waiting out the whole
    deadline only delays its logs.
    """
    out = []
    for c in found:
        seen = first.setdefault(c.name, c.restarts)
        if c.status == "restarting":
            out.append((c.service, f"restarting, {c.restarts} restarts"))
        elif c.restarts > seen:
            out.append((c.service, f"restarted {c.restarts - seen} time(s) during the wait"))
    return out


@dataclass(frozen=True)
class Round:
    """One look at what is being waited for: what is not ready yet (name -> state), and a
    failure that must end the wait at once (what, hint, names) or None."""

    bad: dict[str, str]
    fatal: tuple[str, str, list[str]] | None = None


@dataclass(frozen=True)
class Wording:
    """How a wait speaks: `done` after "all N ...", `ready` in "3/7 ready", and the hint at
    the deadline."""

    done: str
    ready: str
    late: str
    late_hint: str


@dataclass(frozen=True)
class Pace:
    """How a wait reports and keeps time. Tests pass a fake clock and sleep; unset, print and
    the time module are looked up at each call."""

    report: Callable[[str], None] | None = None
    clock: Callable[[], float] | None = None
    sleep: Callable[[float], None] | None = None
    interval: float = 2.0

    def say(self, line: str) -> None:
        (self.report or print)(line)

    def now(self) -> float:
        return (self.clock or time.monotonic)()

    def pause(self) -> None:
        (self.sleep or time.sleep)(self.interval)


DEFAULT_PACE = Pace()
QUICK_PACE = Pace(interval=0.5)  # for views that change within a second (HAProxy, DNS)


def wait_for(
    look: Callable[[], Round],
    total: int,
    timeout: float,
    words: Wording,
    error: type[NotHealthy],
    pace: Pace = DEFAULT_PACE,
) -> float:
    """Poll `look` until nothing is bad, printing a progress line when it changes; return the
    seconds it took. `error` at the deadline, or at once for a fatal round."""
    start = pace.now()
    last = ""
    while True:
        now = look()
        elapsed = pace.now() - start
        if now.fatal:
            raise error(*now.fatal)
        if not now.bad:
            pace.say(f"all {total} {words.done} after {elapsed:.0f}s")
            return elapsed
        states = ", ".join(f"{s} ({st})" for s, st in now.bad.items())
        line = f"{total - len(now.bad)}/{total} {words.ready}; waiting for {states}"
        if line != last:
            pace.say(f"[{elapsed:4.0f}s] {line}")
            last = line
        if elapsed >= timeout:
            what = f"{words.late} after {timeout:.0f}s: {states}"
            raise error(what, words.late_hint, list(now.bad))
        pace.pause()


HEALTH = Wording(
    "services healthy",
    "healthy",
    "not healthy",
    "see the log lines above; raise the deadline with INVOKE_ESE_HEALTH_TIMEOUT",
)


def wait_healthy(
    poll: Callable[[], Sequence[ContainerInfo]],
    services: Sequence[str],
    timeout: float,
    pace: Pace = DEFAULT_PACE,
) -> None:
    """Return when all `services` are ok; raise NotHealthy at the deadline, on an exit or on a
    restart loop."""
    restarts: dict[str, int] = {}  # container -> restart count when first seen
    again = "see its log lines above; fix it and run `invoke backend` again"

    def look() -> Round:
        found = poll()
        looping = restart_loops(found, restarts)
        if looping:
            what = "restarting over and over: " + ", ".join(f"{s} ({w})" for s, w in looping)
            return Round({}, (what, again, [s for s, _ in looping]))
        states = summarize(services, found)
        bad = {s: st for s, st in states.items() if st != "ok"}
        dead = {s: st for s, st in bad.items() if st.startswith(("exited", "dead"))}
        if dead:
            what = "service stopped: " + ", ".join(f"{s} ({st})" for s, st in dead.items())
            return Round(bad, (what, again, list(dead)))
        return Round(bad)

    wait_for(look, len(services), timeout, HEALTH, NotHealthy, pace)


def wait_reached(
    probe: Callable[[], tuple[bool, str]],
    what: str,
    timeout: float,
    hint: str,
    pace: Pace = QUICK_PACE,
) -> float:
    """Poll `probe` (-> (done, how it looks now)) until done, printing each new look; the
    seconds it took, or an EseError with `hint` at the deadline. A probe that cannot reach
    what it asks (OSError, a malformed answer, an EseError) counts as "not yet"."""
    start = pace.now()
    last = ""
    while True:
        try:
            done, now = probe()
        except (OSError, ValueError, KeyError, EseError) as exc:
            done, now = False, f"unreachable: {exc}"
        elapsed = pace.now() - start
        if done:
            pace.say(f"{what} after {elapsed:.1f}s ({now})")
            return elapsed
        if now != last:
            pace.say(f"[{elapsed:4.0f}s] waiting until {what}: {now}")
            last = now
        if elapsed >= timeout:
            raise EseError(f"{what}: not reached after {timeout:.0f}s (now: {now})", hint)
        pace.pause()
