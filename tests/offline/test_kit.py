"""The kit's image catalog, env overrides, mirror detection and input digests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ese.kit import IMAGES_DIR, REPO_ROOT
from ese.kit.catalog import IMAGES, env_lines, env_overrides, with_parents
from ese.kit.debian import DEFAULT_MIRROR, host_mirrors, sources_list
from ese.kit.inputs import tree_digest

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def test_every_override_is_a_topology_image_variable() -> None:
    topology = tomllib.loads((REPO_ROOT / "topology.toml").read_text())
    topology_envs = {spec["env"] for spec in topology["images"].values()}
    overrides = env_overrides()
    assert set(overrides) == {
        "ESE_REDIS_IMAGE",
        "ESE_HAPROXY_IMAGE",
        "ESE_PROMETHEUS_IMAGE",
        "ESE_ALERTMANAGER_IMAGE",
        "ESE_REDIS_EXPORTER_IMAGE",
        "ESE_NODE_EXPORTER_IMAGE",
        "ESE_GRAFANA_IMAGE",
        "ESE_PYTHON_BASE_IMAGE",
        "ESE_NODE_IMAGE",
        "ESE_REGISTRY_IMAGE",
    }
    assert set(overrides) <= topology_envs


def test_env_lines_can_be_sourced() -> None:
    lines = env_lines({"ESE_REDIS_IMAGE": "ese-offline/redis:7"})
    assert lines == ["export ESE_REDIS_IMAGE=ese-offline/redis:7"]


def test_parents_come_first_and_only_once() -> None:
    names = [image.name for image in with_parents(["grafana", "redis"])]
    assert names == ["debian", "redis", "python", "grafana"]


def test_every_dockerfile_image_has_its_folder() -> None:
    for image in IMAGES:
        if image.name == "debian":
            assert (IMAGES_DIR / "debian" / "rootfs" / "usr/sbin/policy-rc.d").is_file()
            continue
        dockerfile = (IMAGES_DIR / image.folder / "Dockerfile").read_text()
        # Every stand-in is built FROM the kit image it names as parent.
        assert "ARG BASE_IMAGE=" in dockerfile and "FROM ${BASE_IMAGE}" in dockerfile
        if image.target:  # a shared recipe has a stage for each of its images
            assert f" AS {image.target}\n" in dockerfile
        for arg, _ in image.args:
            assert f"ARG {arg}\n" in dockerfile


def test_mirrors_from_deb822_and_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian/\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm-security\n"
    )
    (tmp_path / "sources.list.d" / "zz.list").write_text(
        "deb [arch=amd64] http://sec.example/debian-security bookworm-security main\n"
    )
    mirrors = host_mirrors(tmp_path)
    assert mirrors.main == "http://mirror.example/debian"
    assert mirrors.security == "http://sec.example/debian-security"
    text = sources_list(mirrors)
    assert "deb http://mirror.example/debian bookworm-updates main" in text


def test_mirrors_default_without_apt_sources(tmp_path: Path) -> None:
    assert host_mirrors(tmp_path).main == DEFAULT_MIRROR


def test_digest_follows_content_and_mode(tmp_path: Path) -> None:
    folder = tmp_path / "img"
    folder.mkdir()
    script = folder / "entry.sh"
    script.write_text("echo hi\n")
    first = tree_digest([folder], ["parent-a"])
    assert tree_digest([folder], ["parent-a"]) == first
    assert tree_digest([folder], ["parent-b"]) != first
    script.chmod(0o755)
    second = tree_digest([folder], ["parent-a"])
    if os.name == "posix":  # Windows has no executable bit to follow
        assert second != first
    script.write_text("echo bye\n")
    assert tree_digest([folder], ["parent-a"]) != second
