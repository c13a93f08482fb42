"""Find the Redis master through Redis Sentinel, as the Sentinel client spec says.

https://redis.io/docs/latest/develop/reference/sentinel-clients/: try the Sentinels one after
the other, each with a short timeout; ask `SENTINEL get-master-addr-by-name <name>`; a Sentinel
that does not know the name (null reply), errs or does not answer is skipped; the first one that
names the master moves to the front of the list, so the next ask goes to it first. When none
names a master, the caller gets an error that says what each Sentinel answered.

The client (redis_client.py) does the rest of the protocol: ROLE on connect, and asking again on
a lost connection, READONLY, LOADING, NOREPLICAS, and every second.

WHY a fresh connection per ask: asks are rare (a connect, and one check a second), and a fresh
connection cannot be left stale by a Sentinel that restarted or moved.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from typing import Any

import hiredis

from ese_server.redis_errors import RedisNotSent

SENTINEL_PORT = 26379
SENTINEL_TIMEOUT = 0.5  # seconds per Sentinel: "a few hundred milliseconds", says the spec

_ADDRESS_RE = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^\s:\[\]]+))(?::(?P<port>\d+))?")


def parse_addresses(text: str) -> tuple[tuple[str, int], ...]:
    """`host:port` entries separated by spaces or commas (port 26379 when left out).

    Raises ValueError naming the first entry that is not an address.
    """
    out: list[tuple[str, int]] = []
    for entry in re.split(r"[,\s]+", text.strip()):
        if not entry:
            continue
        match = _ADDRESS_RE.fullmatch(entry)
        port = int(match["port"]) if match and match["port"] else SENTINEL_PORT
        if match is None or not 1 <= port <= 65535:
            raise ValueError(entry)
        out.append((match["v6"] or match["host"], port))
    return tuple(out)


class Sentinels:
    """The Sentinels of one master name; `master_address()` asks them where the master is."""

    def __init__(
        self,
        addresses: Sequence[tuple[str, int]],
        master_name: str,
        timeout: float = SENTINEL_TIMEOUT,
    ) -> None:
        if not addresses:
            raise ValueError("at least one Sentinel address is needed")
        self.addresses = list(addresses)
        self.master_name = master_name
        self.timeout = timeout
        self._known: tuple[float, tuple[str, int]] | None = None  # (when, last answer)

    async def master_address(self, max_age: float = 0.0) -> tuple[str, int]:
        """(host, port) of the master as the first Sentinel that knows it says; RedisNotSent
        when none does (nothing can be sent: there is no master to send it to).

        `max_age` > 0 accepts an answer that old (the periodic checks of several clients
        sharing these Sentinels then ask once); connecting always asks afresh.
        """
        now = time.monotonic()
        if self._known is not None and now - self._known[0] <= max_age:
            return self._known[1]
        failures: list[str] = []
        for index, (host, port) in enumerate(list(self.addresses)):
            try:
                reply = await asyncio.wait_for(self._ask(host, port), self.timeout)
            except (OSError, asyncio.TimeoutError, hiredis.ProtocolError) as exc:
                failures.append(f"{host}:{port} {type(exc).__name__} {exc}".rstrip())
                continue
            if isinstance(reply, hiredis.ReplyError):
                failures.append(f"{host}:{port} answered {reply}")
            elif not reply:
                failures.append(f"{host}:{port} does not know {self.master_name!r}")
            else:
                self.addresses.insert(0, self.addresses.pop(index))
                address = reply[0].decode(), int(reply[1])
                self._known = (time.monotonic(), address)
                return address
        raise RedisNotSent(
            f"no Sentinel names a master for {self.master_name!r}: {'; '.join(failures)}"
        )

    async def _ask(self, host: str, port: int) -> Any:
        command: tuple[Any, ...] = ("SENTINEL", "get-master-addr-by-name", self.master_name)
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(hiredis.pack_command(command))
            parser = hiredis.Reader()
            for _ in range(64):  # bounded: the reply is two short strings
                data = await reader.read(4096)
                if not data:
                    raise ConnectionResetError("closed without an answer")
                parser.feed(data)
                reply = parser.gets()
                if reply is not False:
                    return reply
            raise hiredis.ProtocolError("reply too long for a master address")
        finally:
            writer.close()
