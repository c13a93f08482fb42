"""Removing the stack: `docker stack rm`, waiting until its objects are gone, then what
`swarm.up` made besides (secrets, configs) and, when asked, its volumes."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ese.engine import commands
from ese.errors import EseError
from ese.host import sdk
from ese.swarm import state


def leftovers(cli: Any, stack: str, kinds: tuple[str, ...]) -> list[str]:
    """What of `kinds` the engine still has of the stack, e.g. "service ese_elb"."""
    label = state.stack_filter(stack)
    found: list[str] = []
    if "services" in kinds:
        found += [f"service {s['Spec']['Name']}" for s in cli.api.services(filters=label)]
    if "networks" in kinds:
        found += [f"network {n.name}" for n in cli.networks.list(filters=label)]
    if "containers" in kinds:
        found += [f"container {x.name}" for x in sdk.list_containers(cli, label)]
    return found


def wait_gone(
    cli: Any,
    stack: str,
    kinds: tuple[str, ...],
    timeout: float,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> None:
    """Wait until nothing of `kinds` of the stack is left (stack rm returns before that)."""
    clock, sleep = clock or time.monotonic, sleep or time.sleep
    start, last = clock(), ""
    while True:
        left = leftovers(cli, stack, kinds)
        if not left:
            return
        line = f"waiting for {len(left)} to go: {', '.join(left[:4])}"
        if line != last:
            print(f"[{clock() - start:4.0f}s] {line}")
            last = line
        if clock() - start >= timeout:
            raise EseError(
                f"still there after {timeout:.0f}s: {', '.join(left)}",
                "run `invoke swarm.down` again, or remove them with docker",
            )
        sleep(1.0)


def remove_stack(
    cli: Any,
    stack: str,
    *,
    volumes: bool,
    timeout: float,
    containers_gone: bool = False,
    engine_env: Mapping[str, str] | None = None,
) -> None:
    """`docker stack rm` (through the CLI, as deploy), then the secrets and configs swarm.up
    created, and with `volumes` the stack's volumes. With `volumes` or `containers_gone`, it
    returns only once the stack's containers are gone too."""
    label = state.stack_filter(stack)
    if cli.api.services(filters=label) or cli.networks.list(filters=label):
        argv = ["docker", "stack", "rm", stack]
        commands.run(argv, env=engine_env, what="docker stack rm", hint="see its output above")
    wait_gone(cli, stack, ("services", "networks"), timeout)
    for kind, items in (
        ("secret", cli.secrets.list(filters=label)),
        ("config", cli.configs.list(filters=label)),
    ):
        for item in items:  # stack rm removes its own; these are the ones swarm.up created
            print(f"> docker {kind} rm {item.name}")
            item.remove()
    if volumes or containers_gone:
        # A volume in use cannot be removed, and each task container holds an endpoint on
        # docker_gwbridge, which must be gone before the bridge can go (ese/swarm/gwbridge.py).
        wait_gone(cli, stack, ("containers",), timeout)
    for volume in cli.volumes.list(filters=label) if volumes else []:
        print(f"> docker volume rm {volume.name}")
        volume.remove()
