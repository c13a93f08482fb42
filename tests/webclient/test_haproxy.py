"""The page posting through a real HAProxy that runs the repo's generated haproxy/haproxy.cfg.

The committed file is used as it is, with only what a test machine needs changed: its listening
ports become free loopback ports, and each `server` line points at a real ingest shard's port.
HAProxy runs in a private mount namespace whose /etc/hosts maps the shard names to 127.0.0.1, as
Docker's DNS does in the compose network (the same device as tests/render/test_haproxy_routes).
Its access log (stdout) shows the browser's own CORS preflights going through.
"""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, ServerHandle, stored_events
from tests.tooling import free_port, need_binary, need_hosts, stop_process
from tests.webclient.conftest import (
    TOKEN,
    OpenPage,
    PageStack,
    start_page_server,
)

pytestmark = [pytest.mark.redis, pytest.mark.timeout(180)]

HAPROXY_CFG = REPO_ROOT / "haproxy" / "haproxy.cfg"
LB_PORT = 8100  # the load balancer's port in topology.toml, REACT_APP_BE_SERVER's default


def localize(config: str, shard_ports: dict[str, int]) -> tuple[str, dict[int, int]]:
    """The config with every `bind :PORT` on a free loopback port and each `server NAME
    NAME:PORT` on its shard's port; also {committed port: test port}. Fails if either kind of
    line is missing, so a changed file cannot silently leave the test running something else."""
    ports: dict[int, int] = {}

    def bind(match: re.Match[str]) -> str:
        ports[int(match.group(1))] = free_port()
        return f"bind 127.0.0.1:{ports[int(match.group(1))]}"

    config, binds = re.subn(r"bind :(\d+)", bind, config)
    seen: list[str] = []

    def server(match: re.Match[str]) -> str:
        seen.append(match.group(1))
        return f"server {match.group(1)} {match.group(1)}:{shard_ports[match.group(1)]}"

    config = re.sub(r"server (\S+) \1:\d+", server, config)
    assert binds >= 1 and LB_PORT in ports, "the generated config has no `bind :8100`"
    assert sorted(seen) == sorted(shard_ports), f"server lines {seen}, shards {shard_ports}"
    return config, ports


def shard_names(config: str) -> list[str]:
    """The ingest shards' names, from the `server` lines of the generated config."""
    return re.findall(r"^\s*server (\S+) \1:\d+", config, flags=re.MULTILINE)


@dataclass
class Balancer:
    url: str
    port: int
    log: Path

    def access_log(self) -> str:
        return self.log.read_text(errors="replace")

    def request(
        self, method: str, path: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(method, path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()


@dataclass
class Stack:
    balancer: Balancer
    shards: list[ServerHandle]
    analytics: ServerHandle
    page: PageStack


@pytest.fixture
def through_haproxy(
    ese_server_factory: Callable[..., ServerHandle], tmp_path: Path
) -> Iterator[Stack]:
    """Real ingest shards (one per `server` line) behind HAProxy, an analytics shard, and the
    page posting to HAProxy; every shard allows the page's origin."""
    binary = need_binary("haproxy")
    committed = HAPROXY_CFG.read_text()
    names = shard_names(committed)
    page_port = free_port()
    origin = f"http://127.0.0.1:{page_port}"
    env = {"ESE_CORS_ORIGINS": origin, "ESE_INGEST_TOKEN": TOKEN}
    shards = [ese_server_factory(role="ingest", **env) for _ in names]
    analytics = ese_server_factory(role="analytics", **env)
    config, ports = localize(committed, {n: s.port for n, s in zip(names, shards, strict=True)})
    (tmp_path / "haproxy.cfg").write_text(config)
    argv = need_hosts([binary, "-db", "-f", str(tmp_path / "haproxy.cfg")], names, tmp_path)
    log = tmp_path / "haproxy.log"
    with open(log, "wb") as out:
        # HAProxy reads the allowed origins from the environment, as in the compose stack.
        lb_env = {**os.environ, "ESE_CORS_ORIGINS": origin}
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=lb_env)
    balancer = Balancer(f"http://127.0.0.1:{ports[LB_PORT]}", ports[LB_PORT], log)
    page_proc = None
    try:
        deadline = time.monotonic() + 20
        while True:  # until HAProxy's health checks found every shard UP
            try:
                conn = http.client.HTTPConnection("127.0.0.1", balancer.port, timeout=2)
                conn.request("GET", "/stats;csv")
                csv = conn.getresponse().read().decode()
                conn.close()
                if csv.count(",UP,") >= len(names):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"HAProxy did not report the shards UP:\n{balancer.access_log()}")
            time.sleep(0.2)
        page_proc, page_log = start_page_server(
            page_port, tmp_path, balancer.url, TOKEN, "--host", "127.0.0.1"
        )
        page = PageStack(
            f"{origin}/", origin, shards[0], analytics, page_proc, page_log, balancer.url
        )
        yield Stack(balancer, shards, analytics, page)
        page_log.close()
    finally:
        if page_proc is not None:
            stop_process(page_proc)
        stop_process(proc)


