"""The task settings (the `ese` Invoke config namespace): one table, read by everything else.

`SETTINGS` holds each setting once: its default (a value, or where topology.toml keeps it), its
type and bounds, its flag and what it means. The tasks' config, their `--help` texts
(`helps()`) and the README's settings table (`markdown_table()`, kept equal by
tests/tasks/test_defaults.py) are built from it.

Every default is a string: Invoke casts an INVOKE_ESE_<NAME> value to the type of the default
while it loads the config, before any task runs, so an int default turns INVOKE_ESE_CLIENTS=x
into a ValueError traceback from every task (and a bool default turns any non-empty string,
even "false", into True). `option()` converts instead, with a one-line error that names the
flag or variable.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ese.engine.images import MODES
from ese.errors import EseError
from ese.host import lan
from ese.kit.output import TAIL_LINES
from ese.topology import Topology, TopologyError, load
from ese.topology_rules import MAX_CLUSTER_NODES

ENV_PREFIX = "INVOKE_ESE_"


def clients_url(topo: Topology) -> str:
    """The load balancer as the simulator containers reach it: their default ingest URL."""
    return f"http://{lan.DOCKER_HOST_NAME}:{topo.balancer.port}"


@dataclass(frozen=True)
class FromTopology:
    """A default that topology.toml keeps: `where` names it for people, `read` takes it out."""

    where: str
    read: Callable[[Topology], object]


@dataclass(frozen=True)
class Setting:
    """One `ese.<name>` setting: default, type and bounds, flag, and what it sets."""

    default: str | FromTopology
    kind: type = str
    help: str = ""
    flag: str = ""  # the task flag that overrides it ("" when only config/env set it)
    tasks: tuple[str, ...] = ()  # the tasks that take the flag
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()  # for a string: the values it may take

    @property
    def param(self) -> str:
        """The flag's key in a task's `help=` (`--no-auth` documents the `auth` parameter)."""
        return self.flag.removeprefix("--no-").removeprefix("--")


def count(
    where: str, help: str, flag: str, tasks: tuple[str, ...], low: int, high: int | None
) -> Setting:
    """A whole-number setting whose default topology.toml keeps at `where` ("[table] key")."""
    table, key = where.strip("[").split("] ")

    def read(topo: Topology) -> object:
        return getattr(getattr(topo, table), key)

    return Setting(FromTopology(where, read), int, help, flag, tasks, low, high)


# Tasks that pick images (`--images`).
IMAGE_TASKS = (
    "up",
    "backend",
    "frontend",
    "consumer",
    "webclient",
    "doctor",
    "swarm.up",
    "cluster.up",
)

SETTINGS: dict[str, Setting] = {
    "clients": count(
        "[clients] instances",
        "number of ese-client containers",
        "--clients",
        ("frontend",),
        0,
        1000,
    ),
    "be_server": Setting(
        FromTopology("[balancer] port", clients_url),
        str,
        "ingest URL the clients post to: the load balancer, as a container reaches it",
        "--be-server",
        ("frontend", "env"),
    ),
    "delay_ms": count(
        "[clients] delay_ms",
        "milliseconds between simulation ticks",
        "--delay-ms",
        ("frontend",),
        0,
        None,
    ),
    "limit": count(
        "[clients] limit",
        "events each client sends before it stops",
        "--limit",
        ("frontend",),
        0,
        None,
    ),
    "consumer_port": count(
        "[consumer] port", "host port of the dashboard", "--port", ("consumer",), 1, 65535
    ),
    "webclient_port": Setting(
        "3006",
        int,
        "host port of the click-through page (the original app's); the shards allow its origin",
        "--port",
        ("webclient",),
        minimum=1,
        maximum=65535,
    ),
    "images": Setting(
        "auto",
        str,
        "auto: official images, else local stand-ins; official; offline",
        "--images",
        IMAGE_TASKS,
        choices=MODES,
    ),
    "auth": Setting(
        "true",
        bool,
        "shards check tokens; false (--no-auth): they take requests without, as the original "
        "demo's clients need",
        "--no-auth",
        ("up", "backend"),
    ),
    "verbose": Setting(
        "false",
        bool,
        "show the whole output of image builds and compose; false: a line when a build starts "
        f"and one when it ends, and the last {TAIL_LINES} lines of a failure",
        "--verbose",
        ("up", "backend", "frontend", "consumer", "webclient"),
    ),
    "health_timeout": Setting(
        "240",
        float,
        "seconds to wait for healthy services (a first run builds images first)",
        minimum=0,
    ),
    "grafana_timeout": Setting("90", float, "seconds to wait for Grafana's API", minimum=0),
    "grafana_url": Setting(
        "",
        str,
        "Grafana base URL; empty: http://127.0.0.1 on topology.toml's [grafana] port",
        "--url",
        ("grafana",),
    ),
    "log_lines": Setting(
        "40", int, "log lines shown for a service that failed its health check", minimum=0
    ),
    "log_tail": Setting("200", int, "lines of history to show first", "--tail", ("logs",), 0),
    "cluster_nodes": count(
        "[cluster] nodes",
        "node containers of the local cluster, each running its own Docker engine",
        "--nodes",
        ("cluster.up",),
        1,
        MAX_CLUSTER_NODES,
    ),
    "cluster_managers": count(
        "[cluster] managers",
        "of the cluster's nodes, swarm managers: nodes 1..N (3 keep a majority when one is lost)",
        "--managers",
        ("cluster.up",),
        1,
        MAX_CLUSTER_NODES,
    ),
}


def env_name(key: str) -> str:
    """The environment variable that sets `ese.<key>`."""
    return ENV_PREFIX + key.upper()


def defaults() -> dict[str, str]:
    """The `ese` config namespace; overridable via invoke.yaml or INVOKE_ESE_<NAME> env vars.

    With a broken topology.toml the values it keeps are "", and `option()` reports the error.
    """
    try:
        topo: Topology | None = load()
    except TopologyError:
        topo = None
    values = {}
    for key, setting in SETTINGS.items():
        default = setting.default
        if isinstance(default, FromTopology):
            values[key] = "" if topo is None else str(default.read(topo))
        else:
            values[key] = default
    return values


def help_text(key: str, values: Mapping[str, str] | None = None) -> str:
    """A flag's `--help` line: what it sets, its default and the variable that sets it."""
    setting = SETTINGS[key]
    value = (defaults() if values is None else values)[key]
    origin = " from topology.toml" if isinstance(setting.default, FromTopology) else ""
    default = f"default {value}{origin}; " if value else ""
    return f"{setting.help} ({default}{env_name(key)})"


