"""The rights a node container gets: a Docker engine inside needs to mount cgroups, set up
networks and run containers. `--privileged` where this engine allows it (Docker Desktop, most
Linux hosts); where it is refused (e.g. "unable to apply caps" on a host without
CAP_SYS_RESOURCE), every capability but that one, with seccomp, AppArmor and the masked /proc
and /sys paths unconfined."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Mapping
from typing import Any

from ese.errors import EseError
from ese.swarm import calls

Options = Mapping[str, Any]
PRIVILEGED: Options = {"privileged": True}
CAPABILITIES: Options = {
    "cap_add": ["ALL"],
    "cap_drop": ["SYS_RESOURCE"],
    "security_opt": ["seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"],
}
CHOICES = (PRIVILEGED, CAPABILITIES)
# A flag of the docker CLI, not a field of the engine's API: it sends no masked and no
# read-only paths (so /proc/sys is writable: the node's engine sets its network's sysctls).
SYSTEMPATHS = "systempaths=unconfined"
PROBE_SECONDS = 60


def flags(options: Options) -> str:
    """The `docker run` flags for `options`."""
    if options.get("privileged"):
        return "--privileged"
    parts = [f"--cap-add {c}" for c in options.get("cap_add", [])]
    parts += [f"--cap-drop {c}" for c in options.get("cap_drop", [])]
    parts += [f"--security-opt {o}" for o in options.get("security_opt", [])]
    return " ".join(parts)


def host_config(cli: Any, options: Options, **more: Any) -> dict[str, Any]:
    """The API's HostConfig for `options`, with `more` of `create_host_config`'s arguments."""
    wanted = list(options.get("security_opt", []))
    config: dict[str, Any] = cli.api.create_host_config(
        privileged=bool(options.get("privileged")),
        cap_add=options.get("cap_add"),
        cap_drop=options.get("cap_drop"),
        security_opt=[o for o in wanted if o != SYSTEMPATHS] or None,
        **more,
    )
    if SYSTEMPATHS in wanted:
        config["MaskedPaths"] = []
        config["ReadonlyPaths"] = []
    return config


def probe(cli: Any, image: str, options: Options, name: str) -> str:
    """'' when a container of `image` with `options` starts and ends well, else why not."""
    errors = importlib.import_module("docker.errors")
    box = None
    try:
        config = host_config(cli, options, cgroupns="private")
        made = cli.api.create_container(image, entrypoint=["true"], name=name, host_config=config)
        box = cli.containers.get(made["Id"])
        box.start()
        code = int(box.wait(timeout=PROBE_SECONDS)["StatusCode"])
        return "" if code == 0 else f"it exited {code}"
    except Exception as exc:  # docker.errors.APIError (refused at start), a read timeout
        return calls.reason(exc)
    finally:
        if box is not None:
            with contextlib.suppress(errors.APIError):  # gone already
                box.remove(force=True)


def choose(
    cli: Any,
    image: str,
    name: str,
    attempt: Callable[[Any, str, Options, str], str] = probe,
    report: Callable[[str], None] = print,
) -> Options:
    """The first of CHOICES this engine runs a node with; an EseError naming what is missing
    when it refuses both."""
    refused: list[str] = []
    for options in CHOICES:
        report(f"> docker run --rm {flags(options)} --entrypoint true {image}")
        problem = attempt(cli, image, options, name)
        if not problem:
            if refused:
                report(f"node containers run with {flags(options)}")
            return options
        report(f"  refused: {problem}")
        refused.append(problem)
    raise EseError(
        "this Docker engine refuses the rights a cluster node needs (a Docker engine in a "
        f"container): --privileged ({refused[0]}), and {flags(CAPABILITIES)} ({refused[1]})",
        "a node needs CAP_SYS_ADMIN and CAP_NET_ADMIN with seccomp and AppArmor unconfined; "
        "allow privileged containers in the engine (Docker Desktop: they are allowed by "
        "default), or run the cluster on a Linux host",
    )


def of_node(box: Any) -> dict[str, Any]:
    """The rights an existing node was created with (no need to ask the engine again)."""
    host = (box.attrs or {}).get("HostConfig") or {}
    return dict(PRIVILEGED if host.get("Privileged") else CAPABILITIES)
