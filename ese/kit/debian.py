"""The Debian base image: `debootstrap --variant=minbase`, its tarball streamed to an import."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ese.kit import IMAGES_DIR, KitError
from ese.kit.image_builds import drop_replaced, image_id, import_rootfs
from ese.kit.inputs import KEY_LABEL, tree_digest
from ese.kit.output import echo, last_lines

SUITE = "bookworm"
# In the base, so every stand-in has `wget` for its healthcheck as the alpine/busybox originals
# do, without each installing it again.
INCLUDE = ("busybox",)
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY = "http://deb.debian.org/debian-security"
OVERLAY = IMAGES_DIR / "debian" / "rootfs"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Mirrors:
    """Where the image's packages come from: the main archive and the security archive."""

    main: str
    security: str


def _stanzas_deb822(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for raw in [*text.splitlines(), ""]:
        if raw.lstrip().startswith("#"):
            continue  # a comment line does not end a stanza; only a blank line does
        line = raw.rstrip()
        if not line.strip():
            if current:
                stanzas.append(current)
            current = {}
        elif ":" in line and not line[0].isspace():
            field, value = line.split(":", 1)
            current[field.strip().lower()] = value.strip()
    return stanzas


def _entries(sources_dir: Path) -> list[tuple[str, list[str]]]:
    """(URI, suites) of every `deb` source configured on this host, in apt's file order."""
    entries: list[tuple[str, list[str]]] = []
    files = [sources_dir / "sources.list", *sorted((sources_dir / "sources.list.d").glob("*"))]
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in _stanzas_deb822(text):
                if "deb" in stanza.get("types", "").split():
                    suites = stanza.get("suites", "").split()
                    entries += [(uri, suites) for uri in stanza.get("uris", "").split()]
        elif path.name == "sources.list" or path.suffix == ".list":
            for raw in text.splitlines():
                words = [w for w in raw.split("#", 1)[0].split() if not w.startswith("[")]
                if len(words) >= 3 and words[0] == "deb":
                    entries.append((words[1], [words[2]]))
    return entries


def host_mirrors(sources_dir: Path = Path("/etc/apt")) -> Mirrors:
    """The mirrors this host's apt uses for bookworm (a person's local mirror, a proxy...)."""
    main = security = None
    for uri, suites in _entries(sources_dir):
        if main is None and SUITE in suites:
            main = uri.rstrip("/")
        if security is None and f"{SUITE}-security" in suites:
            security = uri.rstrip("/")
    return Mirrors(main or DEFAULT_MIRROR, security or DEFAULT_SECURITY)


def sources_list(mirrors: Mirrors) -> str:
    """The image's apt sources: bookworm, its updates and its security fixes."""
    return (
        f"deb {mirrors.main} {SUITE} main\n"
        f"deb {mirrors.main} {SUITE}-updates main\n"
        f"deb {mirrors.security} {SUITE}-security main\n"
    )


def key(mirrors: Mirrors) -> str:
    """Inputs of the base image: the overlay files, the suite and the mirrors."""
    return tree_digest([OVERLAY], [SUITE, mirrors.main, mirrors.security, *INCLUDE])


def _unmount_below(root: Path) -> None:
    # A failed debootstrap can leave /proc or /sys mounted inside the target: never delete
    # through a mount.
    mounts = Path("/proc/mounts").read_text().splitlines()
    points = [line.split()[1] for line in mounts if len(line.split()) > 1]
    for point in sorted((p for p in points if p.startswith(f"{root}/")), reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


def build(tag: str, mirrors: Mirrors, image_key: str) -> None:
    """debootstrap a minbase bookworm, add the overlay and import it as `tag`."""
    if shutil.which("debootstrap") is None:
        raise KitError("debootstrap not found; install it: apt-get install -y debootstrap")
    if os.geteuid() != 0:
        raise KitError("debootstrap needs root; run the kit as root (or with sudo)")
    work = Path(tempfile.mkdtemp(prefix="ese-debootstrap-", dir="/var/tmp"))
    rootfs = work / "rootfs"
    try:
        echo(f"debootstrap {SUITE} from {mirrors.main} (about 30 s)")
        include = f"--include={','.join(INCLUDE)}"
        cmd = ["debootstrap", "--variant=minbase", include, SUITE, str(rootfs), mirrors.main]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = "\n".join(last_lines(proc.stdout + proc.stderr))
            raise KitError(f"debootstrap failed ({proc.returncode}); last lines:\n{tail}")
        shutil.copytree(OVERLAY, rootfs, dirs_exist_ok=True, symlinks=True)
        (rootfs / "usr/local/bin/wget").symlink_to("/bin/busybox")
        (rootfs / "etc/apt/sources.list").write_text(sources_list(mirrors))
        for junk in ("var/lib/apt/lists", "var/cache/apt/archives", "usr/share/doc"):
            for child in (rootfs / junk).glob("*"):
                if child.is_file() or child.is_symlink():
                    child.unlink()
                elif child.name != "partial":
                    shutil.rmtree(child)
        _import(rootfs, tag, image_key)
    finally:
        _unmount_below(work)
        shutil.rmtree(work, ignore_errors=True)


def _import(rootfs: Path, tag: str, image_key: str) -> None:
    # As `docker import --change`: debootstrap leaves no environment, command or label.
    changes = [f"ENV PATH={PATH}", "ENV LANG=C.UTF-8", 'CMD ["bash"]']
    changes.append(f"LABEL {KEY_LABEL}={image_key}")
    previous = image_id(tag)
    drop_replaced(previous, import_rootfs(rootfs, tag, changes))
