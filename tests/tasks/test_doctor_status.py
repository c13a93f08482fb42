"""doctor messages, the endpoint table, status parsing, the health wait, the consumer container."""

from __future__ import annotations

import json
from collections import namedtuple
from types import SimpleNamespace
from typing import Any

import docker.errors
import psutil
import pytest

from ese.engine import standalone_containers, waits
from ese.engine.compose import V1, Compose
from ese.errors import EseError
from ese.flows import doctor, endpoints, status
from ese.host import ports
from ese.host.sdk import ContainerInfo
from ese.topology import load
from tests.tasks.conftest import FakeContainer, FakeDocker

Addr = namedtuple("Addr", "ip port")
Conn = namedtuple("Conn", "fd family type laddr raddr status pid")


class FakePsutil:
    """psutil's net_connections/Process, with one listener: nginx (pid 4242) on 8100."""

    CONN_LISTEN = psutil.CONN_LISTEN
    AccessDenied = psutil.AccessDenied
    NoSuchProcess = psutil.NoSuchProcess

    def __init__(self, denied: bool = False) -> None:
        self.denied = denied

    def net_connections(self, kind: str = "inet"):
        if self.denied:
            raise psutil.AccessDenied()
        return [
            Conn(3, 2, 1, Addr("0.0.0.0", 8100), (), psutil.CONN_LISTEN, 4242),
            Conn(4, 2, 1, Addr("10.0.0.2", 51000), Addr("1.2.3.4", 8100), "ESTABLISHED", 7),
        ]

    def Process(self, pid: int):
        return SimpleNamespace(name=lambda: {4242: "nginx"}[pid])


ALL_IMAGES = {image.default for image in load().images.values()}


def run_doctor(topo, busy=(), **kw):
    defaults: dict[str, Any] = dict(
        docker_factory=lambda: FakeDocker(images=set(ALL_IMAGES)),
        detect=lambda: Compose(V1),
        is_free=lambda port, bind: port not in busy,
        holder=lambda port: ports.holder(port, FakePsutil()),
        find_lan=lambda: "192.168.1.23",
        usage=lambda path: SimpleNamespace(free=50 * doctor.GIB),
    )
    defaults.update(kw)
    return doctor.run_checks(topo, **defaults)


def test_doctor_all_green(topo):
    checks = run_doctor(topo)
    assert {c.status for c in checks} == {"ok"}
    lines = [c.line() for c in checks]
    assert "OK    compose: v1: docker-compose" in lines
    assert any("192.168.1.23" in line for line in lines)
    doctor.verdict(checks)  # no exception


def test_doctor_without_a_registry_says_which_images_would_be_built(topo):
    checks = run_doctor(topo, docker_factory=lambda: FakeDocker(), why_no_kit=lambda: "")
    by_name = {c.name: c for c in checks}
    assert by_name["registry"].status == "warn"
    assert by_name["registry"].detail == "no image registry answers"
    lines = [c.detail for c in checks if c.name == "image"]
    assert "redis         ese-offline/redis:7 (offline)" in lines
    assert "ese_server    ese-server:local (build)" in lines
    doctor.verdict(checks)  # a warning, not a failure: the kit takes over


def test_doctor_with_a_registry_lists_what_would_be_pulled(topo):
    official = {i.default for k, i in topo.images.items() if k != "grafana"}
    cli = FakeDocker(images=official, registry={topo.images["grafana"].default})
    checks = run_doctor(topo, docker_factory=lambda: cli)
    assert {c.name: c for c in checks}["registry"].detail == "an image registry answers"
    assert "grafana       grafana/grafana:11.1.4 (to pull)" in [c.detail for c in checks]
    assert cli.images.pulls == []  # doctor only asks


def test_doctor_fails_when_no_registry_answers_and_the_kit_cannot_be_built(topo):
    checks = run_doctor(
        topo,
        docker_factory=lambda: FakeDocker(),
        why_no_kit=lambda: "the offline kit builds on Linux only",
    )
    bad = [c for c in checks if c.status == "fail"]
    assert [c.name for c in bad] == ["images"]
    assert "the offline kit builds on Linux only" in bad[0].detail
    with pytest.raises(EseError):
        doctor.verdict(checks)


def test_doctor_names_the_process_holding_a_busy_port(topo):
    checks = run_doctor(topo, busy={8100})
    bad = [c for c in checks if c.status == "fail"]
    assert [c.detail for c in bad] == ["port 8100 for elb is busy: held by nginx (pid 4242)"]
    with pytest.raises(EseError) as err:
        doctor.verdict(checks)
    assert "held by nginx (pid 4242)" in str(err.value)


def test_port_holder_when_the_os_hides_it():
    assert "administrator" in ports.holder(8100, FakePsutil(denied=True))


def test_real_port_check_sees_a_listener():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert ports.is_free(sock.getsockname()[1], "127.0.0.1") is False


