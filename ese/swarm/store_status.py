"""`invoke status` for the Swarm stack's replicated store: which Redis is master and on which
node, each replica's lag, and the master each Sentinel names. Read from Prometheus (the
exporters' series), so it shows what the alerts and the dashboard see."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

from ese.engine.readings import local_url
from ese.render.swarm_redis import REDIS_LABEL, SENTINEL_JOB
from ese.topology import Topology

NAMES = "redis_instance_info|redis_connected_slave_lag_seconds|redis_sentinel_master_ok_slaves"


def query_url(topo: Topology) -> str:
    """Prometheus' query for the series these lines read."""
    query = f'{{__name__=~"{NAMES}",job=~"redis|{SENTINEL_JOB}"}}'
    prom = topo.prometheus
    return local_url(
        prom.bind, prom.port, "/api/v1/query?" + urllib.parse.urlencode({"query": query})
    )


def task_nodes(cli: Any, stack: str, services: tuple[str, ...]) -> dict[str, str]:
    """service (short name) -> the hostname of the node its running task is on."""
    hostnames = {
        n.id: (n.attrs.get("Description") or {}).get("Hostname", n.id) for n in cli.nodes.list()
    }
    out = {}
    for short in services:
        for task in cli.api.tasks(
            filters={"service": f"{stack}_{short}", "desired-state": "running"}
        ):
            out[short] = str(hostnames.get(task.get("NodeID", ""), "?"))
    return out


def lines(text: str, nodes: Mapping[str, str]) -> list[str]:
    """The store's lines from Prometheus' answer to `query_url`; `nodes` from `task_nodes`."""
    series = json.loads(text)["data"]["result"]

    def where(name: str) -> str:
        return f" (on {nodes[name]})" if name in nodes else ""

    roles = {
        s["metric"].get("instance", "?"): s["metric"].get("role", "?")
        for s in series
        if s["metric"]["__name__"] == "redis_instance_info" and s["metric"].get(REDIS_LABEL)
    }
    if not roles:
        return ["  no replicated Redis reported yet (Prometheus scrapes every second)"]
    masters = sorted(name for name, role in roles.items() if role == "master")
    out = [f"  master: {name}{where(name)}" for name in masters] or ["  master: none"]
    lags = {
        s["metric"].get("slave_ip", "?"): float(s["value"][1])
        for s in series
        if s["metric"]["__name__"] == "redis_connected_slave_lag_seconds"
        and s["metric"].get("instance") in masters
    }
    for name in sorted(n for n, role in roles.items() if role != "master"):
        lag = f"last acknowledged {lags[name]:.0f} s ago" if name in lags else "not connected"
        out.append(f"  replica {name}{where(name)}: {lag}")
    for s in sorted(series, key=lambda s: str(s["metric"].get("instance"))):
        m = s["metric"]
        if m["__name__"] == "redis_sentinel_master_ok_slaves":
            out.append(
                f"  {m.get('instance', '?')} names {m.get('master_address', '?')} the master, "
                f"{float(s['value'][1]):.0f} healthy replicas"
            )
    return out
