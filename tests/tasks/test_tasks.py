"""The Invoke tasks end to end: Invoke's MockContext, a fake Docker SDK, recorded commands and
the fake Grafana."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from invoke import Exit, MockContext

import tasks
from ese import errors, task_defaults
from ese.engine import commands, compose, readings
from ese.engine.compose import V1, V2, Compose
from ese.errors import EseError
from ese.flows import consumer as consumer_flow
from ese.flows import shared
from ese.host import lan, ports, sdk, secrets
from ese.paths import BACKEND_COMPOSE, FRONTEND_COMPOSE
from ese.topology import load
from tests.tasks.conftest import FakeContainer, FakeDocker, FakeSpawn

BACKEND_SERVICES = [
    "redis-server",
    "ese-server1",
    "ese-server2",
    "ese-server-analytics",
    "elb",
    "redis-exporter",
    "prometheus-server",
    "alertmanager",
    "grafana-server",
]
# Every image of the topology present: the runs decide "local" and pull nothing.
ALL_IMAGES = {image.default for image in load().images.values()}


@pytest.fixture
def env_file(tmp_path, monkeypatch):
    path = tmp_path / "docker" / ".env"
    monkeypatch.setattr(secrets, "ENV_FILE", path)
    return path


@pytest.fixture
def wired(monkeypatch, env_file, spawned):
    """Compose v2, a fake Docker engine with every image, no rendering, a fixed LAN address."""
    cli = FakeDocker(images=set(ALL_IMAGES))
    monkeypatch.setattr(compose, "current", lambda: Compose(V2))
    monkeypatch.setattr(sdk, "client", lambda *a, **k: cli)
    monkeypatch.setattr(shared, "render_if_stale", lambda topo: [])
    monkeypatch.setattr(lan, "lan_ipv4", lambda ni=None: "192.168.1.23")
    monkeypatch.setattr(ports, "is_free", lambda port, bind="0.0.0.0": True)
    # backend.wait_routed reads HAProxy's stats through ese.engine.readings.
    monkeypatch.setattr(readings, "fetch", lambda url, headers: lb_stats("UP", "UP"))
    monkeypatch.setattr(consumer_flow, "answers", lambda url: True)
    return cli


def lb_stats(*states: str) -> str:
    """HAProxy's stats CSV with the ingest shards in these states."""
    rows = [f"ingest,ese-server{i},0,{st}" for i, st in enumerate(states, 1)]
    return "\n".join(["# pxname,svname,scur,status", "ingest,BACKEND,0,UP", *rows]) + "\n"


def context() -> Any:
    c = MockContext()
    c.config.ese = task_defaults.defaults()
    return c


def argv(project, file, *args, env_file) -> list[str]:
    return Compose(V2).argv(project, file, list(args), env_file)


def test_frontend_scales_clients_and_sets_the_server_url_through_env(
    wired, spawned: FakeSpawn, env_file, capsys
):
    cmd = argv(
        "ese-frontend", FRONTEND_COMPOSE, "up", "-d", "--scale", "ese-client=3", env_file=env_file
    )
    tasks.frontend(context(), clients="3", delay_ms="100")
    assert spawned.commands() == [cmd]  # the image is present: no build
    env = spawned.calls[0][1]
    assert {
        k: env[k] for k in ("REACT_APP_BE_SERVER", "ESE_EVENT_DELAY_MS", "ESE_EVENT_LIMIT")
    } == {
        "REACT_APP_BE_SERVER": "http://host.docker.internal:8100",
        "ESE_EVENT_DELAY_MS": "100",
        "ESE_EVENT_LIMIT": "50000",
    }
    assert env["ESE_PYTHON_BASE_IMAGE"] == "python:3.11-slim-bookworm"  # the plan, explicit
    assert f"> {commands.shown(cmd)}" in capsys.readouterr().out
    assert env_file.exists()  # the clients' ingest token comes from it


def test_frontend_builds_a_missing_client_image_once_then_starts(
    wired, spawned: FakeSpawn, env_file
):
    wired.images.present.discard("ese-client:local")
    tasks.frontend(context(), clients="2")
    build = argv("ese-frontend", FRONTEND_COMPOSE, "build", "ese-client", env_file=env_file)
    assert spawned.commands()[0] == build
    assert spawned.commands()[1][-4:] == ["up", "-d", "--scale", "ese-client=2"]


def spawned_nothing(cli: FakeDocker) -> bool:
    return cli.containers.runs == [] and cli.images.builds == []