def test_real_port_check_ignores_time_wait_after_a_closed_connection():
    import socket

    # The side that closes first keeps its end in TIME_WAIT, as a stopped container's
    # published port does after `invoke down`; that port is free for a new listener.
    # (docker-proxy, like most servers, listens with SO_REUSEADDR; the TIME_WAIT end
    # inherits it, and Linux lets a bind pass only when both sides set it.)
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        conn.close()
        client.close()
    assert ports.is_free(port, "127.0.0.1") is True


def test_doctor_reports_docker_down_with_how_to_start_it(topo):
    def refuse():
        raise ConnectionRefusedError("connection refused")

    checks = run_doctor(
        topo,
        docker_factory=refuse,
        find_lan=lambda: (_ for _ in ()).throw(EseError("no LAN IPv4 address found", "connect")),
    )
    by_name = {c.name: c for c in checks}
    assert by_name["docker"].status == "fail"
    assert "Docker engine not reachable" in by_name["docker"].detail
    assert by_name["docker"].hint  # OS-specific start instructions
    assert by_name["LAN IP"].status == "warn"


def test_endpoint_table_lists_every_endpoint_and_the_lan_analytics_url(topo):
    text = endpoints.table(endpoints.rows(topo, "192.168.1.23"))
    for expected in (
        "http://localhost:8100",
        "http://localhost:8100/stats",
        "http://127.0.0.1:2001",
        "http://127.0.0.1:2002",
        "http://localhost:2003",
        "http://127.0.0.1:9090",
        "http://127.0.0.1:9093",
        "http://localhost:3000/d/ese-server",
        "GRAFANA_ADMIN_PASSWORD in docker/.env",
        "http://192.168.1.23:2003/events",
        "ESE_ANALYTICS_TOKEN in docker/.env",
    ):
        assert expected in text
    assert "s3cret" not in text
    no_lan = endpoints.table(endpoints.rows(topo, None))
    assert "(no LAN address)" in no_lan and "invoke doctor" in no_lan


HAPROXY_CSV = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"
    "wredis,status\n"
    "ingest,FRONTEND,,,3,5,,10,0,0,0,0,0,,,,,OPEN\n"
    "ese_ingest,ese-server1,0,0,2,4,,7,0,0,,0,,0,0,0,0,UP\n"
    "ese_ingest,ese-server2,0,0,1,3,,6,0,0,,0,,0,0,0,0,DOWN\n"
    "ese_ingest,BACKEND,0,0,3,5,,13,0,0,0,0,,0,0,0,0,UP\n"
)
TARGETS = {
    "status": "success",
    "data": {
        "activeTargets": [
            {
                "labels": {"job": "ese", "instance": "ese-server1:2001"},
                "health": "up",
                "lastError": "",
            },
            {
                "labels": {"job": "ese", "instance": "ese-server2:2002"},
                "health": "down",
                "lastError": "connection refused",
            },
        ]
    },
}


def test_status_report_reads_haproxy_prometheus_and_stats(topo):
    seen = {}

    def get(url, headers):
        seen[url] = headers
        if url.endswith(";csv"):
            return HAPROXY_CSV
        if url.endswith("/api/v1/targets"):
            return json.dumps(TARGETS)
        if url.endswith("/api/v2/alerts"):
            return "[]"
        if "/api/v1/query?" in url:
            return json.dumps({"status": "success", "data": {"result": []}})
        return json.dumps({"total": 42, "by_type": {"CLICK_STREAM_EVENT": 30}})

    containers = {"ese-backend": [ContainerInfo("elb", "ese-backend_elb_1", "running", "healthy")]}
    text = "\n".join(status.report(topo, containers, {"ESE_ANALYTICS_TOKEN": "tok"}, get))
    assert "ese-backend_elb_1  running/healthy" in text
    assert "ese_ingest/ese-server1: UP, 2 sessions" in text
    assert "ese_ingest/ese-server2: DOWN, 1 sessions" in text
    assert "FRONTEND" not in text
    assert "ese ese-server2:2002: down (connection refused)" in text
    assert "42 (CLICK_STREAM_EVENT 30)" in text
    assert "Alerts (http://127.0.0.1:9093/api/v2/alerts)\n  none firing" in text
    assert seen["http://127.0.0.1:2003/stats"] == {"Authorization": "Bearer tok"}
    assert "http://127.0.0.1:8100/stats;csv" in seen


def test_status_report_survives_unreachable_sources(topo):
    def get(url, headers):
        raise ConnectionRefusedError(111, "Connection refused")

    text = "\n".join(status.report(topo, {}, {}, get))
    assert text.count("unreachable") == 5  # HAProxy, targets, alerts, Redis memory, events


def clock_pair():
    now = [0.0]
    return (lambda: now[0]), (lambda s: now.__setitem__(0, now[0] + s)), now


def test_health_wait_reports_progress_and_returns_when_healthy():
    polls = iter(
        [
            [ContainerInfo("redis", "r", "running", "starting")],
            [
                ContainerInfo("redis", "r", "running", "healthy"),
                ContainerInfo("elb", "e", "running", ""),
            ],
        ]
    )
    clock, sleep, _ = clock_pair()
    lines: list[str] = []
    pace = waits.Pace(lines.append, clock, sleep)
    waits.wait_healthy(lambda: next(polls), ["redis", "elb"], 60, pace)
    assert "0/2 healthy; waiting for redis (running/starting), elb (missing)" in lines[0]
    assert lines[-1].startswith("all 2 services healthy")


