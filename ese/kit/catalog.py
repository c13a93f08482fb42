"""The images the kit builds, their tags and the topology overrides that select them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KitImage:
    """One image of the kit.

    `parent` is the kit image it is built FROM; `env` is the topology.toml `[images.*].env`
    variable that makes the compose files (or the service builds) use it; `smoke_uses` are kit
    images its smoke test runs beside it. A Dockerfile image is built from `images/<recipe>/`
    (its name when unset) with that folder as context, at `target` with `args` when given.
    """

    name: str
    tag: str
    env: str | None
    parent: str | None
    stands_in_for: str
    smoke_uses: tuple[str, ...] = ()
    recipe: str = ""
    target: str | None = None
    args: tuple[tuple[str, str], ...] = ()

    @property
    def folder(self) -> str:
        return self.recipe or self.name


# The Prometheus project's tools share one recipe: Debian's package, the official layout.
PROMETHEUS_TOOLS = "prometheus-tools"


IMAGES: tuple[KitImage, ...] = (
    KitImage("debian", "ese-offline/debian:bookworm", None, None, "debian:bookworm"),
    KitImage("redis", "ese-offline/redis:7", "ESE_REDIS_IMAGE", "debian", "redis:7-alpine"),
    KitImage(
        "haproxy", "ese-offline/haproxy:2.6", "ESE_HAPROXY_IMAGE", "debian", "haproxy:2.8-alpine"
    ),
    KitImage(
        "prometheus",
        "ese-offline/prometheus:2.42",
        "ESE_PROMETHEUS_IMAGE",
        "debian",
        "prom/prometheus",
        recipe=PROMETHEUS_TOOLS,
        target="prometheus",
        args=(("PACKAGE", "prometheus"), ("NAME", "prometheus"), ("CHECKER", "promtool")),
    ),
    KitImage(
        "alertmanager",
        "ese-offline/alertmanager:0.25",
        "ESE_ALERTMANAGER_IMAGE",
        "debian",
        "prom/alertmanager",
        recipe=PROMETHEUS_TOOLS,
        target="alertmanager",
        args=(
            ("PACKAGE", "prometheus-alertmanager"),
            ("NAME", "alertmanager"),
            ("CHECKER", "amtool"),
        ),
    ),
    KitImage(
        "redis_exporter",
        "ese-offline/redis-exporter:1.45",
        "ESE_REDIS_EXPORTER_IMAGE",
        "debian",
        "oliver006/redis_exporter",
        smoke_uses=("redis",),
    ),
    KitImage(
        "node_exporter",
        "ese-offline/node-exporter:1.5",
        "ESE_NODE_EXPORTER_IMAGE",
        "debian",
        "prom/node-exporter",
    ),
    KitImage(
        "python",
        "ese-offline/python:3.11",
        "ESE_PYTHON_BASE_IMAGE",
        "debian",
        "python:3.11-slim-bookworm",
    ),
    KitImage(
        "grafana",
        "ese-offline/grafana-fake:1",
        "ESE_GRAFANA_IMAGE",
        "python",
        "grafana/grafana",
        recipe="grafana-fake",
    ),
    # The local cluster's (`invoke cluster.up`): its nodes' Docker engine and its registry.
    KitImage(
        "node",
        "ese-offline/docker:20.10-dind",
        "ESE_NODE_IMAGE",
        "debian",
        "docker:27.5.1-dind",
        recipe="docker-node",
    ),
    KitImage(
        "registry", "ese-offline/registry:2.8", "ESE_REGISTRY_IMAGE", "debian", "registry:2.8.3"
    ),
)
BY_NAME = {image.name: image for image in IMAGES}


def with_parents(names: list[str]) -> list[KitImage]:
    """The named images plus the kit images they are built from, parents first."""
    wanted: set[str] = set()
    for name in names:
        current: str | None = name
        while current is not None:
            wanted.add(current)
            current = BY_NAME[current].parent
    return [image for image in IMAGES if image.name in wanted]


def env_overrides(images: list[KitImage] | tuple[KitImage, ...] = IMAGES) -> dict[str, str]:
    """`ESE_*_IMAGE` variable -> kit tag, for the images that stand in for a topology image."""
    return {image.env: image.tag for image in images if image.env}


def env_lines(overrides: dict[str, str]) -> list[str]:
    """Lines a POSIX shell can source (values are plain image refs: no quoting needed)."""
    return [f"export {key}={value}" for key, value in overrides.items()]
