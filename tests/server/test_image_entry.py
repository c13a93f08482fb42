"""services/Dockerfile's entry point and health probe (ese_settings.image), run for real."""

from __future__ import annotations

import os
import subprocess
import sys

from ese_settings import image
from tests.conftest import ServerHandle
from tests.tooling import free_port


def entry(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ese_settings.image", *args],
        # The console scripts sit beside this interpreter, as they do in the image's venv.
        env={"PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_run_becomes_the_named_service_with_the_containers_arguments() -> None:
    proc = entry("run", "--help", ESE_SERVICE="ese-client")
    assert proc.returncode == 0, proc.stderr
    assert "REACT_APP_BE_SERVER" in proc.stdout  # ese-client's own help


def test_a_service_that_is_not_installed_is_one_line_and_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ese_settings.image", "run"],
        env={"PATH": "/nonexistent", "ESE_SERVICE": "ese-server"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "ese-server is not installed in this image; build it with EXTRA=server"
    )


def test_an_unknown_service_is_one_line_and_exit_2() -> None:
    proc = entry("run", ESE_SERVICE="ese-nope")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "ESE_SERVICE='ese-nope' is not a service; use one of ese-server, ese-client, ese-consumer"
    )


def test_health_of_a_shard_follows_its_port(shard: ServerHandle) -> None:
    port = str(shard.port)
    assert image.health({"ESE_SERVICE": "ese-server", "SERVER_PORT": port}) == 0
    closed = str(free_port())
    assert image.health({"ESE_SERVICE": "ese-server", "SERVER_PORT": closed}) == 1


def test_health_of_the_client_is_its_imports() -> None:
    assert image.health({"ESE_SERVICE": "ese-client"}) == 0
    assert image.probe_url("ese-client", {}) is None
