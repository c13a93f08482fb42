"""A password-protected Redis (as in the compose stack) and a non-zero database number."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import RedisServer
from tests.server.conftest import click
from tests.tooling import free_port, need_binary

PASSWORD = "s3cret/with:odd@chars"


@pytest.fixture
def locked_redis() -> Iterator[RedisServer]:
    """A throw-away redis-server that requires a password."""
    binary = need_binary("redis-server", "apt-get install redis-server")
    server = RedisServer(binary, free_port(), ["--requirepass", PASSWORD])
    server.start()
    yield server
    server.stop()


def test_password_in_redis_url_and_database_number(
    ese_server_factory: Any, locked_redis: RedisServer
) -> None:
    quoted = PASSWORD.replace("/", "%2F").replace(":", "%3A").replace("@", "%40")
    url = f"redis://:{quoted}@127.0.0.1:{locked_redis.port}/3"
    shard = ese_server_factory(REDIS_URL=url)
    with httpx.Client(base_url=shard.url) as http:
        assert http.get("/").json()["redis"] == "up"
        assert http.post("/event", json=click()).status_code == 201
    client = redis.Redis(port=locked_redis.port, password=PASSWORD, db=3)
    assert client.xlen("ese:events") == 1
    client.close()


def test_password_from_redis_password(ese_server_factory: Any, locked_redis: RedisServer) -> None:
    shard = ese_server_factory(
        REDIS_URL=f"redis://127.0.0.1:{locked_redis.port}/0", REDIS_PASSWORD=PASSWORD
    )
    with httpx.Client(base_url=shard.url) as http:
        assert http.post("/event", json=click()).status_code == 201


def test_wrong_password_is_a_503_not_a_crash(
    ese_server_factory: Any, locked_redis: RedisServer
) -> None:
    shard = ese_server_factory(REDIS_URL=f"redis://:wrong@127.0.0.1:{locked_redis.port}/0")
    with httpx.Client(base_url=shard.url) as http:
        assert http.get("/").json()["redis"] == "down"
        resp = http.post("/event", json=click())
        assert resp.status_code == 503
        assert "nothing was stored" in resp.json()["message"]
    assert shard.proc.poll() is None
    assert PASSWORD not in shard.output() and ":wrong@" not in shard.output()


def test_redis_password_with_a_user_and_over_a_unix_socket(
    ese_server_factory: Any, tmp_path: Any
) -> None:
    binary = need_binary("redis-server", "apt-get install redis-server")
    sock = tmp_path / "redis.sock"
    server = RedisServer(
        binary,
        free_port(),
        ["--requirepass", PASSWORD, "--unixsocket", str(sock), "--unixsocketperm", "700"],
    )
    server.start()
    try:
        for url in (f"redis://default@127.0.0.1:{server.port}/0", f"unix://{sock}?db=2"):
            shard = ese_server_factory(REDIS_URL=url, REDIS_PASSWORD=PASSWORD)
            with httpx.Client(base_url=shard.url) as http:
                resp = http.post("/event", json=click())
                assert resp.status_code == 201, (url, resp.text)
            assert PASSWORD not in shard.output()
        client = redis.Redis(port=server.port, password=PASSWORD, db=2)
        assert client.xlen("ese:events") == 1
        client.close()
    finally:
        server.stop()
