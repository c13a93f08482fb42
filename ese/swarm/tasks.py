"""The `swarm` Invoke collection (added to tasks.py): thin shells over ese/swarm/flows.py."""

from __future__ import annotations

from invoke import Collection, Context, task

from ese.errors import as_exit
from ese.swarm import flows
from ese.task_defaults import option

IMAGES_HELP = "auto (default): official images, else local stand-ins; official; offline"


@task(
    help={
        "build": "rebuild the ese-server image first (as `invoke backend --build`)",
        "replicas": "ingest replicas (default: the running count, else topology.toml)",
        "registry": "HOST:PORT of a registry every node reaches: push local images there",
        "images": IMAGES_HELP,
    }
)
def up(
    c: Context,
    build: bool = False,
    replicas: str | None = None,
    registry: str = "",
    images: str | None = None,
) -> None:
    """Deploy the stack on Docker Swarm (initialising one here if needed) and wait for it."""
    with as_exit():
        flows.up(
            build=build, images_mode=option(c, images, "images"), replicas=replicas,
            registry=registry,
            timeout=option(c, None, "health_timeout"),
            grafana_timeout=option(c, None, "grafana_timeout"),
            log_lines=option(c, None, "log_lines"),
            grafana_url_override=option(c, None, "grafana_url"),
        )  # fmt: skip


@task(help={"ingest": "number of ingest replicas (1 to [swarm] max_ingest_replicas)"})
def scale(c: Context, ingest: str | None = None) -> None:
    """Scale the ingest service; wait until HAProxy and Prometheus see every replica."""
    with as_exit():
        flows.scale(ingest=ingest, timeout=option(c, None, "health_timeout"),
                    log_lines=option(c, None, "log_lines"))  # fmt: skip


@task(
    help={
        "volumes": "also delete the Redis, Prometheus and Grafana volumes",
        "leave": "leave the swarm too, if `invoke swarm.up` created it",
    }
)
def down(c: Context, volumes: bool = False, leave: bool = False) -> None:
    """Remove the stack with its secrets and configs; optionally volumes and the swarm."""
    with as_exit():
        flows.down(volumes=volumes, leave=leave, timeout=option(c, None, "health_timeout"))


ns = Collection("swarm", up, scale, down)
