"""Task defaults (the `ese` Invoke config namespace) and reading a flag-or-config value.

Defaults come from topology.toml, so the tasks and the generated files agree. Only ints and
strings live here: Invoke turns any non-empty env string into True for a Boolean default
(INVOKE_ESE_X=false would enable X), so boolean switches stay task flags.
"""

from __future__ import annotations

from typing import Any

from ese.errors import EseError
from ese.topology import TopologyError, load


def defaults() -> dict[str, Any]:
    """The `ese` config namespace; overridable via invoke.yaml or INVOKE_ESE_<NAME> env vars."""
    values: dict[str, Any] = {
        "clients": 4,
        "be_server": "http://host.docker.internal:8100",
        "delay_ms": 300,
        "limit": 50000,
        "consumer_port": 8501,
        "health_timeout": 240,  # seconds; a first run builds the images before this starts
        "grafana_timeout": 90,
        "grafana_url": "",  # empty: http://127.0.0.1:<grafana port from topology.toml>
        "log_lines": 40,  # log lines shown for a service that failed its health check
        "log_tail": 200,
    }
    try:
        topo = load()
    except TopologyError:
        return values  # the tasks report the topology error themselves when they load it
    values.update(
        clients=topo.clients.instances,
        be_server=f"http://host.docker.internal:{topo.balancer.port}",
        delay_ms=topo.clients.delay_ms,
        limit=topo.clients.limit,
        consumer_port=topo.consumer.port,
    )
    return values


def option(c: Any, value: Any, key: str, kind: type = str) -> Any:
    """The flag's value when given, else `c.config.ese[key]`, converted to `kind`."""
    raw = c.config.ese[key] if value is None else value
    try:
        result = kind(raw)
    except (TypeError, ValueError):
        raise EseError(
            f"--{key.replace('_', '-')} must be {kind.__name__}, got {raw!r}",
            f"e.g. --{key.replace('_', '-')} {defaults()[key]}",
        ) from None
    if kind is int and result < 0:
        raise EseError(f"--{key.replace('_', '-')} must not be negative, got {raw!r}", "")
    return result
