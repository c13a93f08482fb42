"""The ese-server image, built once through the compose service that owns its `build:`.

Below the flows, because both `invoke backend` and the Swarm stack's image step need it.
"""

from __future__ import annotations

from typing import Any

from ese.engine import compose, images
from ese.host import secrets
from ese.paths import BACKEND_COMPOSE
from ese.topology import Topology


def build(
    topo: Topology, plan: images.Plan, cli: Any, rebuild: bool, verbose: bool = False
) -> None:
    """Build ese-server unless it is present (or always, with `rebuild`); the builder's own
    output only with `verbose`.

    The other shards only name the image; building it first means compose never builds the
    same tag twice in parallel, nor tries to pull it for them.
    """
    image = plan.ref("ese_server")
    if not rebuild and images.present(cli, image):
        return
    compose.build(
        topo.backend_project,
        BACKEND_COMPOSE,
        topo.shards[0].name,
        image,
        base=plan.ref("python_base"),
        env=plan.env(),
        env_file=secrets.ENV_FILE,  # looked up at call time, so tests can point it elsewhere
        verbose=verbose,
    )
