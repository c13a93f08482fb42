#!/usr/bin/env python3
"""Build the ESE demo's images offline: no image registry needed (Linux, as root).

Builds a Debian bookworm base (debootstrap + the engine's import), stand-ins for the Redis, HAProxy,
Prometheus, Alertmanager and redis_exporter images from Debian's packages, a Python base
carrying a wheelhouse, and the fake Grafana; then prints the `export ESE_..._IMAGE=...` lines
that make the compose files and the service builds use them. Unchanged images are reused
(each carries a digest of its inputs).

    python scripts/offline_images.py                    # build what is missing or stale
    python scripts/offline_images.py --smoke            # ... and run each image briefly
    python scripts/offline_images.py --only python --force
    python scripts/offline_images.py --env-out artifacts/offline.env && . artifacts/offline.env
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from ese.kit import KitError
from ese.kit.build import DEFAULT_EXTRAS, Options, build_all
from ese.kit.catalog import BY_NAME, IMAGES, env_lines, env_overrides, with_parents
from ese.kit.debian import Mirrors, host_mirrors
from ese.kit.image_builds import image_id, require_engine
from ese.kit.smoke import run as smoke


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="offline_images.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    names = ", ".join(image.name for image in IMAGES)
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"build only these images (repeatable or comma-separated; {names}); the images "
        "they are built from are built too when missing or stale",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="rebuild the selected images without the layer cache (fresh apt packages, wheels)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="after building, run each selected image briefly"
    )
    parser.add_argument("--env-out", type=Path, metavar="FILE", help="write the export lines here")
    parser.add_argument(
        "--wheelhouse",
        type=Path,
        default=Options().wheel_dir,
        metavar="DIR",
        help="wheel cache for the Python base (default: %(default)s, git-ignored)",
    )
    parser.add_argument(
        "--extras",
        default=",".join(DEFAULT_EXTRAS),
        help="pyproject extras whose dependencies go in the wheelhouse (default: %(default)s)",
    )
    parser.add_argument(
        "--mirror",
        metavar="URL",
        help="Debian mirror for the base image (default: the one this host's apt uses)",
    )
    return parser


def _selected(only: list[str]) -> list[str]:
    names = [name.strip() for item in only for name in item.split(",") if name.strip()]
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        known = ", ".join(BY_NAME)
        raise KitError(f"unknown image {', '.join(unknown)}; choose from {known}")
    return names or list(BY_NAME)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    start = time.monotonic()
    try:
        names = _selected(args.only)
        require_engine()
        mirrors = host_mirrors()
        if args.mirror:
            mirrors = Mirrors(args.mirror.rstrip("/"), mirrors.security)
        opts = Options(
            forced=set(names) if args.force else set(),
            wheel_dir=args.wheelhouse.resolve(),
            extras=tuple(e.strip() for e in args.extras.split(",") if e.strip()),
            mirrors=mirrors,
        )
        # A smoke test may run another kit image beside its own (the exporter needs a Redis).
        uses = [u for n in names for u in BY_NAME[n].smoke_uses] if args.smoke else []
        images = with_parents([*names, *uses])
        result = build_all(images, opts)
        checks = smoke(names, opts.extras) if args.smoke else []
    except KitError as exc:
        print(f"offline_images: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("offline_images: interrupted", file=sys.stderr)
        return 130

    width = max(len(image.tag) for image in images)
    print(f"\n{'image':<{width}} built   seconds")
    for image in images:
        state = "built" if result.built[image.name] else "cached"
        print(f"{image.tag:<{width}} {state:<7} {result.seconds[image.name]:7.1f}")
    print(f"total {time.monotonic() - start:.1f} s")
    for check in checks:
        print(f"smoke {'ok    ' if check.ok else 'FAILED'} {check.image}: {check.detail}")

    # Every kit image present in the engine, not only those built now.
    lines = env_lines(env_overrides([i for i in IMAGES if image_id(i.tag) is not None]))
    if args.env_out:
        args.env_out.parent.mkdir(parents=True, exist_ok=True)
        args.env_out.write_text("\n".join(lines) + "\n")
        print(f"\nwrote {args.env_out}; load it with: . {args.env_out}")
    print("\n# use the offline images (bash/zsh):")
    print("\n".join(lines))
    return 2 if any(not check.ok for check in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