def test_frontend_rejects_a_bad_url_before_running_anything(wired, spawned: FakeSpawn):
    with pytest.raises(Exit) as err:
        tasks.frontend(context(), be_server="host:8100")
    assert err.value.code == 1
    assert "--be-server 'host:8100' is not an http(s) URL" in str(err.value.message)
    assert wired.images.asked == [] and spawned_nothing(wired)


def healthy_backend() -> list[FakeContainer]:
    return [FakeContainer(f"ese-backend_{s}_1", service=s) for s in BACKEND_SERVICES]


def test_backend_brings_up_waits_provisions_grafana_and_prints_endpoints(
    wired, spawned: FakeSpawn, env_file, grafana, monkeypatch, capsys
):
    secrets.ensure(env_file)
    text = env_file.read_text().replace(
        f"GRAFANA_ADMIN_PASSWORD={secrets.read(env_file)['GRAFANA_ADMIN_PASSWORD']}",
        "GRAFANA_ADMIN_PASSWORD=s3cret",
    )
    env_file.write_text(text)
    wired.containers.items = healthy_backend()
    c = context()
    c.config.ese["grafana_url"] = grafana.url
    tasks.backend(c, build=True)
    build = argv("ese-backend", BACKEND_COMPOSE, "build", "ese-server1", env_file=env_file)
    up = argv("ese-backend", BACKEND_COMPOSE, "up", "-d", "--remove-orphans", env_file=env_file)
    assert spawned.commands() == [build, up]  # one build of the shared shard image
    assert spawned.calls[1][1]["ESE_REDIS_IMAGE"] == "redis:7.2.5-alpine"
    out = capsys.readouterr().out
    assert "all 9 services healthy" in out
    assert "Grafana datasource: created" in out and "Grafana dashboard: created" in out
    assert "http://192.168.1.23:2003/events" in out
    assert "s3cret" not in out
    state = grafana.state.snapshot()
    assert list(state["datasources"]) == ["ese-prometheus"]
    assert list(state["dashboards"]) == ["ese-server"]


def test_backend_timeout_prints_the_failing_service_logs(
    wired, spawned: FakeSpawn, env_file, capsys
):
    containers = healthy_backend()
    containers[-1].health = "unhealthy"  # grafana-server
    wired.containers.items = containers
    logs = argv(
        "ese-backend",
        BACKEND_COMPOSE,
        "logs",
        "--no-color",
        "--tail",
        "40",
        "grafana-server",
        env_file=env_file,
    )
    c = context()
    c.config.ese["health_timeout"] = 0
    with pytest.raises(Exit) as err:
        tasks.backend(c)
    assert err.value.code == 1
    assert "grafana-server (running/unhealthy)" in str(err.value.message)
    assert f"> {commands.shown(logs)}" in capsys.readouterr().out
    assert spawned.commands()[-1] == logs


def test_backend_fails_at_once_on_a_restart_loop_and_shows_its_logs(
    wired, spawned: FakeSpawn, env_file
):
    containers = healthy_backend()
    containers[0].status, containers[0].restarts = "restarting", 5  # redis-server
    wired.containers.items = containers
    c = context()
    c.config.ese["health_timeout"] = 600  # a loop must not wait this out
    with pytest.raises(Exit) as err:
        tasks.backend(c)
    assert "restarting over and over: redis-server (restarting, 5 restarts)" in str(
        err.value.message
    )
    assert spawned.commands()[-1][-1] == "redis-server"  # its log lines were shown


def test_backend_refuses_a_busy_port_naming_its_holder(
    wired, spawned: FakeSpawn, env_file, monkeypatch
):
    monkeypatch.setattr(ports, "is_free", lambda port, bind="0.0.0.0": port != 3000)
    monkeypatch.setattr(ports, "holder", lambda port, ps=None: "grafana-server (pid 77)")
    with pytest.raises(Exit) as err:
        tasks.backend(context())
    assert str(err.value.message).startswith(
        "port 3000 for grafana-server is busy: held by grafana-server (pid 77);"
    )
    assert spawned.calls == []


