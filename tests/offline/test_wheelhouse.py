"""The wheelhouse's requirement list and its completeness check for the image's Python."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from ese.kit import KitError
from ese.kit.wheelhouse import Target, missing, normalize, requirements

PYPROJECT = """
[build-system]
requires = ["setuptools>=68", "wheel"]

[project]
name = "Demo_Project"
dependencies = ["invoke>=2.2", "tomli>=2.0; python_version < '3.11'"]

[project.optional-dependencies]
server = ["redis[hiredis]>=5.0", "orjson>=3.8"]
client = ["orjson>=3.9", "aiohttp>=3.9"]
all = ["demo-project[server,client]"]
dev = ["demo-project[all]", "pytest"]
"""

BOOKWORM = Target(
    env={
        "implementation_name": "cpython",
        "implementation_version": "3.11.2",
        "os_name": "posix",
        "platform_machine": "x86_64",
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": "3.11.2",
        "python_version": "3.11",
        "sys_platform": "linux",
    },
    glibc=(2, 36),
    abi="cp311",
)


def _pyproject(tmp_path: Path) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(PYPROJECT)
    return path


def _wheel(folder: Path, name: str, requires: list[str]) -> None:
    """A minimal wheel: only the METADATA the completeness check reads."""
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"
    meta += "".join(f"Requires-Dist: {req}\n" for req in requires)
    with zipfile.ZipFile(folder / f"{name}-1.0-py3-none-any.whl", "w") as archive:
        archive.writestr(f"{name}-1.0.dist-info/METADATA", meta)


def test_requirements_expand_self_references_and_keep_build_requires(tmp_path: Path) -> None:
    reqs = requirements(_pyproject(tmp_path), ["all"])
    assert reqs[:4] == [
        "setuptools>=68",
        "wheel",
        "invoke>=2.2",
        "tomli>=2.0; python_version < '3.11'",
    ]
    assert sorted(reqs[4:]) == ["aiohttp>=3.9", "orjson>=3.8", "orjson>=3.9", "redis[hiredis]>=5.0"]


def test_requirements_of_one_extra_leave_the_others_out(tmp_path: Path) -> None:
    reqs = requirements(_pyproject(tmp_path), ["client"])
    assert "aiohttp>=3.9" in reqs
    assert not any(req.startswith("redis") for req in reqs)


def test_unknown_extra_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KitError, match=r"extra 'consumer' is not in .*extras there: all, client"):
        requirements(_pyproject(tmp_path), ["client", "consumer"])


def test_marker_gated_dependency_of_the_image_python_is_reported_missing(tmp_path: Path) -> None:
    # redis declares async-timeout only below 3.11.3: needed by bookworm's 3.11.2, which
    # pip misses when it runs on a newer host Python.
    _wheel(
        tmp_path,
        "redis",
        [
            'async-timeout>=4.0.3; python_full_version < "3.11.3"',
            'hiredis>=3.0.0; extra == "hiredis"',
        ],
    )
    _wheel(tmp_path, "hiredis", [])
    assert missing(tmp_path, ["redis[hiredis]>=5.0"], BOOKWORM) == ["async-timeout>=4.0.3"]
    _wheel(tmp_path, "async_timeout", [])
    assert missing(tmp_path, ["redis[hiredis]>=5.0"], BOOKWORM) == []


def test_extras_of_a_dependency_are_followed_only_when_requested(tmp_path: Path) -> None:
    _wheel(tmp_path, "redis", ['hiredis>=3.0.0; extra == "hiredis"'])
    assert missing(tmp_path, ["redis>=5.0"], BOOKWORM) == []
    assert missing(tmp_path, ["redis[hiredis]>=5.0"], BOOKWORM) == ["hiredis>=3.0.0"]


def test_dependencies_for_other_platforms_are_not_required(tmp_path: Path) -> None:
    _wheel(tmp_path, "uvicorn", ['colorama>=0.4; sys_platform == "win32"'])
    reqs = ["uvicorn", "uvloop>=0.19; sys_platform == 'win32'", "tomli; python_version < '3.11'"]
    assert missing(tmp_path, reqs, BOOKWORM) == []


def test_pip_arguments_pin_the_image_interpreter() -> None:
    args = BOOKWORM.pip_args()
    assert args[:3] == ["--only-binary=:all:", "--implementation", "cp"]
    assert args[args.index("--python-version") + 1] == "3.11.2"
    assert args[args.index("--abi") + 1] == "cp311"
    platforms = [args[i + 1] for i, arg in enumerate(args) if arg == "--platform"]
    # Newest glibc first, nothing newer than the image's glibc, the legacy aliases kept.
    assert platforms[0] == "manylinux_2_36_x86_64"
    assert "manylinux_2_37_x86_64" not in platforms
    assert {"manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"} <= set(platforms)


def test_probe_output_is_parsed() -> None:
    probe = '{"env": {"python_full_version": "3.11.2"}, "libc": ["glibc", "2.36"], "abi": "cp311"}'
    target = Target.from_probe(probe)
    assert target.glibc == (2, 36)
    assert target.abi == "cp311"


def test_probe_of_a_non_glibc_image_is_refused() -> None:
    with pytest.raises(KitError, match="expects glibc"):
        Target.from_probe('{"env": {}, "libc": ["", ""], "abi": "cp311"}')


def test_normalize() -> None:
    assert normalize("Demo_Project") == normalize("demo.project") == "demo-project"
