"""Settings: defaults, environment, flags over environment, one-line errors with exit code 2."""

from __future__ import annotations

import pytest

from ese_client.config import ConfigError, Settings, load_settings
from tests.client.conftest import assert_usage_error


def test_defaults_are_the_originals() -> None:
    settings = load_settings([], {})
    assert settings == Settings()
    assert (settings.delay_ms, settings.limit, settings.batch_size) == (300, 50_000, 5)
    assert (settings.concurrency, settings.token) == (1, None)
    assert settings.server == "http://localhost:8100"


def test_environment_is_read() -> None:
    env = {
        "REACT_APP_BE_SERVER": "http://elb:8100/",
        "ESE_EVENT_DELAY_MS": "0",
        "ESE_EVENT_LIMIT": "123",
        "ESE_BATCH_SIZE": "7",
        "ESE_CONCURRENCY": "4",
        "ESE_INGEST_TOKEN": "s3cret",
        "ESE_RETRY_SECONDS": "2.5",
    }
    settings = load_settings([], env)
    assert settings.base_url == "http://elb:8100"
    assert (settings.delay_ms, settings.limit, settings.batch_size) == (0, 123, 7)
    assert (settings.concurrency, settings.token, settings.retry_seconds) == (4, "s3cret", 2.5)


def test_flags_win_over_the_environment() -> None:
    env = {"ESE_EVENT_LIMIT": "123", "REACT_APP_BE_SERVER": "http://a:1"}
    argv = ["--event-limit", "9", "--server", "https://b:2", "--concurrency", "3", "--seed", "5"]
    settings = load_settings(argv, env)
    assert (settings.limit, settings.server, settings.concurrency, settings.seed) == (
        9,
        "https://b:2",
        3,
        5,
    )


def test_empty_values_mean_unset() -> None:
    settings = load_settings([], {"ESE_INGEST_TOKEN": "", "ESE_EVENT_LIMIT": "  "})
    assert settings.token is None
    assert settings.limit == 50_000


@pytest.mark.parametrize(
    ("argv", "env", "names"),
    [
        ([], {"ESE_EVENT_DELAY_MS": "-1"}, "ESE_EVENT_DELAY_MS"),
        (["--event-limit", "-5"], {}, "--event-limit"),
        ([], {"ESE_CONCURRENCY": "0"}, "ESE_CONCURRENCY"),
        ([], {"ESE_BATCH_SIZE": "five"}, "ESE_BATCH_SIZE"),
        ([], {"REACT_APP_BE_SERVER": "localhost:8100"}, "REACT_APP_BE_SERVER"),
        ([], {"REACT_APP_BE_SERVER": "http://"}, "REACT_APP_BE_SERVER"),
        (["--server", "http://h:99999"], {}, "--server"),
        (["--server", "http://h/?x=1"], {}, "--server"),
        (["--nope"], {}, "--nope"),
    ],
)
def test_invalid_settings_give_one_line_with_a_hint_and_exit_2(
    argv: list[str], env: dict[str, str], names: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_usage_error(argv, env, names, capsys)


def test_react_app_be_server_flag_and_stop_grace() -> None:
    settings = load_settings(
        ["--react-app-be-server", "http://elb:8100", "--stop-grace-seconds", "2"], {}
    )
    assert (settings.server, settings.stop_grace_seconds) == ("http://elb:8100", 2.0)
    assert load_settings([], {"ESE_STOP_GRACE_SECONDS": "1.5"}).stop_grace_seconds == 1.5
    assert Settings().stop_grace_seconds == 5.0


@pytest.mark.parametrize("raw", ["inf", "nan", "-inf"])
def test_non_finite_numbers_are_rejected(raw: str) -> None:
    with pytest.raises(ConfigError, match="finite"):
        load_settings([], {"ESE_RETRY_SECONDS": raw})
