"""`docker stack deploy`: what it interpolates, the ports it will publish, and the call.

The stack is deployed through the docker CLI, which the SDK cannot do. The CLI reaches the
engine its environment names: this process's (DOCKER_HOST, DOCKER_CONTEXT), with `engine_env`
on top, so another engine (a cluster's manager) is one argument away.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ese.engine import commands
from ese.errors import EseError
from ese.host import ports, secrets
from ese.paths import REPO_ROOT
from ese.render import swarm_stack
from ese.topology import Topology

STACK_FILE = REPO_ROOT / swarm_stack.STACK_FILE


def published(topo: Topology) -> dict[int, str]:
    """Host port -> service, for the stack's published ports."""
    return {
        p["published"]: name
        for name, svc in swarm_stack.services(topo).items()
        for p in svc.get("ports", [])
    }


def check_ports(
    topo: Topology,
    is_free: Callable[[int, str], bool] | None = None,
    holder: Callable[[int], str] | None = None,
) -> None:
    """Before a first deploy: a busy published port would fail its task over and over."""
    is_free, holder = is_free or ports.is_free, holder or ports.holder
    for port, name in sorted(published(topo).items()):
        if not is_free(port, "0.0.0.0"):
            raise EseError(
                ports.busy_message(name, port, holder(port)),
                "stop it (a compose stack: `invoke down`) and run `invoke swarm.up` again",
            )


def deploy_env(
    values: Mapping[str, str],
    names: Mapping[str, str],
    image_refs: Mapping[str, str],
    replicas: int,
) -> dict[str, str]:
    """What `docker stack deploy` interpolates: images, secret names, replicas, Grafana user."""
    return {
        **image_refs,
        **names,
        swarm_stack.REPLICAS_VAR: str(replicas),
        secrets.GRAFANA_USER: values.get(secrets.GRAFANA_USER, "admin"),
    }


def deploy(
    topo: Topology,
    env: Mapping[str, str],
    *,
    registry: bool,
    engine_env: Mapping[str, str] | None = None,
) -> None:
    """`docker stack deploy --prune` the stack file with `env` interpolated."""
    argv = ["docker", "stack", "deploy", "-c", str(STACK_FILE), "--prune"]
    # Without a registry the local images are the only copies: asking a registry for their
    # digest only warns. With one, the digest pins the same image on every node.
    argv += ["--resolve-image", "always" if registry else "never", topo.swarm.stack]
    commands.run(
        argv,
        env={**(engine_env or {}), **env},
        what="docker stack deploy",
        hint="see its output above",
    )
