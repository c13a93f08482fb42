"""The wheelhouse: every wheel the service images install, for the Python inside the image.

The requirement list is read from pyproject.toml at run time (build-system requires, the
project's dependencies and the chosen extras). Wheels are downloaded on the host (pip inside a
container cannot verify TLS here) for the image's interpreter. pip evaluates environment
markers against the *host* interpreter even with --python-version, so after each download the
kit walks the wheels' Requires-Dist with the *image's* marker environment and fetches what is
still missing (e.g. async-timeout for redis on Python < 3.11.3) until nothing is.
"""

from __future__ import annotations

import email.parser
import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ese.kit import KitError
from ese.kit.output import echo, last_lines

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

try:
    from packaging.markers import Marker
    from packaging.requirements import Requirement
except ModuleNotFoundError:  # pip always vendors it
    from pip._vendor.packaging.markers import Marker  # type: ignore[assignment,no-redef,unused-ignore]
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[assignment,no-redef,unused-ignore]

STAMP = "kit-requirements.json"
REQUIREMENTS = "requirements.txt"

# Run inside the image: its interpreter's marker environment (as packaging computes it),
# its glibc and its ABI tag.
PROBE = """
import json, os, platform, sys
iv = sys.implementation.version
impl = f"{iv.major}.{iv.minor}.{iv.micro}"
if iv.releaselevel != "final":
    impl += iv.releaselevel[0] + str(iv.serial)
env = {
    "implementation_name": sys.implementation.name,
    "implementation_version": impl,
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_python_implementation": platform.python_implementation(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
libc, libc_version = platform.libc_ver()
print(json.dumps({"env": env, "libc": [libc, libc_version],
                  "abi": "cp" + sys.implementation.cache_tag.split("-")[1]}))
"""


@dataclass(frozen=True)
class Target:
    """The interpreter the wheels are for (probed from the image's runtime stage)."""

    env: dict[str, str]
    glibc: tuple[int, int]
    abi: str

    @classmethod
    def from_probe(cls, text: str) -> Target:
        data = json.loads(text)
        libc, version = data["libc"]
        if libc != "glibc":
            raise KitError(f"the image's Python reports libc {libc!r}; the kit expects glibc")
        major, minor = (int(part) for part in version.split(".")[:2])
        return cls(env=data["env"], glibc=(major, minor), abi=data["abi"])

    def platforms(self) -> list[str]:
        """pip --platform tags this interpreter accepts, most specific first."""
        arch = self.env["platform_machine"]
        major, minor = self.glibc
        tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 16, -1)]
        tags += [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]
        # Wheels built on this host (a bookworm-like glibc Linux) from sdists carry linux_*.
        return [*tags, f"linux_{arch}"]

    def pip_args(self) -> list[str]:
        args = ["--only-binary=:all:", "--implementation", "cp"]
        args += ["--python-version", self.env["python_full_version"], "--abi", self.abi]
        for tag in self.platforms():
            args += ["--platform", tag]
        return args


def normalize(name: str) -> str:
    """PEP 503 project name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(pyproject: Path, extras: Sequence[str]) -> list[str]:
    """Build requires + dependencies + the extras' dependencies (self-references expanded)."""
    data = tomllib.loads(pyproject.read_text())
    project = data["project"]
    own = normalize(project["name"])
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    reqs: list[str] = [*data.get("build-system", {}).get("requires", [])]
    reqs += project.get("dependencies", [])
    queue, seen = list(extras), set()
    while queue:
        extra = queue.pop(0)
        if extra in seen:
            continue
        seen.add(extra)
        if extra not in optional:
            known = ", ".join(sorted(optional)) or "none"
            raise KitError(f"extra {extra!r} is not in {pyproject} (extras there: {known})")
        for spec in optional[extra]:
            req = Requirement(spec)
            if normalize(req.name) == own:
                queue += sorted(req.extras)
            else:
                reqs.append(spec)
    return list(dict.fromkeys(reqs))


def _wheel_name(path: Path) -> str:
    return normalize(path.name.split("-", 1)[0])


