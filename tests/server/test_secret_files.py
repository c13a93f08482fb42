"""Docker secrets: REDIS_PASSWORD_FILE, ESE_INGEST_TOKEN_FILE and ESE_ANALYTICS_TOKEN_FILE."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from ese_server.config import ConfigError, load_settings
from tests.conftest import RedisServer
from tests.server.conftest import click
from tests.tooling import free_port, need_binary

PASSWORD = "s3cret/with:odd@chars "  # a trailing blank is part of the secret


def _secret(tmp_path: Path, name: str, content: str) -> str:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8", newline="")
    return str(path)


@pytest.mark.parametrize("newline", ["", "\n", "\r\n"])
def test_files_are_read_less_one_trailing_newline(tmp_path: Path, newline: str) -> None:
    env = {
        "REDIS_PASSWORD_FILE": _secret(tmp_path, "pw", PASSWORD + newline),
        "ESE_INGEST_TOKEN_FILE": _secret(tmp_path, "in", "tok-in" + newline),
        "ESE_ANALYTICS_TOKEN_FILE": _secret(tmp_path, "an", "tok-an" + newline),
    }
    s = load_settings([], env)
    assert s.redis_url == "redis://:s3cret%2Fwith%3Aodd%40chars%20@127.0.0.1:6379/0"
    assert (s.ingest_token, s.analytics_token) == ("tok-in", "tok-an")


def test_only_one_trailing_newline_is_removed(tmp_path: Path) -> None:
    env = {"ESE_INGEST_TOKEN_FILE": _secret(tmp_path, "in", "tok\n\n")}
    assert load_settings([], env).ingest_token == "tok\n"


def test_a_flag_wins_over_a_secret_file(tmp_path: Path) -> None:
    env = {"ESE_INGEST_TOKEN_FILE": _secret(tmp_path, "in", "from-file\n")}
    assert load_settings(["--ingest-token", "from-flag"], env).ingest_token == "from-flag"


@pytest.mark.parametrize("name", ["REDIS_PASSWORD", "ESE_INGEST_TOKEN", "ESE_ANALYTICS_TOKEN"])
def test_setting_a_variable_and_its_file_is_an_error(tmp_path: Path, name: str) -> None:
    env = {name: "direct", f"{name}_FILE": _secret(tmp_path, "s", "from-file")}
    with pytest.raises(ConfigError) as info:
        load_settings([], env)
    message = str(info.value)
    assert f"both {name} and {name}_FILE are set" in message and "only one" in message
    assert "\n" not in message


@pytest.mark.parametrize("kind", ["missing", "directory", "not-utf8", "empty", "newline-only"])
def test_an_unusable_file_is_a_one_line_error(tmp_path: Path, kind: str) -> None:
    path = {
        "missing": str(tmp_path / "nope"),
        "directory": str(tmp_path),
        "not-utf8": str(tmp_path / "bin"),
        "empty": _secret(tmp_path, "empty", ""),
        "newline-only": _secret(tmp_path, "nl", "\n"),
    }[kind]
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError) as info:
        load_settings([], {"ESE_INGEST_TOKEN_FILE": path})
    message = str(info.value)
    assert message.startswith(f"ESE_INGEST_TOKEN_FILE={path!r}")
    assert "\n" not in message


def test_a_conflict_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "REDIS_PASSWORD": "a",
        "REDIS_PASSWORD_FILE": _secret(tmp_path, "pw", "b"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "ese_server"], env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("ese-server: error: both REDIS_PASSWORD and REDIS_PASSWORD_FILE")
    assert lines[1].startswith("ese-server: hint:")


def test_help_names_the_file_variables() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ese_server", "--help"], capture_output=True, text=True, timeout=30
    )
    flat = " ".join(proc.stdout.split())
    for name in ("REDIS_PASSWORD_FILE", "ESE_INGEST_TOKEN_FILE", "ESE_ANALYTICS_TOKEN_FILE"):
        assert name in flat


def test_a_shard_uses_its_secret_files(ese_server_factory: Any, tmp_path: Path) -> None:
    binary = need_binary("redis-server", "apt-get install redis-server")
    locked = RedisServer(binary, free_port(), ["--requirepass", PASSWORD])
    locked.start()
    try:
        shard = ese_server_factory(
            REDIS_URL=f"redis://127.0.0.1:{locked.port}/0",
            REDIS_PASSWORD_FILE=_secret(tmp_path, "pw", PASSWORD + "\n"),
            ESE_INGEST_TOKEN_FILE=_secret(tmp_path, "in", "tok-in\n"),
            ESE_ANALYTICS_TOKEN_FILE=_secret(tmp_path, "an", "tok-an\n"),
        )
        with httpx.Client(base_url=shard.url) as http:
            assert http.get("/").json()["redis"] == "up"
            assert http.post("/event", json=click()).status_code == 401
            ok = http.post("/event", json=click(), headers={"Authorization": "Bearer tok-in"})
            assert ok.status_code == 201, ok.text
            assert http.get("/stats").status_code == 401
            stats = http.get("/stats", headers={"Authorization": "Bearer tok-an"})
            assert stats.json()["total"] == 1
        client = redis.Redis(port=locked.port, password=PASSWORD)
        assert client.xlen("ese:events") == 1
        client.close()
        assert PASSWORD.strip() not in shard.output()
    finally:
        locked.stop()
