"""The stack after `invoke backend --build`, `invoke frontend` and `invoke consumer`, seen from
the outside."""

from __future__ import annotations

import functools
import json

from ese.host import secrets
from ese.render import alert_rules
from ese.topology import load
from tests.conftest import BACKEND_SERVICES
from tests.e2e import harness, outside
from tests.e2e.conftest import RUN_CLIENTS, RUN_LIMIT

# 3 shards, HAProxy's exporter, redis_exporter, Prometheus itself (prometheus/prometheus.yml).
PROM_TARGETS = 6


def _positive(expr: str) -> bool:
    return outside.prom_scalar(expr) > 0


def test_acknowledged_events_are_readable_per_client(client_run: harness.Phase) -> None:
    harness.check_phase(client_run, RUN_CLIENTS, RUN_LIMIT)
    assert len(client_run.events) == RUN_CLIENTS * RUN_LIMIT


def test_haproxy_spread_requests_over_both_ingest_shards(client_run: harness.Phase) -> None:
    servers = outside.haproxy_servers()
    assert set(servers) == {"ese-server1", "ese-server2"}
    for name, row in servers.items():
        assert row["status"] == "UP", (name, row["status"])
        assert int(row["stot"]) > 0, f"{name} got no sessions: {row}"


def test_prometheus_targets_up_and_request_counters_counted(client_run: harness.Phase) -> None:
    def all_up() -> bool:
        data = outside.get_json(f"{outside.PROMETHEUS}/api/v1/targets")
        targets = data["data"]["activeTargets"]
        down = [
            (t["labels"]["instance"], t["health"], t.get("lastError"))
            for t in targets
            if t["health"] != "up"
        ]
        assert len(targets) == PROM_TARGETS and not down, down or targets
        return True

    outside.wait_until(all_up, 30, "every Prometheus target up")
    ups = outside.prom_query("up")
    assert len(ups) == PROM_TARGETS and all(r["value"][1] == "1" for r in ups), ups

    # The clients' traffic, as the shards counted it and Prometheus scraped it.
    for expr in (
        "sum(add_event_ping_count)",
        "sum(add_events_ping_count)",
        'sum(ese_http_request_duration_seconds_count{route="/events",method="POST"})',
        "sum(ese_events_ingested_total)",
    ):
        outside.wait_until(functools.partial(_positive, expr), 20, f"{expr} > 0")
    # Both ingest shards served part of it.
    per_shard = outside.prom_query('sum by (shard) (add_events_ping_count{role="ingest"})')
    assert {r["metric"]["shard"] for r in per_shard if float(r["value"][1]) > 0} == {
        "ese-server1",
        "ese-server2",
    }, per_shard


def test_redis_is_bounded_and_alerting_is_wired(client_run: harness.Phase) -> None:
    # The real Redis runs with topology.toml's maxmemory, seen through redis_exporter.
    limit = load().redis.maxmemory_bytes
    outside.wait_until(
        lambda: outside.prom_scalar('redis_memory_max_bytes{job="redis"}') == limit,
        30,
        f"redis_memory_max_bytes == {limit}",
    )
    stream = 'redis_stream_length{job="redis",stream="ese:events"}'
    outside.wait_until(lambda: outside.prom_scalar(stream) > 0, 30, f"{stream} > 0")
    rules = outside.get_json(f"{outside.PROMETHEUS}/api/v1/rules?type=alert")["data"]["groups"]
    # Every rule of the committed file is loaded (the Swarm-only ones too: quiet here).
    assert sum(len(g["rules"]) for g in rules) == len(alert_rules.rules(load())), rules
    managers = outside.get_json(f"{outside.PROMETHEUS}/api/v1/alertmanagers")["data"]
    assert [a["url"] for a in managers["activeAlertmanagers"]] == [
        "http://alertmanager:9093/api/v2/alerts"
    ], managers
    # A healthy stack raises no alarm.
    assert outside.alertmanager_alerts() == []


def test_grafana_received_datasource_and_dashboard(stack: harness.Stack) -> None:
    user, password = stack.env[secrets.GRAFANA_USER], stack.env[secrets.GRAFANA_PASSWORD]
    auth = outside.basic(user, password)
    source = outside.get_json(f"{outside.GRAFANA}/api/datasources/uid/ese-prometheus", auth)
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus-server:9090"
    board = outside.get_json(f"{outside.GRAFANA}/api/dashboards/uid/ese-server", auth)
    assert board["dashboard"]["title"] == "ESE Server"
    assert board["dashboard"]["panels"], "the dashboard arrived without panels"
    # The stack never keeps Grafana's default credentials.
    default = outside.basic("admin", "admin")
    url = f"{outside.GRAFANA}/api/dashboards/uid/ese-server"
    assert outside.request("GET", url, headers=default)[0] == 401


def test_consumer_answers_on_8501(consumer: str) -> None:
    status, body = outside.request("GET", f"{consumer}/_stcore/health")
    assert (status, body.strip()) == (200, b"ok")
    status, page = outside.request("GET", f"{consumer}/")
    assert status == 200
    assert b"<title>streamlit</title>" in page.lower(), page[:300]


def test_invoke_status_reports_everything_healthy(
    stack: harness.Stack, client_run: harness.Phase, consumer: str
) -> None:
    out = harness.invoke("status", timeout=60).stdout
    lines = out.splitlines()

    def section(title: str) -> list[str]:
        start = next(i for i, line in enumerate(lines) if line.startswith(title))
        body = []
        for line in lines[start + 1 :]:
            if not line.startswith("  "):
                break
            body.append(line.strip())
        return body

    backend = section("Containers (ese-backend)")
    assert len(backend) == len(BACKEND_SERVICES), backend
    for service in BACKEND_SERVICES:
        assert any(service in row and row.endswith("running/healthy") for row in backend), (
            service,
            backend,
        )
    # The clients are batch jobs, done by now (Docker reports an exited container's last health
    # as unhealthy, so only the state counts; their exit codes were checked with the events).
    clients = section("Containers (ese-frontend)")
    assert len(clients) == RUN_CLIENTS and all(
        r.split()[-1].startswith("exited") for r in clients
    ), clients
    mine = section("Containers (ese-consumer)")
    assert len(mine) == 1 and mine[0].endswith("running/healthy"), mine
    servers = sorted(section("HAProxy servers"))
    assert [s.split(",")[0] for s in servers] == [
        "ingest/ese-server1: UP",
        "ingest/ese-server2: UP",
    ]
    targets = section("Prometheus targets")
    assert len(targets) == PROM_TARGETS and all(t.endswith(": up") for t in targets), targets
    assert section("Alerts") == ["none firing"]
    memory = section("Redis memory")
    assert len(memory) == 1 and "MiB maxmemory" in memory[0], memory
    stored = section("Events stored")
    assert len(stored) == 1 and int(stored[0].split()[0]) >= RUN_CLIENTS * RUN_LIMIT, stored
    # The status line is the /stats total; make sure it is real JSON-backed data.
    totals = outside.stats(stack.analytics_token)
    assert int(stored[0].split()[0]) == totals["total"], (stored, json.dumps(totals)[:300])
