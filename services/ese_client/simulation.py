"""The simulation plan of one client, free of I/O so it can be tested with a seeded RNG.

Every tick (one per `delay_ms`) holds one order life cycle and one click-stream burst, as the
original simulator did:

- order: ORDER_CREATED at 0 ms, ORDER_ALLOCATED at 1 step, ORDER_STARTED at 2 steps and, unless
  the cycle is disrupted (about half of them), ORDER_COMPLETED at 3 steps (step = 200 ms);
- clicks: one each of INPUT_PASSED_EVENT, BUTTON_CLICK_EVENT, KEY_PRESS_EVENT, then 0..8 more of
  one randomly chosen sub-type, all at 0 ms.

The plan ends after exactly `limit` events; the last tick is cut in creation-time order, so a cut
order life cycle is simply left open. Timestamps are filled in when an event is created
(`materialize`), because the original stamped each event at the moment it was sent.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

CLICK_STREAM_EVENT = "CLICK_STREAM_EVENT"
ORDER_STATE_UPDATE_EVENT = "ORDER_STATE_UPDATE_EVENT"
ORDER_STATES = ("ORDER_CREATED", "ORDER_ALLOCATED", "ORDER_STARTED", "ORDER_COMPLETED")
CLICK_SUBTYPES = ("INPUT_PASSED_EVENT", "BUTTON_CLICK_EVENT", "KEY_PRESS_EVENT")
MAX_EXTRA_CLICKS = 8
DISRUPTION_RATE = 0.5


@dataclass(frozen=True)
class PlannedEvent:
    """An event of the plan, created (and time-stamped) `offset_ms` after its tick starts."""

    event_id: str
    event_type: str
    offset_ms: int
    data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Tick:
    """One tick: the order life cycle (sent one by one, in order) and the click burst."""

    index: int
    start_ms: int
    order_id: str
    disrupted: bool
    order: tuple[PlannedEvent, ...]
    clicks: tuple[PlannedEvent, ...]

    @property
    def size(self) -> int:
        """Number of events of this tick."""
        return len(self.order) + len(self.clicks)


def split_limit(limit: int, instances: int) -> list[int]:
    """Share a total event limit between instances as evenly as possible (sum == limit)."""
    base, extra = divmod(limit, instances)
    return [base + (1 if i < extra else 0) for i in range(instances)]


def plan_ticks(
    *,
    rng: random.Random,
    run_id: str,
    instance: int,
    limit: int,
    delay_ms: int,
    order_step_ms: int = 200,
) -> Iterator[Tick]:
    """Yield the ticks of one client until exactly `limit` events have been planned.

    Ids are `<run_id>-<instance>-<seq>`: unique per run and instance, so a retried request carries
    the same ids (the server stores them once) while two runs never share one.
    """
    remaining = limit
    seq = 0
    index = 0
    while remaining > 0:
        order_id = f"{run_id}-{instance}-order-{index}"
        disrupted = rng.random() < DISRUPTION_RATE
        states = ORDER_STATES[:3] if disrupted else ORDER_STATES
        extra_subtype = rng.choice(CLICK_SUBTYPES)
        subtypes = CLICK_SUBTYPES + (extra_subtype,) * rng.randint(0, MAX_EXTRA_CLICKS)

        # Creation-time order decides what a cut last tick keeps: ORDER_CREATED and the clicks
        # happen at 0 ms, the later order states after them.
        kinds: list[tuple[str, str]] = [("order", states[0])]
        kinds += [("click", subtype) for subtype in subtypes]
        kinds += [("order", state) for state in states[1:]]
        kinds = kinds[:remaining]

        order: list[PlannedEvent] = []
        clicks: list[PlannedEvent] = []
        for kind, name in kinds:
            event_id = f"{run_id}-{instance}-{seq}"
            seq += 1
            if kind == "order":
                step = ORDER_STATES.index(name)
                data = {"orderId": order_id, "state": name}
                order.append(
                    PlannedEvent(event_id, ORDER_STATE_UPDATE_EVENT, step * order_step_ms, data)
                )
            else:
                clicks.append(PlannedEvent(event_id, CLICK_STREAM_EVENT, 0, {"event": name}))
        remaining -= len(kinds)
        yield Tick(
            index=index,
            start_ms=index * delay_ms,
            order_id=order_id,
            disrupted=disrupted,
            order=tuple(order),
            clicks=tuple(clicks),
        )
        index += 1


def materialize(planned: PlannedEvent, ip: str, now_ms: int) -> dict[str, Any]:
    """The wire form of a planned event, in the original's payload shape plus `id`."""
    data: dict[str, Any] = dict(planned.data)
    if planned.event_type == ORDER_STATE_UPDATE_EVENT:
        data["timestamp"] = now_ms
    return {
        "id": planned.event_id,
        "eventType": planned.event_type,
        "timestamp": now_ms,
        "ip": ip,
        "data": data,
    }
