"""This machine's Docker engine as the cluster tasks reach it: its SDK client (also when
DOCKER_HOST points at a node, as cluster.up says to set it) and the group owning its socket."""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any

from ese.cluster import spec
from ese.host import sdk

DEFAULT_SOCKET = "/var/run/docker.sock"


def into_cluster(value: str) -> bool:
    """DOCKER_HOST `value` points at a cluster node's socket."""
    return value.startswith(f"unix://{spec.SOCKET_ROOT}/")


def client(environ: Mapping[str, str] = os.environ) -> Any:
    """This machine's engine, also when DOCKER_HOST points at a node (as cluster.up says to
    set it for the swarm tasks)."""
    if not into_cluster(environ.get("DOCKER_HOST", "")):
        return sdk.client()
    print("DOCKER_HOST points at a cluster node; the cluster tasks use this machine's engine")
    env = {k: v for k, v in environ.items() if k != "DOCKER_HOST"}
    return sdk.client(lambda: importlib.import_module("docker").from_env(environment=env))


def socket_group(environ: Mapping[str, str] = os.environ) -> int:
    """The group that owns this machine's engine socket, given to the node sockets too: who
    may use this engine may use its nodes. (A node's own `docker` group id names some other
    group here.) root when the engine is not reached through a local socket."""
    host = environ.get("DOCKER_HOST", "")
    if into_cluster(host):
        host = ""
    if host and not host.startswith("unix://"):
        return 0
    try:
        return os.stat(host.removeprefix("unix://") or DEFAULT_SOCKET).st_gid
    except OSError:  # no such socket here (Docker Desktop's lives in its VM): root only
        return 0
