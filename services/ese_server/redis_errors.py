"""The errors of the Redis client, and what a caller may conclude from each.

- `RedisNotSent`: the command certainly did not run (no connection, the handshake failed, the
  connection is stalled, or the node refused it before running it).
- `RedisNoReply`: the command was written but no reply came; Redis may still run it.
- `RedisReplyError`: Redis answered with an error reply. The replies that say the node cannot
  take the command as a master are also `RedisNotSent` (nothing ran): `RedisNotMaster`
  (READONLY, LOADING, MASTERDOWN, or a replica found on connect) and `RedisNoReplicas`
  (NOREPLICAS: too few good replicas for `min-replicas-to-write`). `RedisOutOfMemory` (OOM)
  did not run either; callers handle it apart (the store is full, Redis is up).
"""

from __future__ import annotations


class RedisError(Exception):
    """Base of every error raised by the client."""


class RedisUnavailable(RedisError):
    """No usable answer from Redis (see the two subclasses for what that means)."""


class RedisNotSent(RedisUnavailable):
    """The command never reached Redis, or Redis refused it before running it: it did not run."""


class RedisNoReply(RedisUnavailable):
    """The command was sent but got no reply: it may or may not have run."""


class RedisReplyError(RedisError):
    """Redis answered with an error reply."""


class RedisOutOfMemory(RedisReplyError):
    """Redis refused a write because it reached `maxmemory` (policy noeviction): nothing ran."""


class RedisNotMaster(RedisNotSent, RedisReplyError):
    """The node is not a writable master (any more, or not yet): nothing ran.

    The client stops sending to that connection and finds the master again (through the
    Sentinels when it has them).
    """


class RedisNoReplicas(RedisNotSent, RedisReplyError):
    """The master refused a write: fewer good replicas than `min-replicas-to-write`."""


# Error-reply prefixes of a node that cannot run commands as the master. WAIT on a replica
# answers a plain ERR, so it is matched by its text.
NOT_MASTER_PREFIXES = (
    "READONLY ",
    "LOADING ",
    "MASTERDOWN ",
    "ERR WAIT cannot be used with replica",
)


def reply_error(text: str) -> RedisReplyError:
    """The exception for one error reply of Redis."""
    if text.startswith("OOM "):
        return RedisOutOfMemory(text)
    if text.startswith("NOREPLICAS "):
        return RedisNoReplicas(text)
    if text.startswith(NOT_MASTER_PREFIXES):
        return RedisNotMaster(text)
    return RedisReplyError(text)
