"""`invoke frontend`: N simulator containers (project ese-frontend) against the load balancer."""

from __future__ import annotations

from urllib.parse import urlsplit

from ese.flows import shared
from ese.host import lan
from ese.paths import FRONTEND_COMPOSE
from ese.validate import check_url


def frontend(
    *,
    clients: int,
    be_server: str,
    delay_ms: int,
    limit: int,
    images_mode: str,
    be_server_flag: str,
    verbose: bool,
    build: bool = False,
) -> None:
    """Start the simulators; build their image first when it is missing or asked for.

    Compose's own output (build steps, one line per container) only with `verbose`.
    """
    topo = shared.topology()
    check_url(be_server, be_server_flag)
    if urlsplit(be_server).hostname in ("localhost", "127.0.0.1", "::1"):
        print(
            "note: inside a container localhost is the container itself; the host is "
            f"{lan.DOCKER_HOST_NAME}"
        )
    shared.render_if_stale(topo)
    shared.ensure_env()
    cli = shared.docker()  # a clear "Docker is not running" before compose runs
    only = ("python_base", "ese_client")
    plan = shared.image_plan(topo, images_mode, cli, only=only, verbose=verbose)
    env = {**shared.frontend_env(be_server, delay_ms, limit), **plan.env()}
    shared.client_image(topo, plan, cli, env, build, verbose)
    project, service = topo.frontend_project, topo.clients.service
    args = ["up", "-d", "--scale", f"{service}={clients}"]
    shared.run_compose(project, FRONTEND_COMPOSE, *args, env=env, show_output=verbose)
    print(f"{clients} x {service} sending to {be_server} (`invoke status` to watch)")
