"""`invoke down`: remove both compose projects and the consumer container."""

from __future__ import annotations

from ese.engine import standalone_containers
from ese.flows import shared, webclient
from ese.paths import BACKEND_COMPOSE, FRONTEND_COMPOSE


def down(*, volumes: bool) -> None:
    """Remove the frontend, then the backend (with their volumes when asked), then the consumer."""
    topo = shared.topology()
    shared.ensure_env()  # compose interpolates the file even for `down`
    cli = shared.docker()
    args = ["down", "--remove-orphans", *(["--volumes"] if volumes else [])]
    clients = topo.clients
    env = shared.frontend_env(shared.defaults_be_server(topo), clients.delay_ms, clients.limit)
    shared.run_compose(topo.frontend_project, FRONTEND_COMPOSE, *args, env=env)
    shared.run_compose(topo.backend_project, BACKEND_COMPOSE, *args)
    for name in (topo.consumer.name, webclient.NAME):
        if standalone_containers.remove(cli, name):
            print(f"removed container {name}")