def test_docker_not_running_is_one_line_with_how_to_start_it(env_file, monkeypatch):
    def refuse():
        raise ConnectionRefusedError("refused")

    real_client = sdk.client
    monkeypatch.setattr(sdk, "client", lambda *a, **k: real_client(refuse, "linux"))
    monkeypatch.setattr(shared, "render_if_stale", lambda topo: [])
    with pytest.raises(Exit) as err:
        tasks.down(context())
    assert str(err.value.message) == (
        "Docker engine not reachable (ConnectionRefusedError); start it with: "
        "sudo systemctl start docker (and add yourself to the docker group)"
    )


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        (False, "http://host.docker.internal:2003/events"),
        (True, "http://192.168.1.23:2003/events"),
    ],
)
def test_consumer_runs_the_container_with_the_live_events_url(wired, env_file, remote, url, capsys):
    wired.images.present.add("ese-consumer:local")
    tasks.consumer(context(), remote=remote, port="8600")
    _, kwargs = wired.containers.runs[-1]
    token = secrets.read(env_file)["ESE_ANALYTICS_TOKEN"]
    assert kwargs["environment"]["ESE_SERVER_URL"] == url
    assert kwargs["environment"]["ESE_ANALYTICS_TOKEN"] == token
    assert kwargs["ports"] == {"8501/tcp": ("0.0.0.0", 8600)}
    out = capsys.readouterr().out
    assert "Consumer dashboard: http://localhost:8600" in out
    assert f"Data source URL:    {url}" in out


def test_consumer_server_url_is_used_as_given(wired, env_file):
    wired.images.present.add("ese-consumer:local")
    tasks.consumer(context(), server_url="http://10.0.0.9:2003/events")
    assert (
        wired.containers.runs[-1][1]["environment"]["ESE_SERVER_URL"]
        == "http://10.0.0.9:2003/events"
    )


def test_down_removes_both_projects_and_the_consumer(wired, spawned: FakeSpawn, env_file):
    wired.containers.items = [FakeContainer("ese-consumer", project="")]
    args = ("down", "--remove-orphans", "--volumes")
    front = argv("ese-frontend", FRONTEND_COMPOSE, *args, env_file=env_file)
    back = argv("ese-backend", BACKEND_COMPOSE, *args, env_file=env_file)
    tasks.down(context(), volumes=True)
    assert spawned.commands() == [front, back]
    # compose needs REACT_APP_BE_SERVER to parse the frontend file even for `down`
    assert "REACT_APP_BE_SERVER" in spawned.calls[0][1]
    assert wired.containers.items[0].removed


def test_logs_picks_the_project_of_the_service(wired, spawned: FakeSpawn, env_file, monkeypatch):
    monkeypatch.setattr(compose, "current", lambda: Compose(V1))
    args = ["logs", "--tail", "200", "--follow", "ese-client"]
    cmd = Compose(V1).argv("ese-frontend", FRONTEND_COMPOSE, args, env_file)
    tasks.logs(context(), "ese-client", follow=True)
    assert spawned.commands() == [cmd]
    assert cmd[0] == "docker-compose"
    with pytest.raises(Exit, match="unknown service 'nope'"):
        tasks.logs(context(), "nope")


def test_config_values_are_strings_converted_by_option():
    c = context()
    # Every default is a string, so Invoke's env loading never casts (and never raises).
    assert all(isinstance(v, str) for v in task_defaults.defaults().values())
    c.config.ese["clients"] = "7"  # what INVOKE_ESE_CLIENTS=7 gives
    assert task_defaults.option(c, None, "clients") == 7
    assert task_defaults.option(c, "2", "clients") == 2
    c.config.ese["health_timeout"] = "300.5"
    assert task_defaults.option(c, None, "health_timeout") == 300.5
    with pytest.raises(EseError) as err:
        task_defaults.option(c, "-3", "clients")
    assert str(err.value) == (
        "--clients must be a whole number between 0 and 1000, got '-3'; e.g. --clients 4"
    )
    with pytest.raises(EseError, match=r"^--tail must be a whole number at least 0, got 'x'"):
        task_defaults.option(c, "x", "log_tail")
    with pytest.raises(EseError, match=r"^--port must be a whole number between 1 and 65535"):
        task_defaults.option(c, "70000", "consumer_port")


def test_every_flag_has_help():
    for name, task in tasks.ns.tasks.items():
        params = [a for a in task.get_arguments() if a.name]
        assert task.__doc__ and len(task.__doc__.strip().splitlines()) == 1, name
        for arg in params:
            assert arg.help, f"{name} --{arg.name} has no help"


def running_consumer(port: int = 8501) -> FakeContainer:
    return FakeContainer("ese-consumer", project="", health="", host_ports=(port,))


