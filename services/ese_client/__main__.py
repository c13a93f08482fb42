"""Command line of ese-client: parse settings, run, print one summary line, set the exit code.

Exit codes: 0 all events acknowledged, 1 some events given up on, 2 invalid settings.
With `--web` it serves the click-through page instead (ese_client.web) until SIGINT/SIGTERM:
0 then, 2 for invalid settings or an address it cannot listen on.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Mapping, Sequence

from ese_client.config import ConfigError, load_settings
from ese_client.runner import Runner, Summary


def _install_signal_handlers(runner: Runner) -> None:
    """First SIGINT/SIGTERM: stop and flush; a second one: abort at once."""
    loop = asyncio.get_running_loop()
    seen = {"count": 0}

    def on_signal() -> None:
        seen["count"] += 1
        if seen["count"] == 1:
            print("ese-client: stopping, flushing buffered events", file=sys.stderr, flush=True)
            runner.stop()
        else:
            runner.abort()

    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, on_signal)
        except (NotImplementedError, RuntimeError):
            # Windows' event loops have no add_signal_handler; fall back to the plain handler,
            # which runs between bytecodes of the main thread (the loop's thread).
            signal.signal(signum, lambda *_: loop.call_soon_threadsafe(on_signal))


async def _amain(runner: Runner) -> Summary:
    _install_signal_handlers(runner)
    return await runner.run()


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Entry point of the `ese-client` console script; returns the exit code."""
    try:
        settings = load_settings(
            sys.argv[1:] if argv is None else argv, os.environ if env is None else env
        )
    except ConfigError as exc:
        print(f"ese-client: error: {exc}", file=sys.stderr)
        return 2
    if settings.web:
        from ese_client import web  # the page's server; a simulator run never needs it

        return web.run(settings, settings.web_host, settings.web_port)
    runner = Runner(settings)
    summary = asyncio.run(_amain(runner))
    print(summary.line(), flush=True)
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
