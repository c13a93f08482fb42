"""grafana/datasource.json and grafana/dashboard.json, provisioned through Grafana's HTTP API.

The panels graph the Python services' own metrics. Counters are always read through `rate()`
(the original dashboard used `changes()` on counters, which counts resets, not events).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ese.topology import Topology

WINDOW = "1m"  # rate window: several scrapes wide at any sensible scrape interval


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


def _rate(metric: str, by: str, matcher: str = "") -> str:
    return f"sum by ({by}) (rate({metric}{matcher}[{WINDOW}]))"


def _quantile(q: float) -> Query:
    expr = (
        f"histogram_quantile({q}, sum by (le) "
        f'(rate(ese_http_request_duration_seconds_bucket{{route!="/metrics"}}[{WINDOW}])))'
    )
    return Query(expr, f"p{round(q * 100)}")


def panels(topo: Topology) -> list[Panel]:
    """The dashboard's panels, top to bottom."""
    shards = '{job="ese-server"}'
    return [
        Panel(
            "Request rate per route and shard",
            "reqps",
            (
                Query(
                    _rate("ese_http_request_duration_seconds_count", "shard, route"),
                    "{{shard}} {{route}}",
                ),
            ),
        ),
        Panel(
            "Events ingested per second by type",
            "ops",
            (Query(_rate("ese_events_ingested_total", "type"), "{{type}}"),),
        ),
        Panel(
            "Latency (all shards, scrapes excluded)",
            "s",
            (_quantile(0.5), _quantile(0.95), _quantile(0.99)),
        ),
        Panel(
            "4xx and 5xx responses per second",
            "reqps",
            (
                Query(
                    _rate("ese_http_request_duration_seconds_count", "shard", '{status=~"4.."}'),
                    "4xx {{shard}}",
                ),
                Query(
                    _rate("ese_http_request_duration_seconds_count", "shard", '{status=~"5.."}'),
                    "5xx {{shard}}",
                ),
            ),
        ),
        Panel(
            "Rejected requests by reason",
            "reqps",
            (Query(_rate("ese_requests_rejected_total", "reason"), "{{reason}}"),),
        ),
        Panel(
            "HAProxy sessions per server",
            "short",
            (Query('haproxy_server_current_sessions{proxy="ingest"}', "{{server}}"),),
        ),
        Panel(
            "Servers up (1) or down (0)",
            "short",
            (
                Query('haproxy_server_status{proxy="ingest",state="UP"}', "haproxy {{server}}"),
                Query(f"up{shards}", "scrape {{shard}}"),
                Query("ese_redis_up", "redis seen by {{shard}}"),
            ),
            kind="state-timeline",
        ),
        Panel(
            "Resident memory per shard",
            "bytes",
            (Query(f"process_resident_memory_bytes{shards}", "{{shard}}"),),
        ),
        Panel(
            "CPU per shard",
            "percentunit",
            (Query(f"rate(process_cpu_seconds_total{shards}[{WINDOW}])", "{{shard}}"),),
        ),
        Panel(
            "Open file descriptors per shard",
            "short",
            (Query(f"process_open_fds{shards}", "{{shard}}"),),
        ),
        Panel(
            "Stream length (events in the retention window)",
            "short",
            (Query("max(ese_stream_length)", "events"),),
        ),
        Panel(
            "Redis errors per second",
            "ops",
            (Query(_rate("ese_redis_errors_total", "shard"), "{{shard}}"),),
        ),
        Panel(
            "Original demo counters (requests per second)",
            "reqps",
            tuple(
                Query(f"sum(rate({name}[{WINDOW}]))", name)
                for name in (
                    "health_ping_count",
                    "add_event_ping_count",
                    "add_events_ping_count",
                    "get_events_ping_count",
                )
            ),
            description="The original Go server's counter names, kept for its dashboard.",
        ),
    ]


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
