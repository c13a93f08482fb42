"""What the cluster drills read of the cluster: tasks and their nodes (node 1's engine, the
manager), the Redis roles and the Sentinels' master (asked inside their containers, through
each node's engine), and the addresses HAProxy routes to."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from typing import Any

from ese.cluster import nodes, spec
from ese.host import sdk
from ese.render.swarm_common import REDIS_SECRET
from ese.topology import load
from tests.e2e import harness, outside
from tests.e2e_cluster.conftest import NODES

TOPO = load()
STACK = TOPO.swarm.stack
INGEST = f"{STACK}_{TOPO.swarm.ingest_service}"
NAMES = spec.node_names(TOPO, NODES)
EDGE = NAMES[0]  # the manager, HAProxy and the published ports
REDIS = TOPO.swarm.redis_services


def on_node(node: str, *args: str, timeout: float = 600) -> str:
    """`invoke ARGS` with DOCKER_HOST pointing at `node`'s engine; its output."""
    before = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = spec.docker_host(node)
    try:
        return str(harness.invoke(*args, timeout=timeout).stdout)
    finally:
        if before is None:
            del os.environ["DOCKER_HOST"]
        else:
            os.environ["DOCKER_HOST"] = before


def on_cluster(*args: str, timeout: float = 600) -> str:
    """`invoke ARGS` with DOCKER_HOST pointing at node 1, as cluster.up says to set it."""
    return on_node(EDGE, *args, timeout=timeout)


def hostnames(manager: Any) -> dict[str, str]:
    return {n.id: n.attrs["Description"]["Hostname"] for n in manager.nodes.list()}


def tasks_of(manager: Any, service: str) -> list[dict[str, Any]]:
    """The service's tasks meant to run, with `node` (hostname) and `ips` (stack network)."""
    names = hostnames(manager)
    out = []
    for task in manager.api.tasks(filters={"service": service, "desired-state": "running"}):
        ips = [
            a.split("/")[0]
            for net in task.get("NetworksAttachments") or []
            if not net["Network"]["Spec"].get("Ingress")
            for a in net.get("Addresses") or []
        ]
        out.append(
            {
                "node": names.get(task.get("NodeID", ""), ""),
                "state": task["Status"]["State"],
                "ips": ips,
            }
        )
    return out


def node_of(manager: Any, short: str) -> str:
    """The node that the stack service `short` (e.g. redis-2) is placed on."""
    found = {t["node"] for t in tasks_of(manager, f"{STACK}_{short}")}
    assert len(found) == 1, (short, found)
    return found.pop()


@functools.cache
def engine(node: str) -> Any:
    """The SDK client of `node`'s engine, one per node (a killed node's answers nothing until
    it is back; the client then connects again)."""
    return nodes.client(node, timeout=10)


# Why each node was passed over in the last `running` calls, for the failure messages.
UNANSWERED: dict[str, str] = {}


def running(short: str, skip: frozenset[str] = frozenset()) -> Iterator[tuple[str, Any]]:
    """(node, container) of each running task of stack service `short`, on every node that
    answers (a killed node's engine does not; `skip` leaves nodes out without asking)."""
    label = f"com.docker.swarm.service.name={STACK}_{short}"
    for name in NAMES:
        if name in skip:
            continue
        try:
            # Not containers.list itself: it fails whole when a container goes mid-way.
            boxes = sdk.list_containers(engine(name), {"label": label}, every=False)
        except Exception as exc:  # a node being killed or started: its engine does not answer
            UNANSWERED[name] = f"{type(exc).__name__}: {exc}"
            continue
        UNANSWERED.pop(name, None)
        for box in boxes:
            yield name, box


# ROLE inside a Redis container, with the password from its secret (never on a command line
# that leaves the container).
ROLE = [
    "sh",
    "-c",
    f'redis-cli -p {TOPO.redis.port} -a "$(cat {REDIS_SECRET.path})" --no-auth-warning ROLE',
]


def role(short: str) -> tuple[str, str]:
    """(role, its master) of Redis `short`, from ROLE inside its container: ("master", "") or
    ("slave", "redis-2"); ("", "") while it runs nowhere."""
    for _, box in running(short):
        code, out = box.exec_run(ROLE)
        if code != 0:
            continue  # still loading, or just stopping
        words = out.decode().split()
        if words and words[0] == "master":
            return "master", ""
        if len(words) > 1 and words[0] == "slave":
            return "slave", words[1]
    return "", ""


def connected_replicas(master: str) -> list[str]:
    """The replicas that Redis `master` streams to now (ROLE's list)."""
    for _, box in running(master):
        code, out = box.exec_run(ROLE)
        assert code == 0, (master, out)
        words = out.decode().split()
        if words and words[0] == "master":
            # master <offset> then <name> <port> <offset> per replica
            return sorted(words[2::3])
    return []


def sentinel_master(skip: frozenset[str] = frozenset(), timeout: float = 30) -> str:
    """The master that the first answering Sentinel names (a service name), asking again for
    at most `timeout` seconds (a Sentinel may be restarting); the answers in the failure."""
    said: dict[str, str] = {}

    def named() -> str | None:
        for sentinel in TOPO.sentinel.services:
            for node, box in running(sentinel, skip):
                argv = ["redis-cli", "-p", str(TOPO.sentinel.port), "SENTINEL"]
                argv += ["get-master-addr-by-name", TOPO.sentinel.master_name]
                try:
                    code, out = box.exec_run(argv)
                except Exception as exc:  # the container stopped under the exec
                    said[f"{sentinel}@{node}"] = f"{type(exc).__name__}: {exc}"
                    continue
                said[f"{sentinel}@{node}"] = f"exit {code}: {out[:200]!r}"
                if code == 0 and out.split():
                    return str(out.decode().split()[0])
        return None

    try:
        return outside.wait_until(named, timeout, "a Sentinel names the master", 1)
    except AssertionError:
        raise AssertionError(
            f"no Sentinel named the master in {timeout:g} s: {said}; nodes not answering: "
            f"{UNANSWERED}"
        ) from None


def sentinel_on(node: str) -> tuple[str, Any]:
    """(service, container) of a Sentinel running on `node`."""
    for sentinel in TOPO.sentinel.services:
        for where, box in running(sentinel, frozenset(NAMES) - {node}):
            if where == node:
                return sentinel, box
    raise AssertionError(f"no Sentinel runs on {node}")


def lb_addresses() -> set[str]:
    """The addresses HAProxy routes to now (servers UP)."""
    rows = outside.haproxy_servers().values()
    return {r["addr"].rsplit(":", 1)[0] for r in rows if r["status"] == "UP"}
