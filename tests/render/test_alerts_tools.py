"""The rendered Alertmanager config on a real Alertmanager: grouping, inhibition, the webhook.

The promtool and amtool checks of the alerting files are in tests/checks/test_alert_checks.py.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ese import render
from ese.topology import Topology, load
from tests.render.test_alerts import _with_webhook
from tests.tooling import free_port, missing, stop_process


def _alertmanager_binary() -> str:
    for name in ("alertmanager", "prometheus-alertmanager"):
        path = shutil.which(name)
        if path:
            return path
    missing("alertmanager", "apt-get install prometheus-alertmanager")
    raise AssertionError("unreachable")


class _Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        _Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    """A webhook receiver on loopback; what it got is in `_Hook.received`."""
    _Hook.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        thread.join(5)


def _api(port: int, path: str, alerts: list[dict[str, Any]] | None = None) -> Any:
    data = json.dumps(alerts).encode() if alerts is not None else None
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        body = resp.read()
    return json.loads(body) if body else None


def _wait(probe: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = probe()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds:.0f}s")


@contextlib.contextmanager
def _alertmanager(tmp_path: Path, topo: Topology) -> Iterator[int]:
    """A real Alertmanager on the rendered config, on loopback; yields its port."""
    binary = _alertmanager_binary()
    cfg = tmp_path / "alertmanager.yml"
    cfg.write_text(render.render_all(topo)["alertmanager/alertmanager.yml"])
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={cfg}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(lambda: _api(port, "/api/v2/status"), 20, "Alertmanager up")
        yield port
    finally:
        stop_process(proc)


def _alert(name: str, shard: str, severity: str, **more: str) -> dict[str, Any]:
    """An alert as Prometheus posts it; no `shard` label when `shard` is empty."""
    labels = {"alertname": name, "shard": shard, "severity": severity, **more}
    if not shard:
        del labels["shard"]
    return {"labels": labels, "annotations": {"summary": f"{name} {shard}"}}


def _states(port: int) -> dict[tuple[str, str], str]:
    """(alertname, shard) of every alert Alertmanager holds, and its state."""
    listed = _api(port, "/api/v2/alerts")
    return {
        (a["labels"]["alertname"], a["labels"].get("shard", "")): a["status"]["state"]
        for a in listed
    }


def test_real_alertmanager_groups_inhibits_and_calls_the_webhook(
    tmp_path: Path, webhook: str
) -> None:
    with _alertmanager(tmp_path, _with_webhook(load(), webhook)) as port:
        _api(
            port,
            "/api/v2/alerts",
            [
                _alert("EseShardDown", "ese-server1", "critical"),
                _alert("EseLoadBalancerServerDown", "ese-server1", "warning"),  # inhibited
                _alert("EseLoadBalancerServerDown", "ese-server2", "warning"),  # not inhibited
            ],
        )
        assert _states(port) == {
            ("EseShardDown", "ese-server1"): "active",
            ("EseLoadBalancerServerDown", "ese-server1"): "suppressed",
            ("EseLoadBalancerServerDown", "ese-server2"): "active",
        }
        groups = _api(port, "/api/v2/alerts/groups")
        assert sorted(tuple(sorted(g["labels"].items())) for g in groups) == [
            (("alertname", "EseLoadBalancerServerDown"), ("shard", "ese-server1")),
            (("alertname", "EseLoadBalancerServerDown"), ("shard", "ese-server2")),
            (("alertname", "EseShardDown"), ("shard", "ese-server1")),
        ]
        # group_wait is 10 s; each active group is sent once, the inhibited one never.
        _wait(lambda: len(_Hook.received) >= 2, 30, "two webhook notifications")
        time.sleep(1)
        sent = sorted(
            (m["groupLabels"]["alertname"], m["groupLabels"]["shard"]) for m in _Hook.received
        )
        assert sent == [
            ("EseLoadBalancerServerDown", "ese-server2"),
            ("EseShardDown", "ese-server1"),
        ]


def test_not_replicated_holds_back_the_error_rate_and_nothing_holds_it_back(
    tmp_path: Path,
) -> None:
    with _alertmanager(tmp_path, load()) as port:
        one, two = "ese-ingest@10.0.1.7:2001", "ese-ingest@10.0.1.8:2001"
        _api(
            port,
            "/api/v2/alerts",
            [
                _alert("EseNotReplicated", one, "critical", role="ingest"),
                _alert("EseErrorRateHigh", one, "warning"),  # the same 503s: inhibited
                # A failover (no shard label) holds back no shard's refusals, and neither does
                # EseRedisDown of the same shard (a different cause, said apart).
                _alert("EseRedisFailover", "", "warning", instance="redis-3", redis="redis-3"),
                _alert("EseRedisDown", two, "critical"),
                _alert("EseNotReplicated", two, "critical", role="ingest"),
            ],
        )
        assert _states(port) == {
            ("EseNotReplicated", one): "active",
            ("EseErrorRateHigh", one): "suppressed",
            ("EseRedisFailover", ""): "active",
            ("EseRedisDown", two): "active",
            ("EseNotReplicated", two): "active",
        }
