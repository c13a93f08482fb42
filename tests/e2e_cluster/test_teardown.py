"""The last cluster test (conftest.py orders it last): `invoke cluster.down --volumes` leaves
nothing of the cluster."""

from __future__ import annotations

from typing import Any

from ese.cluster import nodes, registry, spec
from tests.e2e import harness
from tests.e2e_cluster.view import TOPO


def test_down_with_volumes_leaves_nothing(cluster: harness.Stack, docker_cli: Any) -> None:
    port = registry.host_port(registry.find(docker_cli, TOPO))
    assert port, "the registry publishes no port"
    harness.invoke("down", "--volumes", timeout=300)
    harness.invoke("cluster.down", "--volumes", timeout=600)
    mark = {"label": f"{spec.CLUSTER_LABEL}={TOPO.cluster.network}"}
    assert docker_cli.containers.list(all=True, filters=mark) == []
    assert nodes.find(docker_cli, TOPO) == [] and registry.find(docker_cli, TOPO) is None
    assert docker_cli.networks.list(names=[TOPO.cluster.network]) == []
    assert docker_cli.volumes.list(filters=mark) == []
    assert registry.host_tags(docker_cli, port) == []
