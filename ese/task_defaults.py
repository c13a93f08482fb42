"""Task defaults (the `ese` Invoke config namespace) and reading a flag-or-config value.

Defaults come from topology.toml, so the tasks and the generated files agree. Every default is
a string: Invoke casts an INVOKE_ESE_<NAME> value to the type of the default while it loads the
config, before any task runs, so an int default turns INVOKE_ESE_CLIENTS=x into a ValueError
traceback from every task (and a bool default turns any non-empty string, even "false", into
True). `option()` converts instead, with a one-line error that names the flag or variable.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ese.errors import EseError
from ese.topology import MAX_CLUSTER_NODES, Cluster, TopologyError, load

ENV_PREFIX = "INVOKE_ESE_"


@dataclass(frozen=True)
class Spec:
    """How one setting is typed, bounded and named on the command line."""

    kind: type
    flag: str = ""  # the task flag that overrides it ("" when only config/env set it)
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()  # for a string: the values it may take


SPECS: dict[str, Spec] = {
    "clients": Spec(int, "--clients", 0, 1000),
    "be_server": Spec(str, "--be-server"),
    "delay_ms": Spec(int, "--delay-ms", 0),
    "limit": Spec(int, "--limit", 0),
    "consumer_port": Spec(int, "--port", 1, 65535),
    "health_timeout": Spec(float, "", 0),
    "grafana_timeout": Spec(float, "", 0),
    "grafana_url": Spec(str, "--url"),
    "log_lines": Spec(int, "", 0),
    "log_tail": Spec(int, "--tail", 0),
    "images": Spec(str, "--images", choices=("auto", "official", "offline")),
    "auth": Spec(bool, "--no-auth"),
    "webclient_port": Spec(int, "--port", 1, 65535),
    "cluster_nodes": Spec(int, "--nodes", 1, MAX_CLUSTER_NODES),
    "cluster_managers": Spec(int, "--managers", 1, MAX_CLUSTER_NODES),
}


def defaults() -> dict[str, str]:
    """The `ese` config namespace; overridable via invoke.yaml or INVOKE_ESE_<NAME> env vars."""
    values = {
        "clients": "4",
        "be_server": "http://host.docker.internal:8100",
        "delay_ms": "300",
        "limit": "50000",
        "consumer_port": "8501",
        "health_timeout": "240",  # seconds; a first run builds the images before this starts
        "grafana_timeout": "90",
        "grafana_url": "",  # empty: http://127.0.0.1:<grafana port from topology.toml>
        "log_lines": "40",  # log lines shown for a service that failed its health check
        "log_tail": "200",
        "images": "auto",  # auto | official | offline (see ese/engine/images.py)
        "auth": "true",  # "false": the shards take requests without tokens (--no-auth)
        "webclient_port": "3006",  # the original demo's standalone page
        # invoke cluster.up: node containers (each a Docker engine), of them swarm managers
        "cluster_nodes": str(Cluster.nodes),
        "cluster_managers": str(Cluster.managers),
    }
    try:
        topo = load()
    except TopologyError:
        return values  # the tasks report the topology error themselves when they load it
    values.update(
        clients=str(topo.clients.instances),
        be_server=f"http://host.docker.internal:{topo.balancer.port}",
        delay_ms=str(topo.clients.delay_ms),
        limit=str(topo.clients.limit),
        consumer_port=str(topo.consumer.port),
        cluster_nodes=str(topo.cluster.nodes),
        cluster_managers=str(topo.cluster.managers),
    )
    return values


def source(key: str, from_flag: bool, environ: Mapping[str, str] | None = None) -> str:
    """Where a value came from, as the user would write it: the flag, the env var or the config."""
    spec = SPECS.get(key, Spec(str))
    if from_flag and spec.flag:
        return spec.flag
    env_name = ENV_PREFIX + key.upper()
    if env_name in (os.environ if environ is None else environ):
        return env_name
    return f"ese.{key} in invoke.yaml"


def _bounds(spec: Spec) -> str:
    lo, hi = spec.minimum, spec.maximum
    fmt = (lambda x: str(int(x))) if spec.kind is int else (lambda x: f"{x:g}")
    if lo is not None and hi is not None:
        return f"between {fmt(lo)} and {fmt(hi)}"
    return f"at least {fmt(lo)}" if lo is not None else ""


def option(c: Any, value: Any, key: str, kind: type | None = None) -> Any:
    """The flag's value when given, else `c.config.ese[key]`, converted and range-checked.

    A bad value is an EseError naming the flag (or the INVOKE_ESE_ variable it came from) with
    an example, e.g. `--clients must be a whole number between 0 and 1000, got '-3'`.
    """
    spec = SPECS.get(key, Spec(kind or str))
    kind = kind or spec.kind
    raw = c.config.ese[key] if value is None else value
    name = source(key, value is not None)
    sample = defaults().get(key, "1")
    if name.startswith("--"):
        example = f"e.g. {name} {sample}"
    else:
        example = f"e.g. {ENV_PREFIX}{key.upper()}={sample}"
    if kind is str:
        text = "" if raw is None else str(raw).strip()
        if spec.choices and text not in spec.choices:
            raise EseError(f"{name} must be one of {', '.join(spec.choices)}, got {raw!r}", example)
        return text if spec.choices else ("" if raw is None else str(raw))
    if kind is bool:
        # A string default: Invoke would turn any non-empty INVOKE_ESE_AUTH into True.
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise EseError(f"{name} must be true or false, got {raw!r}", f"e.g. {ENV_PREFIX}AUTH=false")
    what = "a whole number" if kind is int else "a number of seconds"
    limits = _bounds(spec)
    wanted = f"{name} must be {what}{' ' + limits if limits else ''}, got {raw!r}"
    try:
        text = str(raw).strip()
        result = kind(text)
    except (TypeError, ValueError):
        raise EseError(wanted, example) from None
    if kind is float and not math.isfinite(result):
        raise EseError(wanted, example)
    if (spec.minimum is not None and result < spec.minimum) or (
        spec.maximum is not None and result > spec.maximum
    ):
        raise EseError(wanted, example)
    return result
