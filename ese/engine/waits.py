"""Wait until every service of a project is healthy, with progress and a deadline.

Compose v1 has no `up --wait`, so the containers' health is polled through the Docker SDK.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

from ese.engine.sdk import ContainerInfo
from ese.errors import EseError


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


def wait_healthy(
    poll: Callable[[], Sequence[ContainerInfo]],
    services: Sequence[str],
    timeout: float,
    report: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = 2.0,
) -> None:
    """Return when all `services` are ok; raise NotHealthy at the deadline or on an exit."""
    start = clock()
    last = ""
    restarts: dict[str, int] = {}  # container -> restart count when first seen
    while True:
        found = poll()
        looping = restart_loops(found, restarts)
        if looping:
            raise NotHealthy(
                "restarting over and over: " + ", ".join(f"{s} ({why})" for s, why in looping),
                "see its log lines above; fix it and run `invoke backend` again",
                [s for s, _ in looping],
            )
        states = summarize(services, found)
        bad = {s: st for s, st in states.items() if st != "ok"}
        elapsed = clock() - start
        if not bad:
            report(f"all {len(services)} services healthy after {elapsed:.0f}s")
            return
        dead = {s: st for s, st in bad.items() if st.startswith(("exited", "dead"))}
        if dead:
            raise NotHealthy(
                "service stopped: " + ", ".join(f"{s} ({st})" for s, st in dead.items()),
                "see its log lines above; fix it and run `invoke backend` again",
                list(dead),
            )
        line = f"{len(services) - len(bad)}/{len(services)} healthy; waiting for " + ", ".join(
            f"{s} ({st})" for s, st in bad.items()
        )
        if line != last:
            report(f"[{elapsed:4.0f}s] {line}")
            last = line
        if elapsed >= timeout:
            raise NotHealthy(
                f"not healthy after {timeout:.0f}s: "
                + ", ".join(f"{s} ({st})" for s, st in bad.items()),
                "see the log lines above; raise the deadline with INVOKE_ESE_HEALTH_TIMEOUT",
                list(bad),
            )
        sleep(interval)
