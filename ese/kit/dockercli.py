"""The docker CLI runner the smoke tests and the Python probe still use (the rest is SDK)."""

from __future__ import annotations

import subprocess

from ese.kit import KitError
from ese.kit.output import Output


def docker(
    *args: str, capture: bool = False, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run `docker ARGS`; echo it unless the output is captured or the kit runs quietly."""
    keep = capture or Output.quiet
    if not keep:
        print("+ docker " + " ".join(args), flush=True)
    proc = subprocess.run(["docker", *args], capture_output=keep, text=True, check=False)
    if check and proc.returncode != 0:
        lines = ((proc.stdout or "") + (proc.stderr or "")).strip().splitlines()
        detail = "\n".join(lines[-15:] if Output.quiet else lines[-1:])
        raise KitError(f"`docker {' '.join(args[:3])} ...` failed ({proc.returncode}) {detail}")
    return proc
