"""The swarm across the nodes, formed through fake node engines that share one swarm."""

from __future__ import annotations

from ese.cluster import membership, spec
from ese.engine.waits import Pace
from tests.cluster.conftest import Engine, World

PLAN = spec.addresses("172.30.0.0/16", "172.30.0.1")
QUIET = Pace(report=lambda _: None, clock=lambda: 0.0, sleep=lambda _: None)


def form(topo, world: World, engines: dict[str, Engine], managers: int = 1) -> Engine:
    names = list(engines)
    return membership.form(
        engines,
        PLAN,
        spec.roles(names, managers),
        spec.labels(topo, names),
        spec.managed_labels(topo),
        timeout=5,
    )


def engines_for(topo, world: World, count: int) -> dict[str, Engine]:
    return {name: Engine(world, name) for name in spec.node_names(topo, count)}


def listed(manager: Engine) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    return {r.name: (r.state, r.role, r.labels) for r in membership.rows(manager)}


def test_node_1_initialises_and_the_others_join_as_their_role(topo, world):
    engines = engines_for(topo, world, 3)
    manager = form(topo, world, engines, managers=2)
    assert manager is engines["ese-node-1"]
    assert world.log[:3] == [
        "init ese-node-1 172.30.0.11",
        "join ese-node-2 manager 172.30.0.11:2377",
        "join ese-node-3 worker 172.30.0.11:2377",
    ]
    dealt = spec.labels(topo, list(engines))
    assert listed(manager) == {
        name: ("ready", role, tuple(sorted(f"{k}={v}" for k, v in dealt[name].items())))
        for name, role in (
            ("ese-node-1", "manager"),
            ("ese-node-2", "manager"),
            ("ese-node-3", "worker"),
        )
    }


def test_forming_again_changes_nothing(topo, world):
    engines = engines_for(topo, world, 3)
    form(topo, world, engines)
    before = list(world.log)
    form(topo, world, engines)
    assert world.log == before


def test_a_node_of_another_swarm_leaves_it_and_a_stale_entry_of_its_name_goes(topo, world):
    engines = engines_for(topo, world, 2)
    form(topo, world, engines)
    # ese-node-2 lost its volume: its engine is new, the swarm still lists the old one, Down.
    world.nodes[engines["ese-node-2"].node_id].state = "down"
    other = World()
    fresh = Engine(other, "ese-node-2")
    fresh.swarm.init("10.1.1.1", "0.0.0.0:2377")  # in a swarm of its own
    engines["ese-node-2"] = fresh
    fresh.world = world  # from now on it talks to ours
    world.log.clear()
    manager = form(topo, world, engines)
    assert world.log[:3] == [
        "leave ese-node-2",
        "rm ese-node-2",
        "join ese-node-2 worker 172.30.0.11:2377",
    ]
    assert [r.name for r in membership.rows(manager)] == ["ese-node-1", "ese-node-2"]


def test_node_1_advertised_elsewhere_forms_a_new_swarm(topo, world):
    engines = engines_for(topo, world, 2)
    engines["ese-node-1"].swarm.init("192.168.9.11", "0.0.0.0:2377")  # an older network
    world.log.clear()
    form(topo, world, engines)
    assert world.log[:3] == [
        "leave ese-node-1",
        "init ese-node-1 172.30.0.11",
        "join ese-node-2 worker 172.30.0.11:2377",
    ]


def test_labels_move_with_the_shape_and_other_labels_stay(topo, world):
    engines = engines_for(topo, world, 2)
    manager = form(topo, world, engines)
    world.nodes[engines["ese-node-2"].node_id].labels["team"] = "a"
    before = {n: set(v[2]) for n, v in listed(manager).items()}
    engines["ese-node-3"] = Engine(world, "ese-node-3")
    form(topo, world, engines)
    after = {n: set(v[2]) for n, v in listed(manager).items()}
    dealt = spec.labels(topo, list(engines))
    for name in engines:
        ours = {f"{k}={v}" for k, v in dealt[name].items()}
        assert after[name] == ours | ({"team=a"} if name == "ese-node-2" else set())
    # labels moved off node 2 when node 3 came, and `team` stayed where it was
    assert "team=a" in after["ese-node-2"] and after["ese-node-2"] < before["ese-node-2"]


def test_a_node_is_back_only_once_its_agent_is_active_and_the_manager_lists_it_ready(topo, world):
    engines = engines_for(topo, world, 2)
    manager = form(topo, world, engines)
    node2 = engines["ese-node-2"]
    node2.local = "pending"  # restarted: listed Ready from before the kill, not connected yet
    assert membership.rejoined(node2, manager, "ese-node-2") == (
        False,
        "its swarm agent pending, listed ready",
    )
    node2.local = "active"
    assert membership.rejoined(node2, manager, "ese-node-2")[0]


def test_waiting_for_a_node_to_go_down_times_out_with_the_hint(topo, world):
    engines = engines_for(topo, world, 2)
    manager = form(topo, world, engines)
    ticks = iter(range(100))
    pace = Pace(report=lambda _: None, clock=lambda: float(next(ticks)), sleep=lambda _: None)
    try:
        membership.wait_states(lambda: manager, {"ese-node-2": "down"}, 5, "the hint", pace)
    except Exception as exc:  # EseError
        assert "ese-node-2 down" in str(exc) and str(exc).endswith("the hint")
    else:
        raise AssertionError("a node that stays Ready must not pass as Down")
    world.nodes[engines["ese-node-2"].node_id].state = "down"
    membership.wait_states(lambda: manager, {"ese-node-2": "down"}, 5, "hint", QUIET)