def test_health_wait_times_out_naming_the_service():
    clock, sleep, now = clock_pair()
    stuck = [ContainerInfo("grafana-server", "g", "running", "unhealthy")]
    with pytest.raises(waits.NotHealthy) as err:
        quiet = waits.Pace(lambda _: None, clock, sleep)
        waits.wait_healthy(lambda: stuck, ["grafana-server"], 30, quiet)
    assert err.value.services == ["grafana-server"]
    assert "not healthy after 30s: grafana-server (running/unhealthy)" in str(err.value)
    assert 30 <= now[0] <= 32


def test_health_wait_stops_at_once_when_a_service_exits():
    clock, sleep, now = clock_pair()
    dead = [ContainerInfo("ese-server1", "s", "exited", "")]
    with pytest.raises(waits.NotHealthy, match="service stopped: ese-server1"):
        quiet = waits.Pace(lambda _: None, clock, sleep)
        waits.wait_healthy(lambda: dead, ["ese-server1"], 300, quiet)
    assert now[0] == 0


@pytest.mark.parametrize(
    ("platform", "extra"), [("linux", True), ("darwin", False), ("win32", False)]
)
def test_consumer_container_replaces_a_stale_one_and_publishes_its_port(platform, extra):
    stale = FakeContainer("ese-consumer", status="exited", project="")
    cli = FakeDocker([stale])
    standalone_containers.run(
        cli,
        image="ese-consumer:local",
        name="ese-consumer",
        host_port=9000,
        container_port=8501,
        bind="0.0.0.0",
        environment={"ESE_SERVER_URL": "http://h:2003/events"},
        platform=platform,
    )
    assert stale.removed
    image, kwargs = cli.containers.runs[-1]
    assert image == "ese-consumer:local"
    assert kwargs["name"] == "ese-consumer"
    assert kwargs["ports"] == {"8501/tcp": ("0.0.0.0", 9000)}
    assert kwargs["environment"]["ESE_SERVER_URL"] == "http://h:2003/events"
    assert ("extra_hosts" in kwargs) is extra
    if extra:
        assert kwargs["extra_hosts"] == {"host.docker.internal": "host-gateway"}


def test_consumer_image_is_built_only_when_missing():
    cli = FakeDocker(images={"ese-consumer:local"})
    standalone_containers.ensure_image(cli, "ese-consumer:local", "py:base", build=False)
    assert cli.images.builds == []
    cli = FakeDocker()
    standalone_containers.ensure_image(cli, "ese-consumer:local", "py:base", False, lambda _: None)
    assert cli.images.builds[0]["buildargs"] == {
        "BASE_IMAGE": "py:base",
        "SERVICE": "ese-consumer",
        "EXTRA": "consumer",
    }
    assert cli.images.builds[0]["dockerfile"] == "services/Dockerfile"


def test_doctor_reports_ports_of_the_running_demo_as_in_use_not_failed(topo):
    running = [
        FakeContainer("ese-backend_elb_1", service="elb"),
        FakeContainer("ese-backend-grafana-server-1", service="grafana-server"),
        FakeContainer("ese-consumer", project="", health="", host_ports=(8501,)),
    ]
    busy = {8100, 3000, 8501, 9090}  # 9090: Prometheus is not running, so someone else has it
    checks = run_doctor(topo, busy=busy, docker_factory=lambda: FakeDocker(running))
    by_name = {c.name: c for c in checks}
    assert by_name["port 8100"].status == "ok"
    assert by_name["port 8100"].detail == "in use by elb (this demo, running)"
    assert by_name["port 3000"].detail == "in use by grafana-server (this demo, running)"
    assert by_name["port 8501"].detail == "in use by ese-consumer (this demo, running)"
    assert by_name["port 9090"].status == "fail"
    with pytest.raises(EseError) as err:
        doctor.verdict(checks)
    assert "1 check(s) failed" in str(err.value)


def test_doctor_does_not_count_a_stopped_demo_container_as_the_holder(topo):
    stopped = [FakeContainer("ese-backend_elb_1", service="elb", status="exited")]
    checks = run_doctor(topo, busy={8100}, docker_factory=lambda: FakeDocker(stopped))
    assert {c.name: c for c in checks}["port 8100"].status == "fail"


def test_listing_containers_survives_one_removed_while_listed():
    """The SDK lists ids, then inspects each: a container gone in between is a 404."""
    from ese.host import sdk

    cli = FakeDocker([FakeContainer("ese-backend-elb-1", service="elb")])
    real = cli.containers.list
    calls = 0

    def racy(all: bool = False, filters: dict[str, str] | None = None) -> list[Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise docker.errors.NotFound("No such container: c70c29d4")
        return real(all=all, filters=filters)

    cli.containers.list = racy  # type: ignore[method-assign]
    assert [i.service for i in sdk.project_containers(cli, "ese-backend")] == ["elb"]
    assert calls == 2
