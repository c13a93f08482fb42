"""Lua scripts run by EVALSHA on a Redis client, loaded again when Redis has lost them.

A script is sent by its SHA1 only; after a Redis restart (or SCRIPT FLUSH) Redis answers
NOSCRIPT, and the script is loaded and run once more. That retry cannot double-write: NOSCRIPT
means the script did not run.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import hiredis

from ese_server.redis_client import Commands
from ese_server.redis_errors import RedisReplyError
from ese_server.resp_connection import Late

__all__ = ["Script"]


Run = Callable[..., Awaitable[Any]]


class Script:
    """A Lua script called by EVALSHA, loaded again after a Redis restart (NOSCRIPT)."""

    def __init__(self, client: Commands, source: str) -> None:
        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, keys: list[str], args: list[Any], late: Late | None = None) -> Any:
        """Run the script; `late` as in `RedisClient.execute` (error replies are not passed)."""
        return await self._run(self.client.execute, keys, args, late)

    async def replicated(
        self,
        keys: list[str],
        args: list[Any],
        replicas: int,
        timeout_ms: int,
        late: Late | None = None,
    ) -> tuple[Any, int]:
        """Run the script and WAIT for `replicas`: (reply, replicas that confirmed)."""
        run = functools.partial(
            self.client.execute_replicated, replicas=replicas, timeout_ms=timeout_ms
        )
        result: tuple[Any, int] = await self._run(run, keys, args, late)
        return result

    async def _run(self, run: Run, keys: list[str], args: list[Any], late: Late | None) -> Any:
        if late is not None:
            late = _ok_replies_only(late)
        try:
            return await run("EVALSHA", self.sha, len(keys), *keys, *args, late=late)
        except RedisReplyError as exc:
            # NOSCRIPT means the script did not run, so running it again cannot double-write.
            if not str(exc).startswith("NOSCRIPT"):
                raise
        await self.client.execute("SCRIPT", "LOAD", self.source)
        return await run("EVALSHA", self.sha, len(keys), *keys, *args, late=late)


def _ok_replies_only(late: Late) -> Late:
    def call(reply: Any) -> None:
        if not isinstance(reply, hiredis.ReplyError):
            late(reply)

    return call
