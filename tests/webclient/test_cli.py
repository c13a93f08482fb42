"""`ese-client --web`: settings, one-line errors, what the page's server answers, packaging."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ese_client.config import Settings, load_settings
from ese_client.web import content_security_policy, identity, origin_of, script_json
from tests.client.conftest import assert_usage_error
from tests.conftest import REPO_ROOT
from tests.tooling import free_port
from tests.webclient.conftest import wait_listening, web_env


def test_web_mode_defaults_and_sources() -> None:
    settings = load_settings(["--web"], {})
    assert (settings.web, settings.web_host, settings.web_port) == (True, "127.0.0.1", 3006)
    assert settings.server == "http://localhost:8100"
    env = {"ESE_WEB_PORT": "3100", "ESE_WEB_HOST": "0.0.0.0", "ESE_INGEST_TOKEN": "t"}
    settings = load_settings(["--web"], env)
    assert (settings.web_host, settings.web_port, settings.token) == ("0.0.0.0", 3100, "t")
    assert load_settings(["--web", "--port", "3200"], env).web_port == 3200
    assert load_settings([], {}) == Settings(), "without --web it is the simulator"


@pytest.mark.parametrize(
    ("argv", "env", "names"),
    [
        (["--web", "--port", "70000"], {}, "--port"),
        (["--web", "--port", "0"], {}, "--port"),
        (["--web", "--port", "web"], {}, "--port"),
        (["--web"], {"ESE_WEB_PORT": "3006x"}, "ESE_WEB_PORT"),
        (["--web"], {"REACT_APP_BE_SERVER": "localhost:8100"}, "REACT_APP_BE_SERVER"),
        (["--web", "--server", "http://lb:8100/?x=1"], {}, "--server"),
        (["--port", "3006"], {}, "--port"),  # a page option without --web
        (["--host", "0.0.0.0"], {}, "--host"),
    ],
)
def test_bad_web_settings_give_one_line_with_a_hint_and_exit_2(
    argv: list[str], env: dict[str, str], names: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_usage_error(argv, env, names, capsys)


def test_script_json_round_trips_and_cannot_close_the_script() -> None:
    value = {"token": "</script><script>x()</script><!-- & \u2028\u2029 \"'", "n": 5}
    text = script_json(value)
    assert json.loads(text) == value
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in text


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://localhost:8100", "http://localhost:8100"),
        ("https://LB.example/api", "https://lb.example"),
        ("http://[::1]:8100/", "http://[::1]:8100"),
        ("http://user:pw@h:1", "http://h:1"),
    ],
)
def test_origin_of(url: str, origin: str) -> None:
    assert origin_of(url) == origin
    assert f"connect-src {origin};" in content_security_policy(url)


def test_identity_is_like_a_simulators_with_web_as_the_instance() -> None:
    assert identity("10.1.2.3") == "10.1.2.3-web"


def _get(url: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            headers = {k.lower(): v for k, v in resp.headers.items()}
            return resp.status, headers, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read().decode()


def test_the_server_serves_the_page_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = web_env(REACT_APP_BE_SERVER="http://127.0.0.1:8100", ESE_INGEST_TOKEN="k")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ese_client", "--web", "--port", str(port)],
        env=env,
        cwd=str(REPO_ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_listening(port, proc)
        base = f"http://127.0.0.1:{port}"
        status, headers, body = _get(f"{base}/")
        assert status == 200
        assert headers["content-type"].startswith("text/html")
        assert headers["cache-control"] == "no-store"
        assert headers["x-content-type-options"] == "nosniff"
        assert "connect-src http://127.0.0.1:8100;" in headers["content-security-policy"]
        assert "script-src 'self'" in headers["content-security-policy"]
        assert '<meta name="viewport"' in body
        blob = body.split('type="application/json">', 1)[1].split("</script>", 1)[0]
        config = json.loads(blob)
        assert (config["server"], config["token"], config["batchSize"]) == (
            "http://127.0.0.1:8100",
            "k",
            5,
        )
        assert config["ip"].endswith("-web")
        for asset, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
            status, headers, _ = _get(f"{base}/static/{asset}")
            assert (status, headers["content-type"].split(";")[0]) == (200, kind)
        for missing in ("/static/index.html", "/static/../web.py", "/static/%2e%2e/web.py"):
            assert _get(f"{base}{missing}")[0] == 404
        assert _get(f"{base}/healthz")[:1] == (200,)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert f"click-through page on http://127.0.0.1:{port}/" in out
    assert "with the ingest token" in out


def test_a_busy_port_is_one_line_with_a_hint_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "ese_client", "--web", "--port", str(port)],
            env=web_env(),
            cwd=str(REPO_ROOT),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"ese-client: error: cannot serve the page on 127.0.0.1:{port}")
    assert "hint: pick a free port with --port" in lines[0]


def test_the_page_files_ship_in_the_package(tmp_path: Path) -> None:
    # What `pip install .` (the image's install) copies: setuptools' build_py with the
    # package-data of pyproject.toml, without a wheel build or any download.
    build_py = ["-c", "from setuptools import setup; setup()", "-q", "build_py"]
    subprocess.run(
        [sys.executable, *build_py, "-d", str(tmp_path)],
        cwd=str(REPO_ROOT),
        check=True,
        capture_output=True,
    )
    shipped = sorted(p.name for p in (tmp_path / "ese_client" / "static").iterdir())
    assert shipped == ["app.css", "app.js", "index.html"]


def test_the_image_listens_on_all_interfaces_and_exposes_the_page_port() -> None:
    dockerfile = (REPO_ROOT / "services" / "Dockerfile").read_text()
    assert "ESE_WEB_HOST=0.0.0.0" in dockerfile
    assert "EXPOSE 2001 3006 8501" in dockerfile
    assert 'RUN pip install -c constraints.txt ".[${EXTRA}]"' in dockerfile, (
        "a non-editable install: package data"
    )
