"""Is a host port free, and if not, which process holds it (psutil)."""

from __future__ import annotations

import errno
import os
import socket
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on right now (for tests and benchmarks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def is_free(port: int, bind: str = "0.0.0.0") -> bool:
    """True when a listener could bind `bind:port` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # A port whose old connections sit in TIME_WAIT is fine for Docker, a listener is not.
        # On POSIX only SO_REUSEADDR makes bind() tell the two apart (without it, TIME_WAIT
        # fails the bind for a minute after `invoke down`). On Windows it would let the bind
        # succeed over a live listener, and TIME_WAIT does not block a bind there anyway.
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind, port))
        except OSError as exc:
            # EADDRNOTAVAIL: the bind address is not on this machine, so nothing collides.
            return exc.errno == errno.EADDRNOTAVAIL
    return True


def holder(port: int, ps: Any = None) -> str:
    """'name (pid N)' of the process listening on `port`, or why it is unknown."""
    if ps is None:
        import psutil as ps
    try:
        conns = ps.net_connections(kind="inet")
    except ps.AccessDenied:
        return "an unknown process (run as administrator/root to see which)"
    for conn in conns:
        laddr = conn.laddr
        if laddr and laddr.port == port and conn.status == ps.CONN_LISTEN:
            if conn.pid is None:
                return "an unknown process (run as administrator/root to see which)"
            try:
                return f"{ps.Process(conn.pid).name()} (pid {conn.pid})"
            except (ps.NoSuchProcess, ps.AccessDenied):
                return f"pid {conn.pid}"
    return "an unknown process"


def busy_message(name: str, port: int, who: str) -> str:
    return f"port {port} for {name} is busy: held by {who}"
