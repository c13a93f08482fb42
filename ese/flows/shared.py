"""What every flow starts with: the topology, fresh configs, the secrets file, compose, images."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ese import render, task_defaults
from ese.engine import compose, images
from ese.errors import EseError
from ese.flows import endpoints
from ese.host import lan, sdk, secrets
from ese.paths import FRONTEND_COMPOSE, REPO_ROOT
from ese.topology import Topology, TopologyError, load


def topology() -> Topology:
    """topology.toml, or an EseError that says how to fix it."""
    try:
        return load()
    except TopologyError as exc:
        raise EseError(str(exc), "fix topology.toml, then run `invoke render`") from None


def render_if_stale(topo: Topology, root: Path = REPO_ROOT) -> list[str]:
    """Regenerate the configs when the topology changed; report what was written."""
    changed = render.write(topo, root)
    for rel in changed:
        print(f"rendered {rel}")
    return changed


def ensure_env(path: Path | None = None) -> dict[str, str]:
    """docker/.env's secrets, written on the first run."""
    path = path or secrets.ENV_FILE  # looked up at call time so tests can point it elsewhere
    values, written = secrets.ensure(path)
    if written:
        print(f"wrote {', '.join(written)} to {endpoints.show_path(path)} (keep it private)")
    return values


def run_compose(project: str, file: Path, *args: str, **kwargs: Any) -> Any:
    """docker_compose() with this install's env file (looked up at call time, for tests)."""
    return compose.docker_compose(project, file, *args, env_file=secrets.ENV_FILE, **kwargs)


def image_plan(
    topo: Topology, mode: str, cli: Any, only: tuple[str, ...] = (), *, verbose: bool
) -> images.Plan:
    """The images of this run (see ese.engine.images), decided once per task."""
    return images.plan(topo, mode, cli, only=only, verbose=verbose)


def client_image(
    topo: Topology, plan: images.Plan, cli: Any, env: dict[str, str], rebuild: bool, verbose: bool
) -> None:
    """Build the ese-client image (simulators and click-through page) when it is missing or
    `rebuild` asks, through its compose service; the builder's output only with `verbose`."""
    image = plan.ref("ese_client")
    if rebuild or not images.present(cli, image):
        compose.build(
            topo.frontend_project,
            FRONTEND_COMPOSE,
            topo.clients.service,
            image,
            base=plan.ref("python_base"),
            env=env,
            env_file=secrets.ENV_FILE,
            verbose=verbose,
        )


def docker() -> Any:
    """The Docker SDK client, or an EseError that says how to start Docker."""
    return sdk.client()


def backend_services(topo: Topology) -> list[str]:
    return [
        topo.redis.name,
        *(s.name for s in topo.shards),
        topo.balancer.name,
        topo.redis_exporter.name,
        topo.prometheus.name,
        topo.alertmanager.name,
        topo.grafana.name,
    ]


def frontend_env(be_server: str, delay_ms: int, limit: int) -> dict[str, str]:
    """Environment of the client containers, handed to compose via env= (works on every OS)."""
    return {
        "REACT_APP_BE_SERVER": be_server,
        "ESE_EVENT_DELAY_MS": str(delay_ms),
        "ESE_EVENT_LIMIT": str(limit),
    }


def browser_be_server(topo: Topology) -> str:
    """The load balancer as a browser on this machine reaches it."""
    return f"http://localhost:{topo.balancer.port}"


def defaults_be_server(topo: Topology) -> str:
    """The simulators' default ingest URL (`ese.be_server`'s default)."""
    return task_defaults.clients_url(topo)


def lan_or_none(find: Callable[[], str] | None = None) -> str | None:
    try:
        return (find or lan.lan_ipv4)()
    except EseError:
        return None
