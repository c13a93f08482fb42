"""Find the real tools a check needs: a local binary first, else its image when Docker runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ese.engine import commands, compose, images
from ese.errors import EseError
from ese.host import sdk
from ese.topology import Topology


@dataclass(frozen=True)
class InImage:
    """A tool run in a throwaway container of `image`: host folders mounted read-only, and
    names that resolve to an address (as the compose network resolves the shards)."""

    image: str
    command: list[str]
    mounts: dict[Path, str]  # host folder -> where it appears in the container
    entrypoint: str | None = None
    hosts: dict[str, str] = field(default_factory=dict)

    def options(self) -> dict[str, object]:
        """The Docker SDK's `containers.run` options for this run."""
        volumes = {
            str(host): {"bind": inside, "mode": "ro"} for host, inside in self.mounts.items()
        }
        extra: dict[str, object] = {"volumes": volumes, "extra_hosts": self.hosts}
        if self.entrypoint:
            extra["entrypoint"] = self.entrypoint
        if hasattr(os, "getuid"):
            # As the user who runs the check: the images' own users (nobody, haproxy) may not
            # read a checkout or temporary folder that is private to its owner.
            extra["user"] = f"{os.getuid()}:{os.getgid()}"
        return extra


def run(cmd: list[str] | InImage, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a tool quietly, capturing text output; never raises for a non-zero exit."""
    if isinstance(cmd, InImage):
        return sdk.run_once(cmd.image, cmd.command, timeout, **cmd.options())
    return commands.output(cmd, timeout)


def with_hosts(argv: list[str], names: Iterable[str], tmp: Path) -> list[str] | None:
    """`argv` in a private mount namespace whose /etc/hosts maps `names` to 127.0.0.1, as the
    compose network resolves the shards; nothing on the machine changes. None where Linux
    mount namespaces cannot be had (not Linux, no `unshare`, no user namespaces)."""
    if not sys.platform.startswith("linux") or not shutil.which("unshare"):
        return None
    if run(["unshare", "--map-root-user", "--mount", "true"], 30).returncode != 0:
        return None
    hosts = tmp / "hosts"
    hosts.write_text(f"127.0.0.1 localhost {' '.join(names)}\n", encoding="utf-8")
    # "$@": the command reaches exec as its own words, whatever its paths contain.
    script = f'mount --bind "{hosts}" /etc/hosts && exec "$@"'
    return ["unshare", "--map-root-user", "--mount", "sh", "-c", script, "sh", *argv]


def tool_image(topo: Topology, key: str) -> str | None:
    """The image `invoke up` runs for topology image `key`, when this engine has it or a
    registry lets it be pulled; None otherwise. Never builds the offline kit: a check only
    uses a stand-in that is already there."""
    try:
        cli = sdk.client()
    except EseError:
        return None
    try:
        chosen = images.plan(
            topo, "auto", cli, only=(key,), report=lambda _: None, build_kit=images.kit_tags
        )
        ref = chosen.ref(key)
        return ref if images.present(cli, ref) else None
    except EseError:  # the registry lacks it, or the kit cannot exist on this machine
        return None
    finally:
        cli.close()


def compose_command() -> list[str] | None:
    """The compose program (`docker compose` or `docker-compose`), or None when neither exists."""
    try:
        return list(compose.detect().base)
    except EseError:
        return None


@dataclass(frozen=True)
class Missing:
    """Why a tool could not be found, phrased for a skip message."""

    what: str
    hint: str

    def __str__(self) -> str:
        return f"{self.what} not found ({self.hint})"
