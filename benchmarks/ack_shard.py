"""`python -m benchmarks.ack_shard`: a real shard (uvicorn, the App) whose store takes every
store setting: ESE_REDIS_SENTINELS, ESE_REDIS_MASTER_NAME, ESE_ACK_REPLICAS, ESE_ACK_TIMEOUT_MS.

For benchmarks/ack_bench.py only, until the App builds its store with `Store.from_settings`
(issue 19, phase 2); then `python -m ese_server` does the same and this file can go.
"""

from __future__ import annotations

import sys

import ese_server.app
from ese_server.__main__ import main
from ese_server.store import Store


class AckApp(ese_server.app.App):
    """The shard's App, with the store built from all its settings."""

    async def startup(self) -> None:
        await super().startup()
        # Swap before closing: the monitor started above reads `self.store` on each round.
        old, self.store = self.store, Store.from_settings(self.settings)
        if old is not None:
            await old.close()


if __name__ == "__main__":
    ese_server.app.App = AckApp  # type: ignore[misc]  # serve() builds the App by this name
    sys.exit(main())
