"""Fakes of the engines a cluster talks to: node engines sharing one swarm, and this machine's
engine with its containers, networks and volumes. They keep state, so a flow's effect (who
initialised, who joined with which token, what was removed) is read back, not scripted."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest

from ese.topology import Topology, load


@pytest.fixture
def topo() -> Topology:
    return load()


# --- node engines and their swarm ------------------------------------------------------

NODE_IDS = itertools.count(1)  # unique across swarms, as the engines' own ids are


@dataclass
class SwarmNode:
    node_id: str
    name: str
    role: str
    address: str
    state: str = "ready"
    labels: dict[str, str] = field(default_factory=dict)
    leader: bool = False


class World:
    """The swarm the node engines form: its nodes as a manager lists them."""

    def __init__(self) -> None:
        self.cluster = ""  # the swarm's id; "" before an init
        self.nodes: dict[str, SwarmNode] = {}
        self.count = 0
        self.log: list[str] = []

    def add(self, name: str, role: str, address: str) -> str:
        self.count += 1
        node_id = f"id{next(NODE_IDS)}"
        self.nodes[node_id] = SwarmNode(node_id, name, role, address, leader=not self.nodes)
        return node_id

    def remove_node(self, node_id: str, force: bool = False) -> None:
        self.log.append(f"rm {self.nodes[node_id].name}")
        del self.nodes[node_id]


class FakeNode:
    def __init__(self, world: World, node: SwarmNode) -> None:
        self.world, self.node = world, node

    @property
    def attrs(self) -> dict[str, Any]:
        n = self.node
        return {
            "ID": n.node_id,
            "Description": {"Hostname": n.name},
            "Status": {"State": n.state, "Addr": n.address},
            "Spec": {"Role": n.role, "Labels": dict(n.labels), "Availability": "active"},
            "ManagerStatus": {"Leader": n.leader} if n.role == "manager" else None,
        }

    def update(self, spec: dict[str, Any]) -> None:
        self.world.log.append(f"update {self.node.name} {spec['Role']} {sorted(spec['Labels'])}")
        self.node.role, self.node.labels = spec["Role"], dict(spec["Labels"])


class FakeSwarmApi:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.attrs: dict[str, Any] = {"JoinTokens": {"Worker": "tok-w", "Manager": "tok-m"}}

    def reload(self) -> None:
        pass

    def init(self, advertise_addr: str, listen_addr: str) -> None:
        world = self.engine.world
        world.cluster, world.nodes = f"swarm{world.count}", {}
        world.log.append(f"init {self.engine.name} {advertise_addr}")
        self.engine.joined(world.add(self.engine.name, "manager", advertise_addr), advertise_addr)

    def join(self, remote_addrs: list[str], join_token: str, advertise_addr: str, **_: Any) -> None:
        world = self.engine.world
        role = {"tok-w": "worker", "tok-m": "manager"}[join_token]
        world.log.append(f"join {self.engine.name} {role} {remote_addrs[0]}")
        self.engine.joined(world.add(self.engine.name, role, advertise_addr), advertise_addr)

    def leave(self, force: bool = False) -> None:
        self.engine.world.log.append(f"leave {self.engine.name}")
        node = self.engine.world.nodes.get(self.engine.node_id)
        if node is not None:
            node.state = "down"  # a node that left stays listed, Down
        self.engine.local, self.engine.node_id = "inactive", ""


class Engine:
    """One node's engine (an SDK client): its swarm state, and the swarm as it sees it."""

    def __init__(self, world: World, name: str) -> None:
        self.world, self.name = world, name
        self.local, self.node_id, self.address = "inactive", "", ""
        self.swarm = FakeSwarmApi(self)
        self.api = SimpleNamespace(remove_node=world.remove_node)
        self.nodes = SimpleNamespace(list=self._list, get=self._get)

    def joined(self, node_id: str, address: str) -> None:
        self.local, self.node_id, self.address = "active", node_id, address

    def _list(self) -> list[FakeNode]:
        return [FakeNode(self.world, n) for n in self.world.nodes.values()]

    def _get(self, node_id: str) -> FakeNode:
        return FakeNode(self.world, self.world.nodes[node_id])

    def info(self) -> dict[str, Any]:
        mine = self.world.nodes.get(self.node_id)
        manager = self.local == "active" and mine is not None and mine.role == "manager"
        return {
            "Swarm": {
                "LocalNodeState": self.local,
                "ControlAvailable": manager,
                "NodeID": self.node_id,
                "NodeAddr": self.address,
            }
        }


@pytest.fixture
def world() -> World:
    return World()


# --- this machine's engine -------------------------------------------------------------


@dataclass
class Box:
    """A container of this machine's engine."""

    name: str
    status: str = "running"
    labels: dict[str, str] = field(default_factory=dict)
    bindings: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    privileged: bool = False
    log: list[str] = field(default_factory=list)

    @property
    def attrs(self) -> dict[str, Any]:
        return {"HostConfig": {"PortBindings": self.bindings, "Privileged": self.privileged}}

    def kill(self, signal: str = "SIGKILL") -> None:
        self.log.append(f"kill {signal}")
        self.status = "exited"

    def stop(self, timeout: int = 10) -> None:
        self.log.append("stop")
        self.status = "exited"

    def remove(self, force: bool = False, v: bool = False) -> None:
        self.log.append("rm")
        self.status = "removed"


class Host:
    """This machine's engine: containers, networks, volumes; `made` records every creation."""

    def __init__(self, boxes: list[Box] | None = None, volumes: dict[str, dict] | None = None):
        self.boxes = list(boxes or [])
        self.volume_labels = dict(volumes or {})
        self.made: list[str] = []
        self.removed: list[str] = []
        self.containers = SimpleNamespace(list=self._containers, create=self._refuse)
        self.networks = SimpleNamespace(list=lambda names=None: [], create=self._refuse)
        self.volumes = SimpleNamespace(list=self._volumes, get=self._volume, create=self._refuse)
        self.api = SimpleNamespace(services=lambda: [])

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        self.made.append(f"{args} {kwargs}")

    def _containers(self, all: bool = False, filters: dict[str, str] | None = None) -> list[Box]:
        out = [b for b in self.boxes if b.status != "removed"]
        for key, value in (filters or {}).items():
            if key == "label":
                k, _, v = value.partition("=")
                out = [b for b in out if b.labels.get(k) == v]
            elif key == "status":
                out = [b for b in out if b.status == value]
        return out

    def _volume(self, name: str) -> Any:
        if name not in self.volume_labels:
            raise docker.errors.NotFound(f"no volume {name}")
        return SimpleNamespace(name=name, attrs={"Labels": self.volume_labels[name]})

    def _volumes(self, filters: dict[str, str] | None = None) -> list[Any]:
        k, _, v = (filters or {}).get("label", "").partition("=")
        return [
            SimpleNamespace(name=n, remove=lambda force=False, n=n: self.removed.append(n))
            for n, labels in self.volume_labels.items()
            if not k or labels.get(k) == v
        ]
