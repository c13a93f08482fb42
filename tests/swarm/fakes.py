"""A fake Docker engine for the Swarm flows: the slice of the SDK they use, and a stand-in for
ese.engine.commands.run (the two `docker stack` commands) that the fake reacts to."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from ese.engine import commands
from ese.flows import swarm as flows
from ese.render import swarm_stack
from ese.topology import load

# The stack's services, as rendered: replicated ones (one task each in the fake, ingest as
# deployed) and global ones (one task on the fake's one node).
_STACK = swarm_stack.services(load())
GLOBAL_SERVICES = sorted(n for n, svc in _STACK.items() if svc["deploy"].get("mode") == "global")
SERVICES = sorted(n for n in _STACK if n not in GLOBAL_SERVICES)


class Refused(Exception):
    """What docker.errors.APIError looks like to the flows: the engine's words."""

    def __init__(self, explanation: str) -> None:
        super().__init__(explanation)
        self.explanation = explanation


@dataclass
class Item:
    name: str
    removed: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)

    def remove(self) -> None:
        self.removed.append(self.name)


# What the engine says when it still counts an endpoint on a network.
ACTIVE = "error while removing network: network docker_gwbridge id 5e55 has active endpoints"


class FakeNetwork:
    """A network as the SDK shows it. Each `reload()` (an inspect) shows the next entry of
    `endpoints` (the last one stays); `remove()` is refused while one is listed, and
    `refusals` more times (an engine that still counts an endpoint nobody holds)."""

    def __init__(
        self,
        fake: FakeSwarm,
        name: str,
        endpoints: list[list[str]] | None = None,
        refusals: int = 0,
    ) -> None:
        self.fake, self.name, self.refusals = fake, name, refusals
        self.endpoints = endpoints or [[]]
        self.attrs: dict[str, Any] = {"Name": name, "Containers": {}}  # listed: none shown
        self.removals: list[list[str]] = []  # the endpoints listed at each remove()

    def reload(self) -> None:
        now = self.endpoints.pop(0) if len(self.endpoints) > 1 else self.endpoints[0]
        attached = {f"ep{i}": {"Name": n} for i, n in enumerate(now)}
        self.attrs = {"Name": self.name, "Containers": attached}

    def remove(self) -> None:
        listed = [ep["Name"] for ep in self.attrs["Containers"].values()]
        self.removals.append(listed)
        if listed:
            raise Refused(ACTIVE)
        if self.refusals:
            self.refusals -= 1
            raise Refused(ACTIVE)
        self.fake.network_items.remove(self)


