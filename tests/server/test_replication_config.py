"""The Sentinel and acknowledgement settings: parsed, checked with one-line errors, and handed
to the store as given."""

from __future__ import annotations

import pytest

from benchmarks.redis_py_client import RedisPyClient
from ese_server.config import MAX_ACK_TIMEOUT_MS, ConfigError, load_settings
from ese_server.redis_client import RedisClient
from ese_server.sentinel import Sentinels
from ese_server.store import Store


def test_without_sentinels_or_acks_the_store_is_as_before() -> None:
    s = load_settings([], {})
    assert (s.redis_sentinels, s.redis_master_name, s.ack_replicas, s.ack_timeout_ms) == (
        (),
        "ese",
        0,
        1000,
    )
    store = Store.from_settings(s)
    assert isinstance(store.redis, RedisClient) and store.redis.locator is None
    assert store.ack_replicas == 0


def test_sentinels_and_acks_from_the_environment_reach_the_store() -> None:
    env = {
        "REDIS_URL": "redis://:pw@unused:6379/2",
        "ESE_REDIS_SENTINELS": "s1:26380, s2 [::1]:26381",
        "ESE_REDIS_MASTER_NAME": "events",
        "ESE_ACK_REPLICAS": "1",
        "ESE_ACK_TIMEOUT_MS": "250",
    }
    s = load_settings([], env)
    assert s.redis_sentinels == (("s1", 26380), ("s2", 26379), ("::1", 26381))
    assert (s.redis_master_name, s.ack_replicas, s.ack_timeout_ms) == ("events", 1, 250)
    store = Store.from_settings(s)
    assert (store.ack_replicas, store.ack_timeout_ms) == (1, 250)
    assert isinstance(store.redis, RedisClient)
    locator = store.redis.locator
    assert isinstance(locator, Sentinels)
    assert (locator.addresses, locator.master_name) == (list(s.redis_sentinels), "events")


def test_an_injected_client_serves_a_plain_url_and_is_refused_with_sentinels() -> None:
    plain = Store.from_settings(load_settings([], {}), RedisPyClient)
    assert isinstance(plain.redis, RedisPyClient)
    s = load_settings([], {"ESE_REDIS_SENTINELS": "s1:26379"})
    with pytest.raises(ValueError, match="takes a plain REDIS_URL, not Sentinels"):
        Store.from_settings(s, RedisPyClient)


def test_flags_set_them_too() -> None:
    argv = ["--redis-sentinels", "a:1", "--ack-replicas", "2", "--ack-timeout-ms", "10"]
    s = load_settings(argv, {"ESE_ACK_REPLICAS": "1"})
    assert (s.redis_sentinels, s.ack_replicas, s.ack_timeout_ms) == ((("a", 1),), 2, 10)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"ESE_REDIS_SENTINELS": "s1:port"}, "ESE_REDIS_SENTINELS entry 's1:port'"),
        ({"ESE_REDIS_SENTINELS": "s1:0"}, "ESE_REDIS_SENTINELS entry 's1:0'"),
        ({"ESE_REDIS_SENTINELS": "a:b:c"}, "ESE_REDIS_SENTINELS entry 'a:b:c'"),
        ({"ESE_REDIS_MASTER_NAME": "my master"}, "ESE_REDIS_MASTER_NAME='my master'"),
        ({"ESE_ACK_REPLICAS": "-1"}, "ESE_ACK_REPLICAS=-1 is out of range"),
        ({"ESE_ACK_REPLICAS": "all"}, "ESE_ACK_REPLICAS='all' is not an integer"),
        ({"ESE_ACK_TIMEOUT_MS": "0"}, "ESE_ACK_TIMEOUT_MS=0 is out of range"),
        (
            {"ESE_ACK_TIMEOUT_MS": str(MAX_ACK_TIMEOUT_MS + 1)},
            f"ESE_ACK_TIMEOUT_MS={MAX_ACK_TIMEOUT_MS + 1} is out of range",
        ),
        (
            {"REDIS_URL": "unix:///run/redis.sock", "ESE_REDIS_SENTINELS": "s1"},
            "ESE_REDIS_SENTINELS needs a redis:// or rediss:// REDIS_URL",
        ),
    ],
)
def test_bad_values_are_one_line_errors_that_name_the_variable(
    env: dict[str, str], needle: str
) -> None:
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[")) as refused:
        load_settings([], env)
    assert "\n" not in str(refused.value)
