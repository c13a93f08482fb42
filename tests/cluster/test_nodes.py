"""Node containers: the entry point copied in, and waiting for a node's engine."""

from __future__ import annotations

import io
import os
import tarfile
from types import SimpleNamespace

import pytest

from ese.cluster import nodes, spec
from ese.errors import EseError


def test_the_entry_point_goes_in_as_the_kits_executable_script():
    with tarfile.open(fileobj=io.BytesIO(nodes.entrypoint_archive())) as tar:
        (member,) = tar.getmembers()
        script = tar.extractfile(member)  # None unless a regular file
        assert script is not None
        data = script.read()
    assert member.name == os.path.basename(spec.ENTRYPOINT) and member.mode == 0o755
    assert data == nodes.ENTRYPOINT_FILE.read_bytes()
    assert data.startswith(b"#!/bin/sh\n")


class Node:
    def __init__(self, statuses: list[str]) -> None:
        self.name = "ese-node-2"
        self.statuses = statuses
        self.status = statuses[0]

    def reload(self) -> None:
        self.status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]

    def logs(self, tail: int) -> bytes:
        return b"level=info msg=starting\nfailed to mount cgroup: permission denied\n"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def engine_answering_after(tries: int):
    asked: list[str] = []

    def connect(name: str):
        asked.append(name)
        if len(asked) < tries:
            raise ConnectionRefusedError("no socket yet")
        return SimpleNamespace(ping=lambda: True, name=name)

    return connect, asked


def test_the_engine_is_waited_for_until_it_answers():
    clock = Clock()
    connect, asked = engine_answering_after(3)
    cli = nodes.wait_engine(Node(["running"]), 30, connect, clock, clock.sleep)
    assert cli.name == "ese-node-2" and len(asked) == 3


def test_a_node_whose_engine_stops_is_one_line_with_its_log():
    clock = Clock()
    connect, _ = engine_answering_after(99)
    with pytest.raises(EseError) as err:
        nodes.wait_engine(Node(["running", "exited"]), 30, connect, clock, clock.sleep)
    text = str(err.value)
    assert text.startswith("the engine in ese-node-2 stopped")
    assert "failed to mount cgroup: permission denied" in text and "\n" not in text


def test_an_engine_that_never_answers_ends_at_the_deadline():
    clock = Clock()
    connect, asked = engine_answering_after(10**6)
    with pytest.raises(EseError, match="did not answer within 5s"):
        nodes.wait_engine(Node(["running"]), 5, connect, clock, clock.sleep)
    assert 5 <= len(asked) <= 20  # bounded
