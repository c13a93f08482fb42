"""What every service image runs (services/Dockerfile): the service, and its health probe.

One Dockerfile builds all three images; `ESE_SERVICE` (a build argument) names the command. The
entry point replaces itself with that command (`exec`, so the service is PID 1 and gets
`docker stop`'s SIGTERM), passing the container's arguments on. The health probe knows what
"healthy" means for each service.

    python -m ese_settings.image run [ARGS...]
    python -m ese_settings.image health
"""

from __future__ import annotations

import importlib
import os
import sys
import urllib.request
from collections.abc import Mapping, Sequence

SERVICES = ("ese-server", "ese-client", "ese-consumer")


def probe_url(service: str, environ: Mapping[str, str]) -> str | None:
    """The URL whose 200 means healthy, or None for a service with no port (the client)."""
    if service == "ese-server":
        # GET / never calls Redis: this checks the process; Redis is in the body and metrics.
        return f"http://127.0.0.1:{environ.get('SERVER_PORT', '').strip() or '2001'}/"
    if service == "ese-consumer":
        port = environ.get("ESE_CONSUMER_PORT", "").strip() or "8501"
        return f"http://127.0.0.1:{port}/_stcore/health"
    return None


def health(environ: Mapping[str, str]) -> int:
    """0 when the service of this image is healthy, else 1 (Docker's HEALTHCHECK contract)."""
    service = environ.get("ESE_SERVICE", "")
    url = probe_url(service, environ)
    try:
        if url is None:  # a batch job: healthy means its imports work
            importlib.import_module("ese_client.runner")
            return 0
        with urllib.request.urlopen(url, timeout=4) as resp:
            return 0 if resp.status == 200 else 1
    except Exception as exc:  # any failure is "unhealthy", said in one line
        print(f"{service or 'ese service'} unhealthy: {exc}", file=sys.stderr)
        return 1


def run(args: Sequence[str], environ: Mapping[str, str]) -> int:
    """Become the image's service (exec); an unknown ESE_SERVICE is a one-line error."""
    service = environ.get("ESE_SERVICE", "")
    if service not in SERVICES:
        known = ", ".join(SERVICES)
        print(f"ESE_SERVICE={service!r} is not a service; use one of {known}", file=sys.stderr)
        return 2
    try:
        os.execvp(service, [service, *args])
    except FileNotFoundError:
        hint = f"build it with EXTRA={service.removeprefix('ese-')}"
        print(f"{service} is not installed in this image; {hint}", file=sys.stderr)
        return 2
    return 0  # not reached: exec replaced this process


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["health"]:
        return health(os.environ)
    if argv[:1] == ["run"]:
        return run(argv[1:], os.environ)
    print("usage: python -m ese_settings.image run [ARGS...] | health", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
