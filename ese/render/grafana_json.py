"""grafana/datasource.json and grafana/dashboard.json, provisioned through Grafana's HTTP API.

The panels graph the Python services' own metrics. Counters are always read through `rate()`
(the original dashboard used `changes()` on counters, which counts resets, not events).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from ese.render.prometheus_yml import REDIS_JOB
from ese.render.swarm_nodes import NODE_JOB
from ese.render.swarm_redis import REPLICATED, SENTINEL_JOB
from ese.topology import Topology

WINDOW = "1m"  # rate window: several scrapes wide at any sensible scrape interval
PANELS_FILE = Path(__file__).with_name("dashboard_panels.toml")


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    queries: tuple[Query, ...]
    kind: str = "timeseries"
    description: str = ""


KINDS = ("timeseries", "state-timeline")


def panels(topo: Topology, source: Path = PANELS_FILE) -> list[Panel]:
    """The dashboard's panels, top to bottom, from `source` with its $placeholders filled."""
    words = {
        "window": WINDOW,
        "shards": '{job="ese-server"}',
        "redis": f'{{job="{REDIS_JOB}"}}',
        "nodes": f'{{job="{NODE_JOB}"}}',
        "node_job": NODE_JOB,
        "replicated": REPLICATED,
        "sentinels": f'{{job="{SENTINEL_JOB}"}}',
    }
    found = []
    for item in tomllib.loads(source.read_text(encoding="utf-8"))["panel"]:
        title = item["title"]
        try:
            queries = tuple(
                Query(Template(q["expr"]).substitute(words), q["legend"]) for q in item["queries"]
            )
        except KeyError as exc:
            raise ValueError(
                f"{source.name}: panel {title!r} uses ${exc.args[0]}; the placeholders are "
                + ", ".join(f"${w}" for w in words)
            ) from None
        kind = item.get("kind", "timeseries")
        if kind not in KINDS or not queries:
            raise ValueError(f"{source.name}: panel {title!r} needs a kind in {KINDS} and a query")
        found.append(Panel(title, item["unit"], queries, kind, item.get("description", "")))
    return found


def _datasource_ref(topo: Topology) -> dict[str, str]:
    return {"type": "prometheus", "uid": topo.grafana.datasource_uid}


def _panel_json(topo: Topology, panel: Panel, index: int) -> dict[str, Any]:
    ds = _datasource_ref(topo)
    width = 12
    options: dict[str, Any] = {"legend": {"displayMode": "list", "placement": "bottom"}}
    if panel.kind == "timeseries":
        options["tooltip"] = {"mode": "multi", "sort": "desc"}
    return {
        "id": index + 1,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": ds,
        "gridPos": {"h": 8, "w": width, "x": (index % 2) * width, "y": (index // 2) * 8},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": options,
        "targets": [
            {
                "refId": chr(ord("A") + n),
                "datasource": ds,
                "expr": query.expr,
                "legendFormat": query.legend,
            }
            for n, query in enumerate(panel.queries)
        ],
    }


def dashboard_model(topo: Topology) -> dict[str, Any]:
    """The dashboard model, as `POST /api/dashboards/db` takes it under `dashboard`."""
    graf = topo.grafana
    return {
        "uid": graf.dashboard_uid,
        "title": graf.dashboard_title,
        "tags": ["ese"],
        "timezone": "browser",
        "editable": True,
        "schemaVersion": 39,
        "refresh": "5s",
        "time": {"from": "now-15m", "to": "now"},
        "panels": [_panel_json(topo, p, i) for i, p in enumerate(panels(topo))],
    }


def datasource_model(topo: Topology) -> dict[str, Any]:
    """The Prometheus datasource, as `POST /api/datasources` takes it."""
    prom = topo.prometheus
    return {
        "uid": topo.grafana.datasource_uid,
        "name": topo.grafana.datasource_name,
        "type": "prometheus",
        "access": "proxy",
        "url": f"http://{prom.name}:{prom.port}",
        "isDefault": True,
        "jsonData": {"timeInterval": prom.scrape_interval, "httpMethod": "POST"},
    }


def _json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def datasource(topo: Topology) -> str:
    return _json(datasource_model(topo))


def dashboard(topo: Topology) -> str:
    return _json(dashboard_model(topo))
