"""Offline image kit: builds the demo's images locally, with no image registry.

Linux only (debootstrap, then the engine's image import), run as root. Entry point:
scripts/offline_images.py. The engine is reached through the Docker SDK only
(ese/kit/image_builds.py).
"""

from __future__ import annotations

from pathlib import Path

KIT_DIR = Path(__file__).resolve().parent
IMAGES_DIR = KIT_DIR / "images"
SMOKE_DIR = KIT_DIR / "smoke"
REPO_ROOT = KIT_DIR.parent.parent


class KitError(Exception):
    """A failure with a one-line message and a hint; the CLI prints it without a traceback."""
