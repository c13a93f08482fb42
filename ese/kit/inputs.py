"""What an image is built from: the digest of its inputs, and the label that carries it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

# Each kit image carries the digest of its inputs, so an unchanged image is not rebuilt.
KEY_LABEL = "org.ese-offline.key"


def tree_digest(paths: Sequence[Path], extra: Sequence[str] = ()) -> str:
    """sha256 over files (relative name, mode, content) and extra strings: an image's inputs."""
    digest = hashlib.sha256()
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            rel = path.relative_to(root.parent).as_posix()
            digest.update(f"{rel}\0{path.stat().st_mode & 0o777:o}\0".encode())
            digest.update(path.read_bytes())
    for item in extra:
        digest.update(f"{item}\0".encode())
    return digest.hexdigest()[:32]
