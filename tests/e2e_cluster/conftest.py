"""Fixtures of the cluster drill: one local cluster (`invoke cluster.up --nodes 3`) with the
stack deployed, shared by every test here.

Runs only when asked for (`nox -s e2e` sets ESE_E2E=1 and runs it after the Swarm drill, which
publishes the same ports), or `pytest tests/e2e_cluster`. Always ends with `invoke down
--volumes` (the frontend) and `invoke cluster.down --volumes`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ese.cluster import nodes, spec
from ese.topology import load
from tests.e2e import containers, harness
from tests.tooling import ignored_unless_asked

HERE = Path(__file__).resolve().parent
NODES = 3


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave the drill out of a plain `pytest` run (the `tests` Nox session)."""
    return ignored_unless_asked(HERE, collection_path, config)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The teardown test last, whatever order the modules were named or given in."""
    items.sort(key=lambda item: item.path.name == "test_teardown.py")


@pytest.fixture(scope="session")
def cluster(docker_cli: Any) -> Iterator[harness.Stack]:
    """`invoke cluster.up --nodes 3`: every service healthy, Grafana provisioned. The Stack's
    client is this machine's engine (the clients run there); `manager` is node 1's."""
    topo = load()
    found = containers.leftovers(docker_cli)
    found += [
        c.name for c in docker_cli.containers.list(filters={"name": topo.cluster.node_prefix})
    ]
    if (docker_cli.info().get("Swarm") or {}).get("LocalNodeState") == "active":
        found += [s["Spec"]["Name"] for s in docker_cli.api.services()]
    if found:
        pytest.exit(f"a demo, a swarm stack or a cluster runs ({', '.join(found[:4])}); stop it", 1)
    try:
        # A first cluster.up pulls every image into each node from the registry: on a small
        # machine that outlasts the default wait for healthy services.
        os.environ.setdefault("INVOKE_ESE_HEALTH_TIMEOUT", "900")
        harness.invoke("cluster.up", "--nodes", str(NODES), timeout=2400)
        st = harness.Stack(docker_cli)
        st.load_env()
        yield st
    finally:
        harness.invoke("down", "--volumes", timeout=300, check=False)
        harness.invoke("cluster.down", "--volumes", timeout=600, check=False)


@pytest.fixture(scope="session")
def manager(cluster: harness.Stack) -> Any:
    """The SDK client of node 1's engine, the swarm's manager."""
    return nodes.client(spec.node_names(load(), NODES)[0])
