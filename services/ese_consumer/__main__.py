"""`ese-consumer [--port 8501]`: start the Streamlit dashboard (port also from ESE_CONSUMER_PORT).

Runs `streamlit run app.py` in-process with the settings a container needs: listen on all
interfaces, no browser, no usage stats, no file watcher (the code does not change in an image),
and no CORS/XSRF origin checks, because behind Docker's port mapping (or `--remote`) the browser's
origin is the host's address, not the container's. The page has no uploads or forms to protect.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

APP = Path(__file__).with_name("app.py")
# One source for the port: the entrypoint listens on it and the image's HEALTHCHECK probes it.
PORT_ENV = "ESE_CONSUMER_PORT"
DEFAULT_PORT = 8501


def streamlit_args(port: int, address: str) -> list[str]:
    """The `streamlit run` command line for the dashboard."""
    return [
        "run",
        str(APP),
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--server.enableCORS",
        "false",
        "--server.enableXsrfProtection",
        "false",
        "--browser.gatherUsageStats",
        "false",
        # Unexpected exceptions show a generic message in the page, never a traceback.
        "--client.showErrorDetails",
        "none",
        "--client.toolbarMode",
        "viewer",
    ]


def parse_args(
    argv: list[str] | None = None, env: Mapping[str, str] | None = None
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ese-consumer", description="Live Streamlit dashboard of the ese-server events."
    )
    parser.add_argument(
        "--port",
        type=int,
        help=f"HTTP port (env {PORT_ENV}, default {DEFAULT_PORT}; the image's healthcheck reads "
        f"{PORT_ENV}, so set the port there in containers)",
    )
    parser.add_argument(
        "--address", default="0.0.0.0", help="listen address (default 0.0.0.0, for containers)"
    )
    parser.add_argument(
        "--server-url", help="live-events URL pre-filled in the sidebar (env ESE_SERVER_URL)"
    )
    parser.add_argument(
        "--poll-seconds", type=int, help="poll interval in seconds (env ESE_POLL_SECONDS)"
    )
    args = parser.parse_args(argv)
    if args.port is None:
        raw = (os.environ if env is None else env).get(PORT_ENV, "").strip()
        try:
            args.port = int(raw) if raw else DEFAULT_PORT
        except ValueError:
            parser.error(f"{PORT_ENV}={raw!r} is not a TCP port number (1..65535)")
    if not 1 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a TCP port (1..65535)")
    if args.poll_seconds is not None and args.poll_seconds < 1:
        parser.error("--poll-seconds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `ese-consumer` console script."""
    args = parse_args(argv)
    # The page reads its settings from the environment; flags just override it.
    if args.server_url:
        os.environ["ESE_SERVER_URL"] = args.server_url
    if args.poll_seconds is not None:
        os.environ["ESE_POLL_SECONDS"] = str(args.poll_seconds)
    from streamlit.web import cli as streamlit_cli

    try:
        streamlit_cli.main(streamlit_args(args.port, args.address), prog_name="streamlit")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
