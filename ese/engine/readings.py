"""What the stack's services answer, read: HAProxy's stats CSV, Prometheus' targets, `/stats`.

Shared by `invoke status` (compose) and the Swarm waits, so both read the services one way.
"""

from __future__ import annotations

import csv
import io
import json
import urllib.request
from collections.abc import Callable, Mapping

Fetch = Callable[[str, Mapping[str, str]], str]


def fetch(url: str, headers: Mapping[str, str], timeout: float = 3.0) -> str:
    """GET `url` and return the body; raise OSError (incl. HTTP errors) on failure."""
    req = urllib.request.Request(url, headers=dict(headers))
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return str(resp.read().decode("utf-8", "replace"))


def local_url(bind: str, port: int, path: str) -> str:
    host = "127.0.0.1" if bind in ("0.0.0.0", "::") else bind
    return f"http://{host}:{port}{path}"


def haproxy_servers(text: str) -> list[tuple[str, str, str, str]]:
    """(backend, server, status, current sessions) from HAProxy's stats CSV."""
    lines = text.lstrip("# ").splitlines()
    out = []
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        if row.get("svname") in ("FRONTEND", "BACKEND", None):
            continue
        out.append((row["pxname"], row["svname"], row.get("status", "?"), row.get("scur", "?")))
    return out


def prometheus_targets(text: str) -> list[tuple[str, str, str, str]]:
    """(job, instance, health, last error) from Prometheus' /api/v1/targets."""
    data = json.loads(text).get("data", {})
    out = []
    for t in data.get("activeTargets", []):
        labels = t.get("labels", {})
        out.append(
            (
                labels.get("job", "?"),
                labels.get("instance", t.get("scrapeUrl", "?")),
                t.get("health", "?"),
                t.get("lastError", ""),
            )
        )
    return sorted(out)


def events_stored(text: str) -> str:
    stats = json.loads(text)
    by_type = stats.get("by_type", {})
    detail = ", ".join(f"{k} {v}" for k, v in by_type.items())
    return f"{stats.get('total', '?')}" + (f" ({detail})" if detail else "")
