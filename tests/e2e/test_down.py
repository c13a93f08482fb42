"""`invoke down --volumes` leaves nothing of either project behind.

It removes the stack, so it runs last in a session (see conftest); a module run after it gets
the stack brought up again by its `stack` fixture.
"""

from __future__ import annotations

from ese.host.sdk import PROJECT_LABEL
from tests.e2e import containers, harness


def test_down_volumes_leaves_no_container_network_or_volume(
    stack_to_remove: harness.Stack,
) -> None:
    cli = stack_to_remove.cli
    # Something to remove: the backend is up (a test passing on an empty engine proves nothing).
    assert containers.project_containers(cli, containers.BACKEND)
    harness.invoke("down", "--volumes", timeout=300)
    for project in containers.PROJECTS:
        label = {"label": f"{PROJECT_LABEL}={project}"}
        assert not cli.containers.list(all=True, filters=label), project
        assert not cli.networks.list(filters=label), project
        assert not cli.volumes.list(filters=label), project
    assert not containers.consumer_containers(cli)
    assert not cli.containers.list(all=True, filters={"name": "ese-webclient"})
