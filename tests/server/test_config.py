"""Configuration: environment variables, equivalent flags, one-line errors with exit code 2."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ese_server
from ese_server.config import ConfigError, load_settings


def test_defaults_and_environment() -> None:
    s = load_settings([], {})
    assert (s.port, s.role, s.retention_seconds, s.max_batch, s.max_body_bytes) == (
        2001,
        "all",
        300,
        1000,
        1024 * 1024,
    )
    assert s.ingest_token is None and s.analytics_token is None and s.cors_origins == ()
    env = {
        "SERVER_PORT": "2002",
        "ESE_ROLE": "Ingest",
        "REDIS_URL": "redis://redis-server:6379/1",
        "REDIS_PASSWORD": "p@ss",
        "ESE_RETENTION_SECONDS": "60",
        "ESE_INGEST_TOKEN": "t1",
        "ESE_ANALYTICS_TOKEN": "",
        "ESE_MAX_BATCH": "50",
        "ESE_MAX_BODY_BYTES": "4096",
        "ESE_CORS_ORIGINS": "http://a:1, http://b:2",
    }
    s = load_settings([], env)
    assert (s.port, s.role, s.retention_seconds, s.max_batch, s.max_body_bytes) == (
        2002,
        "ingest",
        60,
        50,
        4096,
    )
    assert s.redis_url == "redis://:p%40ss@redis-server:6379/1"
    assert s.redacted_redis_url() == "redis://:***@redis-server:6379/1"
    assert s.ingest_token == "t1" and s.analytics_token is None  # empty = unset
    assert s.cors_origins == ("http://a:1", "http://b:2")


@pytest.mark.parametrize(
    "raw", ["http://a:1 http://b:2", "http://a:1,http://b:2", " http://a:1 ,\thttp://b:2 "]
)
def test_origins_take_spaces_or_commas_as_haproxy_and_people_write_them(raw: str) -> None:
    assert load_settings([], {"ESE_CORS_ORIGINS": raw}).cors_origins == ("http://a:1", "http://b:2")


def test_flags_override_environment() -> None:
    s = load_settings(
        ["--port", "3000", "--role", "analytics", "--max-batch", "7"], {"SERVER_PORT": "1"}
    )
    assert (s.port, s.role, s.max_batch) == (3000, "analytics", 7)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"SERVER_PORT": "http"}, "SERVER_PORT"),
        ({"SERVER_PORT": "70000"}, "SERVER_PORT"),
        ({"ESE_ROLE": "writer"}, "ESE_ROLE"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://h:port/0"}, "REDIS_URL"),
        ({"ESE_RETENTION_SECONDS": "0"}, "ESE_RETENTION_SECONDS"),
        ({"ESE_MAX_BATCH": "many"}, "ESE_MAX_BATCH"),
        ({"ESE_MAX_BODY_BYTES": "-1"}, "ESE_MAX_BODY_BYTES"),
        ({"ESE_CORS_ORIGINS": "localhost"}, "ESE_CORS_ORIGINS"),
    ],
)
def test_invalid_settings_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_settings([], env)


def test_invalid_config_exits_2_with_one_line_and_no_traceback() -> None:
    env = {**os.environ, "ESE_ROLE": "writer", "SERVER_PORT": "2001"}
    proc = subprocess.run(
        [sys.executable, "-m", "ese_server"], env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("ese-server: error: ESE_ROLE='writer'")
    assert "ingest, analytics, all" in lines[0]
    assert lines[1].startswith("ese-server: hint:")


def test_help_lists_every_variable() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ese_server", "--help"], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0
    for var in (
        "SERVER_PORT",
        "ESE_ROLE",
        "REDIS_URL",
        "ESE_RETENTION_SECONDS",
        "ESE_INGEST_TOKEN",
        "ESE_ANALYTICS_TOKEN",
        "ESE_MAX_BATCH",
        "ESE_MAX_BODY_BYTES",
        "ESE_CORS_ORIGINS",
    ):
        assert var in proc.stdout


@pytest.mark.parametrize(
    ("url", "expected", "redacted"),
    [
        (
            "redis://default@redis-server:6379/0",
            "redis://default:p%40ss%2Fw@redis-server:6379/0",
            "redis://default:***@redis-server:6379/0",
        ),
        ("redis://[::1]:6380/2", "redis://:p%40ss%2Fw@[::1]:6380/2", "redis://:***@[::1]:6380/2"),
        ("rediss://cache", "rediss://:p%40ss%2Fw@cache", "rediss://:***@cache"),
        (
            "unix:///run/redis.sock?db=1",
            "unix://:p%40ss%2Fw@/run/redis.sock?db=1",
            "unix://:***@/run/redis.sock?db=1",
        ),
    ],
)
def test_redis_password_joins_any_redis_url(url: str, expected: str, redacted: str) -> None:
    s = load_settings([], {"REDIS_URL": url, "REDIS_PASSWORD": "p@ss/w"})
    assert s.redis_url == expected
    assert s.redacted_redis_url() == redacted


def test_password_in_the_url_wins_over_redis_password() -> None:
    s = load_settings([], {"REDIS_URL": "redis://u:inurl@h:1/0", "REDIS_PASSWORD": "other"})
    assert s.redis_url == "redis://u:inurl@h:1/0"


def test_a_bad_flag_is_named_as_typed_and_a_blank_flag_means_unset() -> None:
    with pytest.raises(ConfigError, match=r"^--port='http' is not an integer"):
        load_settings(["--port", "http"], {"SERVER_PORT": "2002"})
    assert load_settings(["--port", " "], {"SERVER_PORT": "2002"}).port == 2002


def test_an_unknown_flag_is_a_one_line_config_error() -> None:
    with pytest.raises(ConfigError, match="unrecognized arguments: --nope"):
        load_settings(["--nope"], {})


def test_the_shard_imports_nothing_of_redis_py() -> None:
    # redis-py is a development dependency (the server image does not install it); the
    # benchmark injects its client from benchmarks/redis_py_client.py.
    package = Path(ese_server.__file__).parent
    for module in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text("utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not [n for n in names if n.split(".")[0] == "redis"], module.name
