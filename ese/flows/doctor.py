"""`invoke doctor`: can this machine run the demo? Each check says what is wrong and the fix."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ese.engine import compose, standalone_containers
from ese.engine import images as image_choice
from ese.errors import EseError
from ese.host import lan, ports, sdk
from ese.paths import REPO_ROOT
from ese.topology import Topology

GIB = 1024**3
MIN_FREE_GIB = 2.0  # images + volumes of the demo need about this much
WARN_FREE_GIB = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok", "warn" or "fail"
    detail: str
    hint: str = ""

    def line(self) -> str:
        text = f"{self.status.upper():<4}  {self.name}: {self.detail}"
        return f"{text}\n      hint: {self.hint}" if self.hint and self.status != "ok" else text


def _docker(factory: Any) -> tuple[Check, Any]:
    """The docker check and the connected client (None when the engine is not reachable)."""
    try:
        cli = sdk.client(factory)
        version = cli.version().get("Version", "?")
        return Check("docker", "ok", f"engine {version} reachable"), cli
    except EseError as exc:
        return Check("docker", "fail", exc.what, exc.hint), None


def demo_ports(topo: Topology, cli: Any) -> dict[int, str]:
    """Host port -> service, for the ports this demo's own running containers publish."""
    if cli is None:
        return {}
    try:
        running = {
            i.service
            for i in sdk.project_containers(cli, topo.backend_project)
            if i.status == "running"
        }
        ours = {s.port: s.name for s in topo.published() if s.name in running}
        for svc in topo.published():
            if svc.name == topo.consumer.name:
                ours.update(
                    {svc.port: svc.name}
                    if standalone_containers.holds_port(cli, svc.name, svc.port)
                    else {}
                )
        return ours
    except Exception:  # best effort: a Docker hiccup here must not hide the port checks
        return {}


def _compose(detect: Callable[[], compose.Compose]) -> Check:
    try:
        found = detect()
    except EseError as exc:
        return Check("compose", "fail", exc.what, exc.hint)
    return Check("compose", "ok", f"{found.version}: {' '.join(found.base)}")


def _port(name: str, port: int, bind: str, is_free: Any, holder: Any, ours: str = "") -> Check:
    if is_free(port, bind):
        return Check(f"port {port}", "ok", f"free for {name} ({bind})")
    if ours:  # the demo is running: its own container holds the port, as it should
        return Check(f"port {port}", "ok", f"in use by {ours} (this demo, running)")
    return Check(
        f"port {port}",
        "fail",
        ports.busy_message(name, port, holder(port)),
        "stop that process or change the port in topology.toml and run `invoke render`; "
        "docker-proxy means a container publishes it (`invoke down` if it is this demo)",
    )


def _lan(find: Callable[[], str]) -> Check:
    try:
        return Check("LAN IP", "ok", f"{find()} (used by `invoke consumer --remote`)")
    except EseError as exc:
        return Check("LAN IP", "warn", exc.what, exc.hint)


def _disk(usage: Callable[[Path], Any], path: Path) -> Check:
    free = usage(path).free / GIB
    detail = f"{free:.1f} GiB free on the disk of {path}"
    if free < MIN_FREE_GIB:
        return Check("disk", "fail", detail, "free space: `docker system prune` removes old images")
    if free < WARN_FREE_GIB:
        return Check("disk", "warn", detail, "images and volumes need a few GiB")
    return Check("disk", "ok", detail)


def _images(topo: Topology, cli: Any, mode: str, why_no_kit: Callable[[], str]) -> list[Check]:
    """Does a registry answer, and which image would each service use (nothing is pulled)."""
    if cli is None:
        return []
    try:
        plan = image_choice.plan(
            topo, mode, cli, dry=True, report=lambda _: None, why_no_kit=why_no_kit
        )
    except EseError as exc:
        return [Check("images", "fail", exc.what, exc.hint)]
    if plan.registry is None:
        registry = Check("registry", "ok", "not needed: every image is present or overridden")
    elif plan.registry:
        registry = Check("registry", "ok", "an image registry answers")
    else:
        registry = Check(
            "registry",
            "warn",
            "no image registry answers",
            "fine: missing images are built from Debian packages on first use",
        )
    return [registry, *(Check("image", "ok", line) for line in plan.lines())]


def run_checks(
    topo: Topology,
    docker_factory: Any = None,
    detect: Callable[[], compose.Compose] = compose.detect,
    is_free: Callable[[int, str], bool] = ports.is_free,
    holder: Callable[[int], str] = ports.holder,
    find_lan: Callable[[], str] = lan.lan_ipv4,
    usage: Callable[[Path], Any] = shutil.disk_usage,
    path: Path = REPO_ROOT,
    images: str = "auto",
    why_no_kit: Callable[[], str] = image_choice.kit_possible,
) -> list[Check]:
    """All checks, in the order they are printed."""
    docker_check, cli = _docker(docker_factory)
    ours = demo_ports(topo, cli)
    checks = [docker_check, _compose(detect), *_images(topo, cli, images, why_no_kit)]
    checks += [
        _port(s.name, s.port, s.bind, is_free, holder, ours.get(s.port, ""))
        for s in topo.published()
    ]
    checks += [_lan(find_lan), _disk(usage, path)]
    return checks


def verdict(checks: list[Check]) -> None:
    """Raise an EseError summarising the failed checks (if any)."""
    failed = [c for c in checks if c.status == "fail"]
    if failed:
        raise EseError(
            f"doctor: {len(failed)} check(s) failed: " + "; ".join(c.detail for c in failed),
            failed[0].hint,
        )
