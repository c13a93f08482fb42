"""`invoke down --volumes` leaves nothing of either project behind."""

from __future__ import annotations

from ese.host.sdk import PROJECT_LABEL
from tests.e2e import containers, harness


def test_down_volumes_leaves_no_container_network_or_volume(stack: harness.Stack) -> None:
    harness.invoke("down", "--volumes", timeout=300)
    cli = stack.cli
    for project in containers.PROJECTS:
        label = {"label": f"{PROJECT_LABEL}={project}"}
        assert not cli.containers.list(all=True, filters=label), project
        assert not cli.networks.list(filters=label), project
        assert not cli.volumes.list(filters=label), project
    assert not containers.consumer_containers(cli)
    assert not cli.containers.list(all=True, filters={"name": "ese-webclient"})
