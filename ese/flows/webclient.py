"""`invoke webclient`: the click-through page (ese-client --web) as a container."""

from __future__ import annotations

from ese.engine import standalone_containers
from ese.flows import shared
from ese.host import secrets

NAME = "ese-webclient"


def webclient(
    *,
    port: int,
    allowed_port: int,
    be_server: str,
    images_mode: str,
    verbose: bool,
    build: bool = False,
) -> None:
    """Serve the page on `port`; the browser posts from it to `be_server` with the ingest token.

    The shards allow the page's origin on `allowed_port`: the configured `ese.webclient_port`
    that `invoke backend` (and `swarm.up`) put into ESE_CORS_ORIGINS. A page on another port
    gets a note, since its browser's requests would be refused.
    """
    topo = shared.topology()
    values = shared.ensure_env()
    cli = shared.docker()
    only = ("python_base", "ese_client")
    plan = shared.image_plan(topo, images_mode, cli, only=only, verbose=verbose)
    env = {**shared.frontend_env(be_server, 0, 0), **plan.env()}
    shared.client_image(topo, plan, cli, env, build, verbose)
    standalone_containers.run(
        cli,
        image=plan.ref("ese_client"),
        name=NAME,
        host_port=port,
        container_port=port,
        bind="0.0.0.0",
        environment={
            "REACT_APP_BE_SERVER": be_server,
            "ESE_INGEST_TOKEN": values.get(secrets.INGEST_TOKEN, ""),
        },
        command=["--web", "--port", str(port), "--host", "0.0.0.0"],
    )
    print(f"Click-through page: http://localhost:{port} (posts to {be_server})")
    if port != allowed_port:
        print(
            f"note: the shards allow the page's origin on port {allowed_port}; run `invoke "
            f"backend` with INVOKE_ESE_WEBCLIENT_PORT={port} so they allow this one"
        )