def test_the_page_posts_through_the_generated_haproxy_config(
    through_haproxy: Stack, open_page: Callable[..., OpenPage]
) -> None:
    stack = through_haproxy
    opened = open_page(stack.page)
    page = opened.page
    for _ in range(5):
        page.get_by_test_id("click-button").click()
    for name in ("created", "allocated"):
        page.get_by_test_id(f"order-{name}").click()
    opened.wait_counts(sent=7, acknowledged=7, failed=0)
    assert opened.last_error() == ""
    assert opened.errors == []

    stored = stored_events(stack.analytics.url)
    assert len(stored) == 7
    assert [e["data"].get("state") for e in stored if "state" in e["data"]] == [
        "ORDER_CREATED",
        "ORDER_ALLOCATED",
    ]
    # The browser's own preflights (a POST with Authorization needs one) went through HAProxy
    # and were answered 204 by a shard.
    preflights = [
        line
        for line in stack.balancer.access_log().splitlines()
        if '"OPTIONS /event' in line and " 204 " in line
    ]
    assert any('"OPTIONS /events ' in line for line in preflights), stack.balancer.access_log()
    assert any('"OPTIONS /event ' in line for line in preflights), stack.balancer.access_log()


@pytest.mark.parametrize("path", ["/event", "/events"])
def test_a_preflight_from_the_page_origin_passes_and_others_get_no_grant(
    through_haproxy: Stack, path: str
) -> None:
    balancer, origin = through_haproxy.balancer, through_haproxy.page.origin
    ask = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    status, headers = balancer.request("OPTIONS", path, {"Origin": origin, **ask})
    assert status == 204
    assert headers["access-control-allow-origin"] == origin
    assert "POST" in headers["access-control-allow-methods"]
    allowed = {h.strip() for h in headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed

    status, headers = balancer.request("OPTIONS", path, {"Origin": "http://elsewhere:1", **ask})
    assert "access-control-allow-origin" not in headers


def test_with_no_shard_up_the_page_reads_haproxys_503(
    through_haproxy: Stack, open_page: Callable[..., OpenPage]
) -> None:
    """HAProxy's own 503 carries CORS for the page's origin, and HAProxy answers the preflight
    itself while no shard is up: the page shows the 503 in words, not a network error."""
    stack = through_haproxy
    opened = open_page(stack.page)
    for shard in stack.shards:
        shard.stop()
    own = {"Origin": stack.page.origin}
    status, headers = stack.balancer.request("POST", "/event", own)
    deadline = time.monotonic() + 10
    while status != 503 and time.monotonic() < deadline:  # until HAProxy marks them DOWN
        time.sleep(0.3)
        status, headers = stack.balancer.request("POST", "/event", own)
    assert status == 503
    assert headers["access-control-allow-origin"] == stack.page.origin
    assert headers["content-type"] == "application/json"
    status, headers = stack.balancer.request("POST", "/event", {"Origin": "http://elsewhere:1"})
    assert status == 503 and "access-control-allow-origin" not in headers
    ask = {"Access-Control-Request-Method": "POST"}
    status, headers = stack.balancer.request("OPTIONS", "/event", {**own, **ask})
    assert status == 204 and "POST" in headers["access-control-allow-methods"]
    status, headers = stack.balancer.request("OPTIONS", "/event", {"Origin": "http://x:1", **ask})
    assert "access-control-allow-origin" not in headers
    opened.page.get_by_test_id("order-created").click()
    opened.wait_counts(timeout=30, failed=1)
    shown = opened.last_error()
    assert "503: the ingest side is unavailable" in shown and "no ingest shard is up" in shown
    assert "network error" not in shown
