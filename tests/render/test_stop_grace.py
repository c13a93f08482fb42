"""Docker's stop_grace_period of every shard is derived from the shard's drain time, so Docker
never SIGKILLs a shard that is still finishing its requests (compose and the Swarm stack)."""

from __future__ import annotations

import signal
from typing import Any

import uvicorn
import yaml

from ese.render import common, compose_files, swarm_stack
from ese.topology import load
from ese_server import __main__ as server_main
from ese_server import config as server_config


def seconds(value: str) -> int:
    assert value.endswith("s") and value[:-1].isdigit(), value
    return int(value[:-1])


def test_the_renderers_drain_is_the_shards() -> None:
    # The shard's image ships without ese/, so both keep the number; this keeps them equal.
    assert server_config.DRAIN_SECONDS == common.SHARD_DRAIN_SECONDS


def test_the_shard_gives_uvicorn_its_drain(monkeypatch) -> None:
    seen: list[Any] = []

    class Recorder:
        def __init__(self, config: uvicorn.Config) -> None:
            seen.append(config)

        def run(self) -> None:
            pass  # not serving: only the configuration the shard builds is looked at

    monkeypatch.setattr(uvicorn, "Server", Recorder)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server_main.serve(server_config.load_settings([], {}))
    finally:  # serve() installs the shard's own handlers; the test run keeps pytest's
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert [c.timeout_graceful_shutdown for c in seen] == [server_config.DRAIN_SECONDS]


def test_every_shard_may_drain_fully_before_docker_kills_it() -> None:
    topo = load()
    compose = yaml.safe_load(compose_files.backend(topo))["services"]
    stack = yaml.safe_load(swarm_stack.stack(topo))["services"]
    shards = {f"compose {s.name}": compose[s.name] for s in topo.shards}
    shards[f"swarm {topo.swarm.ingest_service}"] = stack[topo.swarm.ingest_service]
    shards |= {f"swarm {s.name}": stack[s.name] for s in topo.shards if s.role == "analytics"}
    expected = server_config.DRAIN_SECONDS + common.STOP_MARGIN_SECONDS
    for name, service in shards.items():
        grace = seconds(service.get("stop_grace_period", "10s"))  # compose's default: 10 s
        assert grace == expected, name
        assert grace > server_config.DRAIN_SECONDS, name
