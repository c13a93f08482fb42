"""HTTP from the outside: only 127.0.0.1 and the stack's published ports, every call bounded.

Plain urllib on purpose: what a user's browser or curl sees, with no client library between.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ese.host import processes

T = TypeVar("T")

LB = "http://127.0.0.1:8100"
ANALYTICS = "http://127.0.0.1:2003"
PROMETHEUS = "http://127.0.0.1:9090"
ALERTMANAGER = "http://127.0.0.1:9093"
GRAFANA = "http://127.0.0.1:3000"
CONSUMER = "http://127.0.0.1:8501"
SHARDS = {"ese-server1": "http://127.0.0.1:2001", "ese-server2": "http://127.0.0.1:2002"}

PAGE = 10_000  # the server's hard cap for ?limit=
MAX_PAGES = 100  # bounds a stream read at a million events


def request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    """(status, body) of one request; HTTP errors are answers too, not exceptions."""
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def get_json(url: str, headers: Mapping[str, str] | None = None, timeout: float = 10.0) -> Any:
    """GET a JSON document, asserting a 200."""
    status, body = request("GET", url, headers=headers, timeout=timeout)
    assert status == 200, f"GET {url} -> {status}: {body[:300]!r}"
    return json.loads(body)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def wait_until(
    probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5
) -> T:
    """Poll `probe` until it returns a truthy value; fail the test naming `what`."""
    try:
        value = processes.wait_until(probe, timeout, what, interval)
    except processes.TimedOut as exc:
        raise AssertionError(str(exc)) from None
    assert value is not None  # a truthy value is never None: for the type checker
    return value


def read_stream(token: str, since: str = "0") -> tuple[list[dict[str, Any]], str]:
    """Every event after `since` from the analytics shard, paging with its cursor."""
    events: list[dict[str, Any]] = []
    cursor = since
    for _ in range(MAX_PAGES):
        page = get_json(f"{ANALYTICS}/events?since={cursor}&limit={PAGE}", bearer(token))
        events += page["events"]
        cursor = str(page["cursor"])
        if len(page["events"]) < PAGE:
            return events, cursor
    raise AssertionError(f"stream longer than {MAX_PAGES} pages of {PAGE}")


def stats(token: str) -> dict[str, Any]:
    data = get_json(f"{ANALYTICS}/stats", bearer(token))
    assert isinstance(data, dict)
    return data


def haproxy_servers() -> dict[str, dict[str, str]]:
    """Rows of the ingest backend's servers from the stats CSV, by server name."""
    status, body = request("GET", f"{LB}/stats;csv", timeout=5)
    assert status == 200, f"HAProxy stats CSV -> {status}"
    text = body.decode().lstrip("# ")
    return {
        row["svname"]: row
        for row in csv.DictReader(io.StringIO(text))
        if row["pxname"] == "ingest" and row["svname"] not in ("FRONTEND", "BACKEND")
    }


def prom_query(expr: str) -> list[dict[str, Any]]:
    url = f"{PROMETHEUS}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    data = get_json(url)
    assert data["status"] == "success", data
    result = data["data"]["result"]
    assert isinstance(result, list)
    return result


def prom_scalar(expr: str) -> float:
    """The value of a one-sample query (0 when the result is empty)."""
    result = prom_query(expr)
    return float(result[0]["value"][1]) if result else 0.0


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`, from Prometheus text."""
    total = 0.0
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric = head.split("{", 1)[0]
        if metric == name and all(w in head for w in wanted):
            total += float(value)
    return total


def shard_503s() -> float:
    """503 answers counted by the ingest shards' own request histograms."""
    total = 0.0
    for url in SHARDS.values():
        status, body = request("GET", f"{url}/metrics", timeout=5)
        assert status == 200, f"{url}/metrics -> {status}"
        name = "ese_http_request_duration_seconds_count"
        total += metric_sum(body.decode(), name, status="503")
    return total


def prometheus_alerts(name: str) -> list[dict[str, Any]]:
    """Prometheus' pending and firing alerts named `name` (/api/v1/alerts)."""
    alerts = get_json(f"{PROMETHEUS}/api/v1/alerts")["data"]["alerts"]
    return [a for a in alerts if a["labels"].get("alertname") == name]


def alertmanager_alerts(name: str | None = None) -> list[dict[str, Any]]:
    """The alerts Alertmanager holds (resolved ones are gone), all or those named `name`."""
    alerts = get_json(f"{ALERTMANAGER}/api/v2/alerts")
    assert isinstance(alerts, list), alerts
    return [a for a in alerts if name is None or a["labels"].get("alertname") == name]


def alarms() -> list[str]:
    """Every alert firing in Prometheus or held by Alertmanager, as `name shard` (for a stack
    handed on to the next test module: a quiet one has none)."""
    alerts = get_json(f"{PROMETHEUS}/api/v1/alerts")["data"]["alerts"]
    found = [a for a in alerts if a["state"] == "firing"] + alertmanager_alerts()
    names = {f"{a['labels'].get('alertname')} {a['labels'].get('shard', '')}" for a in found}
    return sorted(name.strip() for name in names)