def _requires_dist(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        meta = next(
            n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
        )
        message = email.parser.Parser().parsestr(archive.read(meta).decode("utf-8", "replace"))
    return message.get_all("Requires-Dist") or []


def _applies(req: Requirement, env: dict[str, str], extras: Iterable[str]) -> bool:
    if req.marker is None:
        return True
    marker: Marker = req.marker
    return any(marker.evaluate({**env, "extra": extra}) for extra in ["", *extras])


def missing(wheel_dir: Path, top: Sequence[str], target: Target) -> list[str]:
    """Requirements the image's interpreter needs that no wheel in `wheel_dir` satisfies by name."""
    wheels: dict[str, Path] = {}
    for wheel in sorted(wheel_dir.glob("*.whl")):
        wheels.setdefault(_wheel_name(wheel), wheel)
    wanted: dict[str, set[str]] = {}
    specs: dict[str, str] = {}
    queue: list[tuple[Requirement, tuple[str, ...]]] = [(Requirement(s), ()) for s in top]
    while queue:
        req, parent_extras = queue.pop()
        if not _applies(req, target.env, parent_extras):
            continue
        name = normalize(req.name)
        new_extras = set(req.extras) - wanted.get(name, set())
        if name in wanted and not new_extras:
            continue
        wanted.setdefault(name, set()).update(req.extras)
        specs.setdefault(name, f"{req.name}{req.specifier}")
        if name in wheels:
            extras = tuple(sorted(wanted[name]))
            queue += [(Requirement(dep), extras) for dep in _requires_dist(wheels[name])]
    return [specs[name] for name in wanted if name not in wheels]


def _pip(args: list[str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pip", *args]
    echo(" ".join(cmd))
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def _tail(proc: subprocess.CompletedProcess[str]) -> str:
    return "\n".join(last_lines(proc.stdout + proc.stderr))


def _download(
    wheel_dir: Path, reqs: Sequence[str], target: Target, constraints: Path | None
) -> None:
    req_file = wheel_dir / ".download.txt"
    req_file.write_text("\n".join(reqs) + "\n")
    common = ["--dest", str(wheel_dir), "--find-links", str(wheel_dir), "-r", str(req_file)]
    if constraints is not None:
        # The versions the test sessions run (constraints.txt), so images and tests agree.
        common += ["-c", str(constraints)]
    proc = _pip(["download", "--progress-bar", "off", *target.pip_args(), *common])
    if proc.returncode != 0:
        # Something ships only an sdist: build wheels on the host (same OS family and ABI), then
        # let the target-pinned download pick them up from the wheelhouse.
        echo("binary-only download failed; building missing wheels from sdists on the host")
        wheel = _pip(["wheel", "--progress-bar", "off", "--wheel-dir", str(wheel_dir), *common[4:]])
        if wheel.returncode != 0:
            raise KitError(f"pip wheel failed:\n{_tail(wheel)}")
        proc = _pip(["download", "--progress-bar", "off", *target.pip_args(), *common])
        if proc.returncode != 0:
            raise KitError(f"pip download for the image's Python failed:\n{_tail(proc)}")
    req_file.unlink()


def ensure(
    wheel_dir: Path,
    reqs: Sequence[str],
    target: Target,
    force: bool,
    constraints: Path | None = None,
) -> bool:
    """Fill `wheel_dir` for `reqs` on `target`; returns False when it was already complete."""
    stamp = {
        "requirements": list(reqs),
        "env": target.env,
        "glibc": list(target.glibc),
        "constraints": constraints.read_text(encoding="utf-8") if constraints else "",
    }
    stamp_file = wheel_dir / STAMP
    if force and wheel_dir.exists():
        shutil.rmtree(wheel_dir)
    wheel_dir.mkdir(parents=True, exist_ok=True)
    fresh = stamp_file.is_file() and json.loads(stamp_file.read_text()) == stamp
    if fresh and not missing(wheel_dir, reqs, target):
        echo(f"wheelhouse {wheel_dir} is up to date")
        return False
    stamp_file.unlink(missing_ok=True)
    pending = list(reqs)
    for _ in range(10):
        _download(wheel_dir, pending, target, constraints)
        pending = missing(wheel_dir, reqs, target)
        if not pending:
            break
        echo(f"marker-gated requirements for the image's Python: {', '.join(pending)}")
    else:
        raise KitError(f"wheelhouse still misses {', '.join(pending)} after 10 rounds")
    (wheel_dir / REQUIREMENTS).write_text("\n".join(reqs) + "\n")
    stamp_file.write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n")
    return True


def listing(wheel_dir: Path) -> list[str]:
    """File names and sizes: what the Python base image's key depends on."""
    return [f"{p.name}:{p.stat().st_size}" for p in sorted(wheel_dir.iterdir()) if p.is_file()]