def test_consumer_on_a_busy_port_leaves_the_running_consumer_alone(wired, env_file, monkeypatch):
    wired.images.present.add("ese-consumer:local")
    wired.containers.items = [running_consumer(8501)]
    monkeypatch.setattr(ports, "is_free", lambda port, bind="0.0.0.0": port != 8600)
    monkeypatch.setattr(ports, "holder", lambda port, ps=None: "nginx (pid 4242)")
    with pytest.raises(Exit) as err:
        tasks.consumer(context(), port="8600")
    assert err.value.code == 1
    assert str(err.value.message) == (
        "port 8600 for ese-consumer is busy: held by nginx (pid 4242); pass a free one, "
        "e.g. --port 8601 (a running ese-consumer container was left as it is)"
    )
    assert not wired.containers.items[0].removed
    assert wired.containers.runs == []


def test_consumer_replaces_our_own_container_holding_the_port(wired, env_file, monkeypatch):
    wired.images.present.add("ese-consumer:local")
    wired.containers.items = [running_consumer(8501)]
    monkeypatch.setattr(ports, "is_free", lambda port, bind="0.0.0.0": False)  # we hold it
    tasks.consumer(context())
    assert wired.containers.items[0].removed
    assert wired.containers.runs[-1][1]["ports"] == {"8501/tcp": ("0.0.0.0", 8501)}


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_consumer_port_out_of_range_is_refused_before_any_removal(wired, env_file, port):
    wired.containers.items = [running_consumer(8501)]
    with pytest.raises(EseError, match="--port must be between 1 and 65535"):
        consumer_flow.consumer(
            remote=False, server_url=None, port=port, images_mode="auto", verbose=False
        )
    assert not wired.containers.items[0].removed


def test_logs_of_a_missing_consumer_container_is_exit_1_with_a_hint(
    wired, spawned: FakeSpawn, env_file
):
    with pytest.raises(Exit) as err:
        tasks.logs(context(), service="ese-consumer")
    assert err.value.code == 1
    assert str(err.value.message) == (
        "no container 'ese-consumer'; start it with `invoke consumer`"
    )
    assert spawned.calls == []


def test_logs_of_the_consumer_come_from_the_engine(wired, spawned: FakeSpawn, env_file, capsys):
    consumer = running_consumer()
    consumer.log_text = b"You can now view your Streamlit app\n"
    wired.containers.items = [consumer]
    tasks.logs(context(), service="ese-consumer", tail="7")
    assert capsys.readouterr().out.endswith(
        "keep it private)\nYou can now view your Streamlit app\n"
    )
    assert consumer.log_calls == [{"tail": 7}]
    assert spawned.calls == []  # through the SDK, not a `docker logs` command


def test_logs_checks_docker_first(env_file, spawned: FakeSpawn, monkeypatch):
    def refuse():
        raise ConnectionRefusedError("refused")

    real_client = sdk.client
    monkeypatch.setattr(sdk, "client", lambda *a, **k: real_client(refuse, "darwin"))
    with pytest.raises(Exit) as err:
        tasks.logs(context())
    assert "Docker engine not reachable" in str(err.value.message)
    assert "open -a Docker" in str(err.value.message)
    assert spawned.calls == []


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        (
            "win32",
            "start Docker Desktop from the Start menu and wait until it says 'Engine running'",
        ),
        ("darwin", "start Docker Desktop (open -a Docker) and wait until the whale icon stops"),
        ("linux", "start it with: sudo systemctl start docker"),
    ],
)
def test_docker_start_hint_per_os(platform, expected):
    def refuse():
        raise ConnectionRefusedError("refused")

    with pytest.raises(EseError) as err:
        sdk.client(refuse, platform)
    assert err.value.hint.startswith(expected)
    assert errors.docker_start_hint(platform).startswith(expected)


def test_backend_no_auth_starts_the_shards_without_tokens_and_says_so(
    wired, spawned: FakeSpawn, env_file, grafana, capsys
):
    secrets.ensure(env_file)
    env_file.write_text(
        env_file.read_text().replace(
            f"GRAFANA_ADMIN_PASSWORD={secrets.read(env_file)['GRAFANA_ADMIN_PASSWORD']}",
            "GRAFANA_ADMIN_PASSWORD=s3cret",
        )
    )
    wired.containers.items = healthy_backend()
    c = context()
    c.config.ese["grafana_url"] = grafana.url
    tasks.backend(c, auth=False)
    up_env = spawned.calls[-1][1]
    assert spawned.commands()[-1][-3:] == ["up", "-d", "--remove-orphans"]
    # Given to compose, these win over docker/.env: the shards run without tokens.
    assert up_env["ESE_INGEST_TOKEN"] == "" and up_env["ESE_ANALYTICS_TOKEN"] == ""
    assert "http://localhost:3006" in up_env["ESE_CORS_ORIGINS"].split()
    out = capsys.readouterr().out
    assert "AUTH OFF" in out and "NO TOKEN (auth off)" in out
    assert secrets.read(env_file)["ESE_INGEST_TOKEN"]  # the file keeps its tokens


