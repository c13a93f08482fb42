"""The fake's front page: what a person sees opening http://localhost:3000/ in a browser.

Real Grafana draws the panels; this stand-in cannot, so the page says so and links each panel's
PromQL to Prometheus's own graph page, where the offline demo still shows its data.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

# Where a browser on this machine reaches Prometheus (the compose file publishes it there).
PROMETHEUS_ENV = "ESE_PROMETHEUS_PUBLIC_URL"
DEFAULT_PROMETHEUS = "http://localhost:9090"


def graph_url(base: str, expr: str) -> str:
    """Prometheus's graph page for one query, over the last 15 minutes."""
    query = urlencode({"g0.expr": expr, "g0.tab": "0", "g0.range_input": "15m"})
    return f"{base.rstrip('/')}/graph?{query}"


def _panels(dashboard: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    for panel in dashboard.get("panels") or []:
        yield panel
        yield from panel.get("panels") or []  # panels folded inside a row


def render(
    datasources: Iterable[Mapping[str, Any]],
    dashboards: Iterable[Mapping[str, Any]],
    prometheus: str | None = None,
) -> str:
    """The whole HTML page (every value escaped)."""
    base = prometheus or os.environ.get(PROMETHEUS_ENV) or DEFAULT_PROMETHEUS
    esc = html.escape
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>Grafana (offline stand-in)</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}"
        "code{background:#f3f3f3;padding:.1rem .3rem;word-break:break-all}"
        "li{margin:.4rem 0}.note{background:#fff4d6;padding:1rem;border-radius:.4rem}</style>",
        "</head><body>",
        "<h1>Grafana: offline stand-in</h1>",
        "<p class='note'>This is the offline stand-in for Grafana's HTTP API, used where no "
        "image registry can provide Grafana. It stores what provisioning sends but draws no "
        "panels: follow a query below to see its data in Prometheus.</p>",
        "<h2>Datasources</h2><ul>",
    ]
    for ds in datasources:
        out.append(
            f"<li><b>{esc(str(ds.get('name', '')))}</b> (uid <code>{esc(str(ds.get('uid')))}"
            f"</code>, {esc(str(ds.get('type', '')))}) at <code>{esc(str(ds.get('url', '')))}"
            "</code></li>"
        )
    out.append("</ul><h2>Dashboards</h2>")
    for dash in dashboards:
        out.append(
            f"<h3>{esc(str(dash.get('title', '')))} <small>(uid <code>"
            f"{esc(str(dash.get('uid', '')))}</code>)</small></h3><ul>"
        )
        for panel in _panels(dash):
            targets = [t for t in panel.get("targets") or [] if t.get("expr")]
            if not targets:
                continue
            links = "".join(
                f"<br><a href='{esc(graph_url(base, t['expr']))}'><code>{esc(t['expr'])}</code></a>"
                for t in targets
            )
            out.append(f"<li>{esc(str(panel.get('title', '(untitled)')))}{links}</li>")
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out)
