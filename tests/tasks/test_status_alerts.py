"""`invoke status`: the alerts from Alertmanager and Redis memory from Prometheus (fakes)."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest

from ese.flows import status, status_alerts
from ese.topology import Topology

ALERTS = [
    {
        "labels": {"alertname": "EseNoEventsIngested", "severity": "info"},
        "annotations": {"summary": "No events stored"},
        "startsAt": "2025-01-02T03:04:05.678Z",
        "status": {"state": "active"},
    },
    {
        "labels": {
            "alertname": "EseLoadBalancerServerDown",
            "severity": "warning",
            "shard": "ese-server1",
        },
        "annotations": {"summary": "elb has taken ese-server1 out of rotation"},
        "startsAt": "2025-01-02T03:04:30Z",
        "status": {"state": "suppressed", "inhibitedBy": ["x"]},
    },
    {
        "labels": {"alertname": "EseShardDown", "severity": "critical", "shard": "ese-server1"},
        "annotations": {"summary": "Shard ese-server1 is down"},
        "startsAt": "2025-01-02T03:04:20Z",
        "status": {"state": "active"},
    },
]


def _memory(*samples: tuple[str, str]) -> str:
    result = [{"metric": {"__name__": n, "job": "redis"}, "value": [1, v]} for n, v in samples]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})


def test_alerts_most_severe_first_with_state_and_start() -> None:
    assert status_alerts.alert_lines(json.dumps(ALERTS)) == [
        "  critical EseShardDown ese-server1: Shard ese-server1 is down "
        "(since 2025-01-02 03:04:20 UTC)",
        "  warning EseLoadBalancerServerDown ese-server1 [suppressed]: elb has taken "
        "ese-server1 out of rotation (since 2025-01-02 03:04:30 UTC)",
        "  info EseNoEventsIngested: No events stored (since 2025-01-02 03:04:05 UTC)",
    ]
    assert status_alerts.alert_lines("[]") == ["  none firing"]


def test_an_answer_that_is_not_an_alert_list_is_an_error() -> None:
    with pytest.raises(ValueError):
        status_alerts.alert_lines('{"error": "nope"}')


@pytest.mark.parametrize(
    ("samples", "line"),
    [
        (
            (("redis_memory_used_bytes", "12582912"), ("redis_memory_max_bytes", "268435456")),
            "  12.0 MiB used of 256.0 MiB maxmemory (4.7%)",
        ),
        (
            (("redis_memory_used_bytes", "1048576"), ("redis_memory_max_bytes", "0")),
            "  1.0 MiB used, no maxmemory limit",
        ),
        ((), "  no data yet (Prometheus job redis: is redis-exporter up?)"),
    ],
)
def test_redis_memory_against_its_limit(samples: Any, line: str) -> None:
    assert status_alerts.memory_line(_memory(*samples)) == line


def test_a_failed_prometheus_query_is_an_error() -> None:
    with pytest.raises(ValueError, match="bad_data"):
        status_alerts.memory_line(json.dumps({"status": "error", "error": "bad_data"}))


def test_status_report_shows_alerts_and_redis_memory(topo: Topology) -> None:
    seen: list[str] = []

    def get(url: str, headers: Any) -> str:
        seen.append(url)
        if url == "http://127.0.0.1:9093/api/v2/alerts":
            return json.dumps(ALERTS[2:])
        if url.startswith("http://127.0.0.1:9090/api/v1/query?"):
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["query"][0]
            assert query == (
                '{__name__=~"redis_memory_used_bytes|redis_memory_max_bytes",job="redis"}'
            )
            return _memory(
                ("redis_memory_used_bytes", "241591910"), ("redis_memory_max_bytes", "268435456")
            )
        raise ConnectionRefusedError(111, "Connection refused")

    lines = status.report(topo, {}, {}, get)
    at = lines.index("Alerts (http://127.0.0.1:9093/api/v2/alerts)")
    assert lines[at + 1].startswith("  critical EseShardDown ese-server1: Shard ese-server1")
    at = lines.index("Redis memory (redis_exporter via http://127.0.0.1:9090)")
    assert lines[at + 1] == "  230.4 MiB used of 256.0 MiB maxmemory (90.0%)"
    assert any(u.endswith("/api/v2/alerts") for u in seen)
