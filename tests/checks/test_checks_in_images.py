"""The config checks' Docker route: on a machine with Docker but without haproxy, promtool or
amtool, each check runs the tool in the image `invoke up` uses, and still fails a broken file.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ese import render
from ese.checks import metrics_catalog, tools
from ese.checks.haproxy_config import check_haproxy, check_swarm_haproxy
from ese.checks.outcome import Outcome
from ese.checks.prometheus_config import (
    RULES,
    check_alertmanager,
    check_promtool,
    check_rules,
    check_swarm_promtool,
    promtool_config_argv,
)
from ese.engine import images
from ese.errors import EseError
from ese.host import sdk
from ese.render import swarm_stack
from ese.topology import Topology, load
from tests.tooling import missing

pytestmark = pytest.mark.docker
# The binaries the checks look for before they fall back to an image.
LOCAL_TOOLS = {"haproxy", "promtool", "amtool", "unshare"}


@pytest.fixture(scope="module")
def topo() -> Topology:
    """The topology, with its tool images on this engine (pulled, or the kit's stand-ins built,
    as `invoke up` gets them)."""
    topo = load()
    try:
        cli = sdk.client()
    except EseError as exc:
        missing("a Docker engine", str(exc))
    try:
        images.plan(topo, "auto", cli, only=("haproxy", "prometheus", "alertmanager"))
    except EseError as exc:
        missing("the haproxy, prometheus and alertmanager images", str(exc))
    finally:
        cli.close()
    return topo


@pytest.fixture(autouse=True)
def no_local_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine without the tools: `which` finds none of them."""
    real = shutil.which

    def which(name: str, *args: Any, **kwargs: Any) -> str | None:
        return None if name in LOCAL_TOOLS else real(name, *args, **kwargs)

    monkeypatch.setattr(shutil, "which", which)


def _rendered(tmp_path: Path, topo: Topology) -> Path:
    render.write(topo, tmp_path)
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1))


Check = Callable[[Topology, Path], Outcome]
HAPROXY, PROMETHEUS = "haproxy/haproxy.cfg", "prometheus/prometheus.yml"
ALERTMANAGER = "alertmanager/alertmanager.yml"
BAD_INTERVAL = "scrape_interval: soon\n  x:"
BROKEN: list[tuple[Check, str, str, str]] = [
    (check_haproxy, HAPROXY, "balance leastconn", "balance fastest"),
    # Only a name that resolves nowhere warns: the shards resolve, as in the compose network.
    (check_haproxy, HAPROXY, "server ese-server2 ese-server2:", "server x nowhere:"),
    (check_promtool, PROMETHEUS, "scrape_interval:", BAD_INTERVAL),
    (check_rules, str(RULES), "up{job=", "up{{job="),
    (check_alertmanager, ALERTMANAGER, "receiver: default", "receiver: nobody"),
    (check_swarm_haproxy, swarm_stack.HAPROXY_FILE, "balance leastconn", "balance fastest"),
    (check_swarm_promtool, swarm_stack.PROMETHEUS_FILE, "scrape_interval:", BAD_INTERVAL),
]


@pytest.mark.parametrize(("check", "rel", "old", "new"), BROKEN)
def test_each_check_passes_and_fails_in_the_image(
    check: Check, rel: str, old: str, new: str, topo: Topology, tmp_path: Path
) -> None:
    root = _rendered(tmp_path, topo)
    clean = check(topo, root)
    assert clean.status == "ok", clean.detail
    _edit(root / rel, old, new)
    broken = check(topo, root)
    assert broken.status == "fail", broken.detail
    # The tool's own words came back from the container (not an engine error).
    assert "docker:" not in broken.detail and "timed out" not in broken.detail


def test_the_route_is_the_image_not_a_local_binary(topo: Topology, tmp_path: Path) -> None:
    argv = promtool_config_argv(topo, tmp_path / "prometheus.yml")
    assert isinstance(argv, tools.InImage)
    assert argv.image == images.plan(topo, "auto", sdk.client(), only=("prometheus",)).ref(
        "prometheus"
    )
    assert argv.mounts == {tmp_path: "/cfg"} and argv.entrypoint == "promtool"


def test_a_refused_container_is_one_line_not_a_traceback() -> None:
    proc = tools.run(tools.InImage("ese-no-such-image:0", ["true"], {}))
    assert proc.returncode == 125
    assert proc.stderr.startswith("docker: ") and "\n" not in proc.stderr.strip()


def test_haproxy_metrics_from_the_image_leave_no_container(topo: Topology) -> None:
    """Without a local haproxy the dashboard check reads the exporter from the image."""
    image = tools.tool_image(topo, "haproxy")
    assert image, "the haproxy image should be on this engine"
    cli = sdk.client()
    before = {c.id for c in sdk.list_containers(cli, {"ancestor": image})}
    names = metrics_catalog.haproxy_metrics(topo, None, image)
    assert {"haproxy_server_current_sessions", "haproxy_server_status"} <= names
    after = {c.id for c in sdk.list_containers(cli, {"ancestor": image})}
    assert after == before, "the check left its HAProxy container behind"
