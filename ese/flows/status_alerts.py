"""`invoke status`: the alerts Alertmanager holds and Redis' memory against its maxmemory."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from ese.render.prometheus_yml import REDIS_JOB
from ese.topology import Topology

Fetch = Callable[[str, Mapping[str, str]], str]
_SEVERITY = {"critical": 0, "warning": 1, "info": 2}
_MEMORY = ("redis_memory_used_bytes", "redis_memory_max_bytes")


def _local(bind: str, port: int, path: str) -> str:
    host = "127.0.0.1" if bind in ("0.0.0.0", "::") else bind
    return f"http://{host}:{port}{path}"


def alerts_url(topo: Topology) -> str:
    am = topo.alertmanager
    return _local(am.bind, am.port, "/api/v2/alerts")


def memory_url(topo: Topology) -> str:
    prom = topo.prometheus
    names = "|".join(_MEMORY)
    query = f'{{__name__=~"{names}",job="{REDIS_JOB}"}}'
    return _local(prom.bind, prom.port, "/api/v1/query?" + urllib.parse.urlencode({"query": query}))


def alert_lines(text: str) -> list[str]:
    """Alertmanager's /api/v2/alerts as lines, most severe first; resolved ones are not there."""
    alerts = json.loads(text)
    if not isinstance(alerts, list):
        raise ValueError(f"not an Alertmanager alert list: {text[:80]}")

    def key(a: dict[str, Any]) -> tuple[int, str, str]:  # most severe first
        labels = a.get("labels", {})
        rank = _SEVERITY.get(labels.get("severity", ""), len(_SEVERITY))
        return rank, labels.get("alertname", ""), labels.get("shard", "")

    out = []
    for alert in sorted(alerts, key=key):
        labels, notes = alert.get("labels", {}), alert.get("annotations", {})
        shard = f" {labels['shard']}" if labels.get("shard") else ""
        state = (alert.get("status") or {}).get("state", "active")
        # active = sent to the receivers; suppressed = silenced or inhibited by another alert.
        flag = "" if state == "active" else f" [{state}]"
        since = str(alert.get("startsAt", ""))[:19].replace("T", " ")
        summary = notes.get("summary", "")
        out.append(
            f"  {labels.get('severity', '?')} {labels.get('alertname', '?')}{shard}{flag}: "
            f"{summary} (since {since} UTC)"
        )
    return out or ["  none firing"]


def _mib(n: float) -> str:
    return f"{n / 1024**2:.1f} MiB"


def memory_line(text: str) -> str:
    """Redis memory used against maxmemory, from Prometheus' answer to `memory_url`."""
    data = json.loads(text)
    if data.get("status") != "success":
        raise ValueError(f"Prometheus: {data.get('error', data.get('status'))}")
    values = {r["metric"]["__name__"]: float(r["value"][1]) for r in data["data"]["result"]}
    used, limit = values.get(_MEMORY[0]), values.get(_MEMORY[1])
    if used is None:
        return f"  no data yet (Prometheus job {REDIS_JOB}: is redis-exporter up?)"
    if not limit:
        return f"  {_mib(used)} used, no maxmemory limit"
    return f"  {_mib(used)} used of {_mib(limit)} maxmemory ({used / limit:.1%})"


def sections(topo: Topology, get: Fetch) -> list[tuple[str, Callable[[], list[str]]]]:
    """(title, lines) of the two status sections; `lines` raises when a source is down."""
    alerts, memory = alerts_url(topo), memory_url(topo)
    prom = topo.prometheus
    where = _local(prom.bind, prom.port, "")
    return [
        (f"Alerts ({alerts})", lambda: alert_lines(get(alerts, {}))),
        (f"Redis memory (redis_exporter via {where})", lambda: [memory_line(get(memory, {}))]),
    ]
