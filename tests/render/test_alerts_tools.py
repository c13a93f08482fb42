"""The rendered Alertmanager config on a real Alertmanager: grouping, inhibition, the webhook.

The promtool and amtool checks of the alerting files are in tests/checks/test_alert_checks.py.
"""

from __future__ import annotations

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
from ese.topology import load
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


def test_real_alertmanager_groups_inhibits_and_calls_the_webhook(
    tmp_path: Path, webhook: str
) -> None:
    binary = _alertmanager_binary()
    topo = _with_webhook(load(), webhook)
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

        def alert(name: str, shard: str, severity: str) -> dict[str, Any]:
            labels = {"alertname": name, "shard": shard, "severity": severity}
            return {"labels": labels, "annotations": {"summary": f"{name} {shard}"}}

        _api(
            port,
            "/api/v2/alerts",
            [
                alert("EseShardDown", "ese-server1", "critical"),
                alert("EseLoadBalancerServerDown", "ese-server1", "warning"),  # inhibited
                alert("EseLoadBalancerServerDown", "ese-server2", "warning"),  # not inhibited
            ],
        )
        listed = _api(port, "/api/v2/alerts")
        states = {
            (a["labels"]["alertname"], a["labels"]["shard"]): a["status"]["state"] for a in listed
        }
        assert states == {
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
    finally:
        stop_process(proc)
