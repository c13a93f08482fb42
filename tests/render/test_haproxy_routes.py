"""The rendered haproxy.cfg, run by a real HAProxy in front of two stand-in shards.

HAProxy runs in a private mount namespace whose /etc/hosts maps the shard names to 127.0.0.1
(as Docker's DNS does inside the compose network); the shards are tiny HTTP servers on free
loopback ports that record which of them answered.
"""

from __future__ import annotations

import dataclasses
import http.client
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ese.host.processes import TimedOut, wait_until
from ese.render import haproxy_cfg
from ese.topology import load
from tests.tooling import free_port, need_binary, need_hosts


class _Shard(BaseHTTPRequestHandler):
    """Answers every forwarded request with 200 and its own name."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = self.server.name.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_OPTIONS = do_HEAD = _answer

    def log_message(self, *args: object) -> None:
        pass


@dataclasses.dataclass
class Balancer:
    port: int
    stats_port: int

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, resp.read().decode(errors="replace")
        finally:
            conn.close()


@pytest.fixture(scope="module")
def balancer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Balancer]:
    binary = need_binary("haproxy")
    topo = load()
    servers = []
    shards = []
    for shard in topo.ingest_shards:
        server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Shard)
        server.name = shard.name  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        shards.append(dataclasses.replace(shard, port=server.server_address[1]))
    analytics = [s for s in topo.shards if s.role == "analytics"]
    lb = dataclasses.replace(topo.balancer, port=free_port(), exporter_port=free_port())
    variant = dataclasses.replace(topo, shards=(*shards, *analytics), balancer=lb)
    tmp: Path = tmp_path_factory.mktemp("haproxy")
    (tmp / "haproxy.cfg").write_text(haproxy_cfg.config(variant))
    names = [s.name for s in shards]
    argv = need_hosts([binary, "-db", "-f", str(tmp / "haproxy.cfg")], names, tmp)
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        front = Balancer(lb.port, lb.port)

        def all_up() -> bool:  # both servers passed their health check
            return front.request("GET", "/stats;csv")[1].count(",UP,") >= len(shards)

        try:
            wait_until(all_up, 20, "HAProxy reports every shard UP", 0.2)
        except TimedOut as exc:
            pytest.fail(str(exc))
        yield front
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for server in servers:
            server.shutdown()


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/event"), ("POST", "/events"), ("GET", "/"), ("OPTIONS", "/event")],
)
def test_ingest_routes_reach_a_shard(balancer: Balancer, method: str, path: str) -> None:
    status, body = balancer.request(method, path, b"{}" if method == "POST" else None)
    assert status == 200
    assert body in {"ese-server1", "ese-server2"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/events"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("POST", "/"),
        ("DELETE", "/event"),
        ("OPTIONS", "/metrics"),
        ("GET", "/event/../stats"),
    ],
)
def test_every_other_route_gets_403_at_the_balancer(
    balancer: Balancer, method: str, path: str
) -> None:
    status, body = balancer.request(method, path)
    assert status == 403
    assert '"message"' in body


def test_stats_page_is_served_with_refresh(balancer: Balancer) -> None:
    # /stats at the balancer is HAProxy's page; the shards' /stats is the analytics shard's.
    status, body = balancer.request("GET", "/stats")
    assert status == 200
    assert "Statistics Report" in body


def test_requests_are_spread_over_both_ingest_shards(balancer: Balancer) -> None:
    seen = {balancer.request("POST", "/event", b"{}")[1] for _ in range(20)}
    assert seen == {"ese-server1", "ese-server2"}
