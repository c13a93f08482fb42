"""The simulation plan: life cycles, bursts, ids and the limit, from a seeded RNG."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from ese_client.simulation import (
    CLICK_STREAM_EVENT,
    CLICK_SUBTYPES,
    ORDER_STATE_UPDATE_EVENT,
    ORDER_STATES,
    Tick,
    materialize,
    plan_ticks,
    split_limit,
)


def _plan(limit: int, seed: int = 7, delay_ms: int = 300) -> list[Tick]:
    rng = random.Random(seed)
    return list(plan_ticks(rng=rng, run_id="run", instance=2, limit=limit, delay_ms=delay_ms))


def test_ticks_are_spaced_by_the_delay_and_hold_one_order_cycle_and_one_burst() -> None:
    ticks = _plan(2000)
    assert [t.start_ms for t in ticks[:4]] == [0, 300, 600, 900]
    for tick in ticks[:-1]:  # the last one may be cut by the limit
        states = [p.data["state"] for p in tick.order]
        assert states == list(ORDER_STATES[: len(states)])
        assert len(states) == (3 if tick.disrupted else 4)
        assert [p.offset_ms for p in tick.order] == [0, 200, 400, 600][: len(states)]
        assert {p.data["orderId"] for p in tick.order} == {tick.order_id}
        assert all(p.event_type == ORDER_STATE_UPDATE_EVENT for p in tick.order)

        subtypes = [p.data["event"] for p in tick.clicks]
        assert subtypes[:3] == list(CLICK_SUBTYPES)
        extra = subtypes[3:]
        assert 0 <= len(extra) <= 8
        assert len(set(extra)) <= 1, "the extra clicks are all of one sub-type"
        assert all(p.event_type == CLICK_STREAM_EVENT and p.offset_ms == 0 for p in tick.clicks)


def test_about_half_the_cycles_are_disrupted_and_every_extra_count_occurs() -> None:
    ticks = _plan(20_000)[:-1]
    disrupted = sum(t.disrupted for t in ticks) / len(ticks)
    assert 0.4 < disrupted < 0.6
    extras = Counter(len(t.clicks) - 3 for t in ticks)
    assert set(extras) == set(range(9))


def test_the_plan_holds_exactly_the_limit_and_unique_ids() -> None:
    for limit in (0, 1, 2, 5, 17, 1001):
        ticks = _plan(limit)
        events = [p for t in ticks for p in (*t.order, *t.clicks)]
        assert len(events) == limit == sum(t.size for t in ticks)
        ids = [p.event_id for p in events]
        assert len(set(ids)) == len(ids)
        assert all(i.startswith("run-2-") for i in ids)


def test_a_cut_last_tick_keeps_the_earliest_events() -> None:
    full = _plan(10_000, seed=3)[0]
    cut = _plan(2, seed=3)[0]
    assert [p.data["state"] for p in cut.order] == ["ORDER_CREATED"]
    assert [p.data["event"] for p in cut.clicks] == ["INPUT_PASSED_EVENT"]
    assert cut.order_id == full.order_id


def test_the_same_seed_gives_the_same_plan_and_another_seed_another() -> None:
    assert _plan(500, seed=11) == _plan(500, seed=11)
    assert _plan(500, seed=11) != _plan(500, seed=12)


def test_order_ids_differ_between_runs_and_instances() -> None:
    def order_ids(run_id: str, instance: int) -> set[str]:
        ticks = plan_ticks(
            rng=random.Random(1), run_id=run_id, instance=instance, limit=100, delay_ms=0
        )
        return {t.order_id for t in ticks}

    assert order_ids("a", 1).isdisjoint(order_ids("b", 1))
    assert order_ids("a", 1).isdisjoint(order_ids("a", 2))


@pytest.mark.parametrize(
    ("limit", "instances", "expected"),
    [(10, 3, [4, 3, 3]), (2, 4, [1, 1, 0, 0]), (0, 2, [0, 0]), (8, 1, [8])],
)
def test_split_limit(limit: int, instances: int, expected: list[int]) -> None:
    assert split_limit(limit, instances) == expected


def test_materialize_gives_the_original_payload_shape_plus_id() -> None:
    tick = _plan(50)[0]
    order = materialize(tick.order[1], "10.0.0.5-2", 1_706_000_000_123)
    assert order == {
        "id": tick.order[1].event_id,
        "eventType": "ORDER_STATE_UPDATE_EVENT",
        "timestamp": 1_706_000_000_123,
        "ip": "10.0.0.5-2",
        "data": {
            "orderId": tick.order_id,
            "state": "ORDER_ALLOCATED",
            "timestamp": 1_706_000_000_123,
        },
    }
    click = materialize(tick.clicks[1], "10.0.0.5-2", 5)
    assert click == {
        "id": tick.clicks[1].event_id,
        "eventType": "CLICK_STREAM_EVENT",
        "timestamp": 5,
        "ip": "10.0.0.5-2",
        "data": {"event": "BUTTON_CLICK_EVENT"},
    }