def test_backend_with_auth_keeps_the_tokens_of_the_env_file(wired, spawned: FakeSpawn, env_file):
    wired.containers.items = healthy_backend()
    c = context()
    c.config.ese["grafana_timeout"] = "0"
    with pytest.raises(Exit):  # no Grafana here; the compose call is what matters
        tasks.backend(c)
    up_env = next(env for argv, env in spawned.calls if "up" in argv)
    assert "ESE_INGEST_TOKEN" not in up_env  # compose reads it from docker/.env
    assert up_env["ESE_CORS_ORIGINS"].startswith("http://localhost:3006 http://127.0.0.1:3006")


def test_backend_finds_the_lan_address_once_for_origins_and_table(
    wired, spawned: FakeSpawn, env_file, grafana, monkeypatch, capsys
):
    asked: list[int] = []

    def lan_ipv4(ni: Any = None) -> str:
        asked.append(1)
        return "192.168.7.7"

    monkeypatch.setattr(lan, "lan_ipv4", lan_ipv4)
    secrets.ensure(env_file)
    password = secrets.read(env_file)["GRAFANA_ADMIN_PASSWORD"]
    env_file.write_text(env_file.read_text().replace(password, "s3cret"))  # the fake's password
    wired.containers.items = healthy_backend()
    c = context()
    c.config.ese["grafana_url"] = grafana.url
    tasks.backend(c)
    up_env = next(env for argv, env in spawned.calls if "up" in argv)
    assert "http://192.168.7.7:3006" in up_env["ESE_CORS_ORIGINS"].split()
    assert "192.168.7.7" in capsys.readouterr().out  # the endpoint table's LAN column
    assert len(asked) == 1


def test_auth_off_from_the_config_namespace(monkeypatch):
    c = context()
    c.config.ese["auth"] = "false"
    assert task_defaults.option(c, None, "auth") is False
    c.config.ese["auth"] = "maybe"
    with pytest.raises(EseError, match=r"ese\.auth in invoke\.yaml must be true or false"):
        task_defaults.option(c, None, "auth")


def test_webclient_serves_the_page_from_the_client_image(wired, spawned: FakeSpawn, env_file):
    tasks.webclient(context(), port="3007")
    image, kwargs = wired.containers.runs[-1]
    assert image == "ese-client:local"
    assert kwargs["name"] == "ese-webclient"
    assert kwargs["command"] == ["--web", "--port", "3007", "--host", "0.0.0.0"]
    assert kwargs["ports"] == {"3007/tcp": ("0.0.0.0", 3007)}
    assert kwargs["environment"]["REACT_APP_BE_SERVER"] == "http://localhost:8100"
    assert kwargs["environment"]["ESE_INGEST_TOKEN"] == secrets.read(env_file)["ESE_INGEST_TOKEN"]
    assert spawned.calls == []  # the image is there: nothing built


def test_webclient_notes_only_a_port_whose_origin_the_shards_do_not_allow(
    wired, spawned: FakeSpawn, env_file, capsys
):
    # INVOKE_ESE_WEBCLIENT_PORT=3100 for both tasks; it once got a note all the same (a
    # comparison with a literal 3006).
    wired.containers.items = healthy_backend()
    c = context()
    c.config.ese["webclient_port"] = "3100"
    c.config.ese["grafana_timeout"] = "0"
    with pytest.raises(Exit):  # no Grafana here; the shards' environment is what matters
        tasks.backend(c)
    allowed = next(env for argv, env in spawned.calls if "up" in argv)["ESE_CORS_ORIGINS"].split()
    capsys.readouterr()
    tasks.webclient(c)
    out = capsys.readouterr().out
    page = out.split("Click-through page: ", 1)[1].split()[0]
    assert page == "http://localhost:3100" and page in allowed
    assert "note:" not in out
    tasks.webclient(c, port="3007")
    out = capsys.readouterr().out
    assert "http://localhost:3007" not in allowed
    assert "note: the shards allow the page's origin on port 3100" in out
    assert "INVOKE_ESE_WEBCLIENT_PORT=3007" in out