class FakeSwarm:
    """The slice of the Docker SDK the flows use; `deploy()` makes every service converge."""

    def __init__(self, state: str = "inactive", replicas: int | None = None) -> None:
        self.state = state
        self.replicas: dict[str, int] = {}
        if replicas is not None:
            self.deploy(replicas)
        self.secret_items: list[Item] = []
        self.created: list[tuple[str, bytes]] = []
        self.volume_items = [Item("ese_redis-data")]
        self.exec_output = b"{}"
        self.exec_outputs: dict[str, bytes] = {}
        self.execs: list[tuple[str, str]] = []
        self.api = SimpleNamespace(services=self._services, tasks=self._tasks, nodes=self._nodes)
        self.secrets = SimpleNamespace(
            list=lambda filters=None: list(self.secret_items), create=self._create_secret
        )
        self.configs = SimpleNamespace(list=lambda filters=None: [])
        # A look-alike: the engine's name filter matches parts of names.
        self.network_items = [FakeNetwork(self, "my_docker_gwbridge_copy")]
        self.networks = SimpleNamespace(list=self._networks)
        # The endpoints docker_gwbridge shows after the node left, one inspect after another.
        self.after_leave: list[list[str]] = [["gateway_ingress-sbox"], []]
        self.stack_containers: list[Item] = []  # one stops per look
        self.left_with: list[str] | None = None  # the stack's containers when it left
        self.volumes = SimpleNamespace(list=lambda filters=None: self.volume_items)
        self.containers = SimpleNamespace(list=self._containers)
        self.images = SimpleNamespace(get=lambda ref: Item(ref))
        # The SDK calls the flows make; each records the docker command it stands for.
        self.lines: list[str] = []
        self.swarm = SimpleNamespace(init=self._init, leave=self._leave)
        self.services = SimpleNamespace(get=self._service)
        self.log_asks: list[tuple[str, dict[str, Any]]] = []
        host = SimpleNamespace(
            id="node1", attrs={"Description": {"Hostname": "box"}, "Spec": {"Role": "manager"}}
        )

        def update(spec: dict[str, Any]) -> bool:
            host.attrs["Spec"] = spec
            return True

        host.update = update
        self.host = host
        self.nodes = SimpleNamespace(list=lambda: [host])

    def bridge(self) -> FakeNetwork | None:
        return next((n for n in self.network_items if n.name == "docker_gwbridge"), None)

    def _networks(self, filters: Any = None, names: Any = None) -> list[FakeNetwork]:
        if names:
            return [n for n in self.network_items if any(x in n.name for x in names)]
        return []  # the stack's overlay network: gone once stack rm returned

    def _init(self, advertise_addr: str) -> None:
        self.lines.append(f"docker swarm init --advertise-addr {advertise_addr}")
        self.state = "active"
        if self.bridge() is None:  # swarm init makes it when it is not there
            self.network_items.append(
                FakeNetwork(self, "docker_gwbridge", [["gateway_ingress-sbox"]])
            )

    def _leave(self, force: bool) -> None:
        self.lines.append("docker swarm leave --force" if force else "docker swarm leave")
        self.state = "inactive"
        self.left_with = [c.name for c in self.stack_containers]
        bridge = self.bridge()
        if bridge is not None:  # the ingress sandbox's endpoint goes in the background
            bridge.endpoints = self.after_leave

    def _service(self, name: str) -> Any:
        short = name.removeprefix("ese_")
        if short not in self.replicas:
            raise Refused(f"service {name} not found")

        def scale(n: int) -> bool:
            self.lines.append(f"docker service scale --detach {name}={n}")
            self.replicas[short] = n
            return True

        def logs(**kwargs: Any) -> Iterator[bytes]:
            self.log_asks.append((name, kwargs))
            return iter([f"{short}: first line\n".encode(), f"{short}: last line\n".encode()])

        def tasks(filters: Any = None) -> list[dict[str, Any]]:
            return self.api.tasks(filters={"service": name})  # as the SDK's Service.tasks

        return SimpleNamespace(scale=scale, logs=logs, tasks=tasks)

    def deploy(self, ingest: int) -> None:
        self.state = "active"
        self.replicas = {s: 1 for s in SERVICES + GLOBAL_SERVICES} | {"ese-ingest": ingest}

    def info(self) -> dict[str, Any]:
        manager = self.state == "active"
        return {
            "Swarm": {
                "LocalNodeState": self.state,
                "ControlAvailable": manager,
                "NodeID": "node1" if manager else "",
            }
        }

    def _services(self, filters: Any = None) -> list[dict[str, Any]]:
        return [
            {
                "Spec": {
                    "Name": f"ese_{s}",
                    "Mode": {"Global": {}}
                    if s in GLOBAL_SERVICES
                    else {"Replicated": {"Replicas": n}},
                    "TaskTemplate": {"ContainerSpec": {"Image": "img"}},
                }
            }
            for s, n in self.replicas.items()
        ]

    def _tasks(self, filters: Any) -> list[dict[str, Any]]:
        n = self.replicas[filters["service"].removeprefix("ese_")]
        task = {"DesiredState": "running", "Status": {"State": "running"}, "NodeID": "node1"}
        return [task] * n

    def _nodes(self) -> list[dict[str, Any]]:
        return [{"ID": "node1", "Status": {"State": "ready"}}]

    def _create_secret(self, name: str, data: bytes, labels: dict[str, str]) -> None:
        self.created.append((name, data))
        self.secret_items.append(Item(name))

    def _containers(self, all: bool = False, filters: Any = None) -> list[Any]:
        if "status" in (filters or {}):  # a running task: Prometheus' or Alertmanager's
            service = filters["label"].rpartition("=")[2].removeprefix("ese_")
            if service not in self.replicas:
                return []

            def exec_run(argv: list[str]) -> tuple[int, bytes]:
                self.execs.append((service, argv[-1]))
                return 0, self.exec_outputs.get(service, self.exec_output)

            return [SimpleNamespace(exec_run=exec_run)]
        found = list(self.stack_containers)
        self.stack_containers[:1] = []
        return found


class Ctx:
    """Stands in for ese.engine.commands.run: records the commands; the fake reacts to them."""

    def __init__(self, fake: FakeSwarm) -> None:
        self.fake = fake
        self.lines: list[str] = []
        self.envs: list[dict[str, str]] = []

    def __call__(self, argv: list[str], env: Any = None, **kwargs: Any) -> Any:
        line = commands.shown(argv, windows=False)
        print(f"> {line}")
        self.lines.append(line)
        self.envs.append(dict(env or {}))
        if line.startswith("docker stack deploy"):
            self.fake.deploy(int(env[swarm_stack.REPLICAS_VAR]))
        return SimpleNamespace(returncode=0)


def ctx(monkeypatch: pytest.MonkeyPatch, fake: FakeSwarm) -> Ctx:
    c = Ctx(fake)
    monkeypatch.setattr(commands, "run", c)
    return c


def up(c: Ctx, fake: FakeSwarm, **kwargs: Any) -> None:
    args: dict[str, Any] = dict(
        build=False,
        images_mode="auto",
        replicas=None,
        registry="",
        timeout=5,
        grafana_timeout=5,
        log_lines=5,
    )
    flows.up(cli=fake, **(args | kwargs))