def helps(*keys: str) -> dict[str, str]:
    """The `help=` entries of a task for these settings' flags."""
    values = defaults()
    return {SETTINGS[key].param: help_text(key, values) for key in keys}


def markdown_table() -> str:
    """The README's settings table (tests/tasks/test_defaults.py keeps the README equal)."""
    values = defaults()
    lines = ["| variable | flag | default | what it sets |", "|---|---|---|---|"]
    for key, setting in SETTINGS.items():
        default = f"`{values[key]}`" if values[key] else "empty"
        if isinstance(setting.default, FromTopology):
            default += f" (`topology.toml` `{setting.default.where}`)"
        flag = f"`{setting.flag}` ({', '.join(setting.tasks)})" if setting.flag else ""
        lines.append(f"| `{env_name(key)}` | {flag} | {default} | {setting.help} |")
    return "\n".join(lines) + "\n"


def source(key: str, from_flag: bool, environ: Mapping[str, str] | None = None) -> str:
    """Where a value came from, as the user would write it: the flag, the env var or the config."""
    setting = SETTINGS.get(key, Setting(""))
    if from_flag and setting.flag:
        return setting.flag
    if env_name(key) in (os.environ if environ is None else environ):
        return env_name(key)
    return f"ese.{key} in invoke.yaml"


def _bounds(setting: Setting) -> str:
    lo, hi = setting.minimum, setting.maximum
    fmt = (lambda x: str(int(x))) if setting.kind is int else (lambda x: f"{x:g}")
    if lo is not None and hi is not None:
        return f"between {fmt(lo)} and {fmt(hi)}"
    return f"at least {fmt(lo)}" if lo is not None else ""


def _topology_kept(key: str, value: Any, raw: Any) -> None:
    """Report a broken topology.toml when it was to supply this setting (its config is "")."""
    if value is None and raw == "" and isinstance(SETTINGS[key].default, FromTopology):
        try:
            load()
        except TopologyError as exc:
            raise EseError(str(exc), "fix topology.toml, then run `invoke render`") from None


def option(c: Any, value: Any, key: str) -> Any:
    """The flag's value when given, else `c.config.ese[key]`, converted and range-checked.

    A bad value is an EseError naming the flag (or the INVOKE_ESE_ variable it came from) with
    an example, e.g. `--clients must be a whole number between 0 and 1000, got '-3'`.
    """
    setting = SETTINGS[key]
    kind = setting.kind
    raw = c.config.ese[key] if value is None else value
    _topology_kept(key, value, raw)
    name = source(key, value is not None)
    sample = defaults()[key] or "1"
    example = f"e.g. {name} {sample}" if name.startswith("--") else f"e.g. {env_name(key)}={sample}"
    if kind is str:
        text = "" if raw is None else str(raw).strip()
        if setting.choices and text not in setting.choices:
            raise EseError(
                f"{name} must be one of {', '.join(setting.choices)}, got {raw!r}", example
            )
        return text if setting.choices else ("" if raw is None else str(raw))
    if kind is bool:
        # A string default: Invoke would turn any non-empty INVOKE_ESE_AUTH into True.
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        hint = f"e.g. {env_name(key)}={'false' if sample == 'true' else 'true'}"  # not the default
        raise EseError(f"{name} must be true or false, got {raw!r}", hint)
    what = "a whole number" if kind is int else "a number of seconds"
    limits = _bounds(setting)
    wanted = f"{name} must be {what}{' ' + limits if limits else ''}, got {raw!r}"
    try:
        result = kind(str(raw).strip())
    except (TypeError, ValueError):
        raise EseError(wanted, example) from None
    if kind is float and not math.isfinite(result):
        raise EseError(wanted, example)
    if (setting.minimum is not None and result < setting.minimum) or (
        setting.maximum is not None and result > setting.maximum
    ):
        raise EseError(wanted, example)
    return result


if __name__ == "__main__":
    print(markdown_table(), end="")  # the README's copy: `python -m ese.task_defaults`
