"""`invoke logs`: the backend's logs, or one service's."""

from __future__ import annotations

import sys

from ese.engine import standalone_containers
from ese.errors import EseError
from ese.flows import shared
from ese.paths import BACKEND_COMPOSE, FRONTEND_COMPOSE


def logs(*, service: str | None, follow: bool, tail: int) -> None:
    """Compose's logs for the two projects; the SDK's for the consumer container."""
    topo = shared.topology()
    backend = shared.backend_services(topo)
    known = [*backend, topo.clients.service, topo.consumer.name]
    if service is not None and service not in known:
        raise EseError(f"unknown service {service!r}", f"use one of: {', '.join(known)}")
    shared.ensure_env()
    cli = shared.docker()  # "how to start Docker" instead of a compose/daemon error
    opts = ["logs", "--tail", str(tail), *(["--follow"] if follow else [])]
    if service is None or service in backend:
        svc = [service] if service else []
        shared.run_compose(topo.backend_project, BACKEND_COMPOSE, *opts, *svc)
    elif service == topo.clients.service:
        clients = topo.clients
        env = shared.frontend_env(shared.defaults_be_server(topo), clients.delay_ms, clients.limit)
        shared.run_compose(topo.frontend_project, FRONTEND_COMPOSE, *opts, service, env=env)
    else:  # the consumer is a plain container, not part of a compose project
        for chunk in standalone_containers.logs(cli, service, tail=tail, follow=follow):
            sys.stdout.write(chunk)
            sys.stdout.flush()
