"""redis-py's asyncio client behind the interface of `RedisClient`, for benchmarks only.

    python benchmarks/redis_py_client.py [ese-server flags]   # a shard on redis-py's client

Run as a script, it is `ese-server` with this client injected in place of the project's own, so
`benchmarks/server_bench.py --redis-client redis-py` can measure what the own client is worth.
It lives here, not in the server: redis-py is a development dependency only (not in the server
image), and this adapter has none of `RedisClient`'s fault semantics (no `late` replies, no
stall watchdog; a lost connection is reported as "no reply", the cautious answer).
"""

from __future__ import annotations

import sys
from typing import Any

import redis.asyncio
import redis.exceptions

from ese_server.__main__ import main
from ese_server.redis_client import (
    Late,
    RedisNoReply,
    RedisNotSent,
    RedisOutOfMemory,
    RedisReplyError,
)


class RedisPyClient:
    """`execute` and `close` of `RedisClient`, on a redis-py connection pool."""

    def __init__(self, url: str, connect_timeout: float = 2.0, command_timeout: float = 5.0):
        self._redis = redis.asyncio.Redis.from_url(
            url, socket_connect_timeout=connect_timeout, socket_timeout=command_timeout
        )
        # Raw replies, as hiredis gives them to RedisClient (no per-command reshaping).
        self._redis.response_callbacks.clear()

    async def execute(self, *args: Any, late: Late | None = None) -> Any:
        """Run one command; raise the same errors as `RedisClient.execute`."""
        try:
            return await self._redis.execute_command(*args)
        except redis.exceptions.NoScriptError as exc:
            raise RedisReplyError(f"NOSCRIPT {exc}") from None
        except redis.exceptions.OutOfMemoryError as exc:
            raise RedisOutOfMemory(f"OOM {exc}") from None
        except redis.exceptions.ResponseError as exc:
            raise RedisReplyError(str(exc)) from None
        except redis.exceptions.AuthenticationError as exc:
            raise RedisNotSent(f"Redis refused the handshake: {exc}") from None
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            raise RedisNoReply(f"no reply from Redis: {exc}") from None

    async def close(self) -> None:
        """Close the pool's connections."""
        await self._redis.aclose()


if __name__ == "__main__":
    sys.exit(main(connect=RedisPyClient))
