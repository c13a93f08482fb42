"""The client's own IPv4 address, found without calling any outside service.

The original simulator asked a public web API for its address; here the address of the interface
that holds the default route is read from a UDP socket. Connecting a UDP socket sends no packet,
it only makes the kernel pick the route and the source address.
"""

from __future__ import annotations

import socket

# Any address outside loopback works for the route lookup; nothing is ever sent to it.
_ROUTE_PROBE = ("10.254.254.254", 1)


def own_ipv4() -> str:
    """This container's/host's IPv4 address; the hostname's, or 127.0.0.1 without a network."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(_ROUTE_PROBE)
            address = str(sock.getsockname()[0])
            if address and address != "0.0.0.0":
                return address
    except OSError:
        pass
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