def test_status_says_loudly_when_the_shards_run_without_tokens(topo):
    from ese.flows import status

    shard = FakeContainer("ese-backend-ese-server1-1", service="ese-server1")
    shard.env = ["ESE_INGEST_TOKEN=", "ESE_ROLE=ingest"]
    cli = FakeDocker([shard])
    assert status.tokens_off(topo, cli) is True
    shard.env = ["ESE_INGEST_TOKEN=abc"]
    assert status.tokens_off(topo, cli) is False
    lines = status.report(topo, {}, {}, get=lambda url, headers: "{}", auth=False)
    assert lines[0].startswith("!! AUTH OFF")


def test_backend_is_ready_only_once_the_load_balancer_routes_to_every_shard(topo, capsys):
    from ese.flows import backend

    answers: Iterator[OSError | str] = iter(
        [OSError("connection refused"), lb_stats("DOWN", "UP"), lb_stats("UP", "UP")]
    )

    def get(url: str, headers: Any) -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    backend.wait_routed(topo, timeout=30, get=get)
    out = capsys.readouterr().out
    assert "stats unreachable" in out
    assert "1/2 routed; waiting for ese-server1 (DOWN)" in out
    assert "all 2 ingest shards routed by the load balancer" in out


def test_a_shard_the_load_balancer_never_routes_fails_the_wait(topo):
    from ese.engine.waits import NotHealthy
    from ese.flows import backend

    with pytest.raises(NotHealthy) as err:
        backend.wait_routed(topo, timeout=0, get=lambda url, headers: lb_stats("UP", "MAINT"))
    assert str(err.value).startswith(
        "not routed by the load balancer after 0s: ese-server2 (MAINT); `invoke status`"
    )


def test_consumer_waits_until_the_dashboard_answers(wired, env_file, monkeypatch, capsys):
    calls = iter([False, False, True])
    monkeypatch.setattr(consumer_flow, "answers", lambda url: next(calls))
    tasks.consumer(context(), port="8600")
    assert next(calls, "done") == "done"  # asked until it answered
    assert "Consumer dashboard: http://localhost:8600" in capsys.readouterr().out


@pytest.mark.parametrize("inside_exit", [0, 1])
def test_consumer_on_another_engine_is_asked_inside_its_container(
    wired, env_file, monkeypatch, capsys, inside_exit
):
    """DOCKER_HOST at another machine's engine: this machine's ports and localhost say nothing
    about it, so neither is asked; the dashboard is asked inside its container."""
    wired.images.present.add("ese-consumer:local")
    monkeypatch.setenv("DOCKER_HOST", "ssh://other-machine")
    monkeypatch.setattr(ports, "is_free", lambda port, bind="0.0.0.0": False)
    monkeypatch.setattr(consumer_flow, "answers", lambda url: pytest.fail("asked localhost"))
    monkeypatch.setattr(consumer_flow, "READY_SECONDS", 0.3)
    real_run = wired.containers.run

    def run(image: str, **kwargs: Any) -> FakeContainer:
        container = real_run(image, **kwargs)
        container.exec_exit = inside_exit
        return container

    monkeypatch.setattr(wired.containers, "run", run)
    if inside_exit:
        with pytest.raises(Exit) as err:
            tasks.consumer(context(), remote=True)
        assert "the consumer dashboard answers (http://localhost:8501)" in str(err.value.message)
        return
    tasks.consumer(context(), remote=True)
    (container,) = [c for c in wired.containers.items if c.name == "ese-consumer"]
    assert container.exec_calls[0][:2] == ["python", "-c"]
    assert container.exec_calls[0][-1] == "8501"
    out = capsys.readouterr().out
    assert "Consumer dashboard: http://localhost:8501 on the machine of DOCKER_HOST=ssh://" in out


def test_a_consumer_that_never_answers_is_one_line_pointing_at_its_logs(
    wired, env_file, monkeypatch
):
    monkeypatch.setattr(consumer_flow, "READY_SECONDS", 0.2)
    monkeypatch.setattr(consumer_flow, "answers", lambda url: False)
    with pytest.raises(Exit) as err:
        tasks.consumer(context())
    assert str(err.value.message).endswith("; see `invoke logs -s ese-consumer`")
