"""`invoke swarm.down` with a fake engine: the stack's objects, the swarm left only when
swarm.up made it, and docker_gwbridge removed once nothing is on it, or left with the reason."""

from __future__ import annotations

import time

import pytest

from ese.flows import swarm as flows
from ese.swarm import gwbridge
from tests.swarm.fakes import ACTIVE, FakeNetwork, FakeSwarm, Item, ctx, up

LEFT = (
    "(after 30s); harmless, the next `docker swarm init` uses it again; after a restart of the "
    "Docker engine `docker network rm docker_gwbridge` removes it"
)


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda s: None)


def test_down_removes_volumes_and_leaves_only_a_swarm_it_created(
    wired, monkeypatch, capsys
) -> None:
    fake = FakeSwarm(replicas=2)
    ctx(monkeypatch, fake)
    fake.replicas = {}  # stack rm has removed the services
    flows.down(volumes=True, leave=True, timeout=5, cli=fake)
    assert fake.volume_items[0].removed == ["ese_redis-data"]
    assert "docker swarm leave --force" not in fake.lines
    assert "not leaving the swarm" in capsys.readouterr().out
    wired.marker.write_text("node1\n")
    flows.down(volumes=False, leave=True, timeout=5, cli=fake)
    assert fake.lines == ["docker swarm leave --force"] and not wired.marker.exists()
    assert fake.state == "inactive"


def test_leave_waits_for_the_containers_and_the_bridges_endpoints_then_removes_it(
    wired, monkeypatch, capsys, no_sleep
) -> None:
    fake = FakeSwarm()
    c = ctx(monkeypatch, fake)
    up(c, fake)
    assert wired.marker.read_text().splitlines() == ["node1"]
    bridge = fake.bridge()
    assert bridge is not None
    fake.replicas = {}  # stack rm has removed the services; their containers still stop
    fake.stack_containers = [Item("ese_elb.1.a"), Item("ese_redis-server.1.b")]
    fake.after_leave = [["gateway_ingress-sbox"]] * 3 + [[]]
    capsys.readouterr()
    flows.down(volumes=False, leave=True, timeout=5, cli=fake)
    assert fake.left_with == [], "left the swarm while task containers still held endpoints"
    assert bridge.removals == [[]], "removed once, when no endpoint was on it"
    assert [n.name for n in fake.network_items] == ["my_docker_gwbridge_copy"]
    out = capsys.readouterr().out.splitlines()
    assert out[-3:] == [
        "> docker network rm docker_gwbridge",
        "removed network docker_gwbridge",
        "stack ese removed",
    ]
    assert "waiting to remove network docker_gwbridge: endpoints still on it: " in out[-4]
    assert not wired.marker.exists()


def test_a_bridge_that_was_there_before_the_swarm_is_kept(
    wired, monkeypatch, capsys, no_sleep
) -> None:
    fake = FakeSwarm()
    made_by_hand = FakeNetwork(fake, "docker_gwbridge")  # e.g. with its own subnet
    fake.network_items.append(made_by_hand)
    c = ctx(monkeypatch, fake)
    up(c, fake)
    assert wired.marker.read_text().splitlines() == ["node1", "had docker_gwbridge"]
    fake.replicas = {}
    flows.down(volumes=False, leave=True, timeout=5, cli=fake)
    assert fake.state == "inactive" and made_by_hand.removals == []
    assert fake.bridge() is made_by_hand
    out = capsys.readouterr().out.splitlines()
    assert out[-2] == (
        "kept network docker_gwbridge: it was there before `invoke swarm.up` made the swarm"
    )


class Clock:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_bridge_the_engine_keeps_counting_endpoints_on_is_left_with_the_reason(capsys) -> None:
    fake = FakeSwarm()
    stuck = FakeNetwork(fake, "docker_gwbridge", refusals=10**6)
    fake.network_items.append(stuck)
    clock = Clock()
    removed, line = gwbridge.remove(fake, wait=30, clock=clock, sleep=clock.sleep)
    assert not removed and fake.bridge() is stuck
    assert line == f"left network docker_gwbridge: {ACTIVE} {LEFT}"
    # Asked again once a second until the deadline, never while an endpoint was listed.
    assert stuck.removals == [[]] * 31 and clock.sleeps == [1.0] * 30
    out = capsys.readouterr().out
    assert out.count("> docker network rm docker_gwbridge") == 1
    assert out.count("waiting to remove network docker_gwbridge") == 1


def test_an_endpoint_that_never_goes_is_named_and_no_removal_is_tried(capsys) -> None:
    fake = FakeSwarm()
    held = FakeNetwork(fake, "docker_gwbridge", [["gateway_ingress-sbox", "gateway_0f3c"]])
    fake.network_items.append(held)
    clock = Clock()
    removed, line = gwbridge.remove(fake, wait=30, clock=clock, sleep=clock.sleep)
    assert not removed and held.removals == []
    assert line == (
        f"left network docker_gwbridge: endpoints still on it: gateway_0f3c, "
        f"gateway_ingress-sbox {LEFT}"
    )
    assert "\n" not in line


def test_a_refusal_that_passes_ends_in_a_removal(capsys) -> None:
    fake = FakeSwarm()
    slow = FakeNetwork(fake, "docker_gwbridge", refusals=2)
    fake.network_items.append(slow)
    clock = Clock()
    assert gwbridge.remove(fake, wait=30, clock=clock, sleep=clock.sleep) == (
        True,
        "removed network docker_gwbridge",
    )
    assert slow.removals == [[], [], []] and fake.bridge() is None
    assert gwbridge.remove(fake, clock=clock, sleep=clock.sleep) == (
        True,
        "network docker_gwbridge is gone",
    )
