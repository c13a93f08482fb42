"""The `cluster` tasks through Invoke's real parser and config: flags reach the flows."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from invoke import Program

import tasks
from ese.flows import cluster as cluster_flow


def run(*argv: str) -> int:
    try:
        Program(namespace=copy.deepcopy(tasks.ns), name="invoke").run(["invoke", *argv])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def recorded(monkeypatch) -> dict[str, Any]:
    calls: dict[str, Any] = {}
    for name in ("up", "kill", "start", "down"):

        def record(*args: Any, _name: str = name, **kwargs: Any) -> None:
            calls[_name] = (args, kwargs)

        monkeypatch.setattr(cluster_flow, name, record)
    return calls


def test_every_flag_of_every_cluster_task_has_help():
    # A copy: Invoke pops each task's help text when it builds the arguments.
    collection = copy.deepcopy(tasks.ns).collections["cluster"]
    assert sorted(collection.tasks) == ["down", "kill", "start", "up"]
    for task in collection.tasks.values():
        assert task.__doc__, task.name
        for arg in task.get_arguments():
            assert arg.help, f"cluster.{task.name} --{arg.name}"


def test_up_converts_the_counts_from_flags_and_from_the_environment(recorded, monkeypatch):
    assert run("cluster.up", "--nodes", "2", "--managers", "1", "--images", "offline") == 0
    kwargs = recorded["up"][1]
    assert (kwargs["nodes_count"], kwargs["managers"], kwargs["images_mode"]) == (2, 1, "offline")
    monkeypatch.setenv("INVOKE_ESE_CLUSTER_NODES", "5")
    assert run("cluster.up") == 0
    assert (recorded["up"][1]["nodes_count"], recorded["up"][1]["managers"]) == (5, 1)


def test_a_bad_node_count_is_one_line_naming_the_flag(recorded, capsys):
    assert run("cluster.up", "--nodes", "0") == 1
    assert capsys.readouterr().err.strip() == (
        "--nodes must be a whole number between 1 and 9, got '0'; e.g. --nodes 3"
    )
    assert "up" not in recorded


def test_kill_and_start_take_the_node_as_their_argument(recorded):
    assert run("cluster.kill", "--node", "ese-node-2") == 0
    assert recorded["kill"] == (("ese-node-2",), {})
    assert run("cluster.start", "-n", "ese-node-2") == 0
    assert recorded["start"][0] == ("ese-node-2",)
    assert run("cluster.down", "--volumes") == 0
    assert recorded["down"] == ((), {"volumes": True})
