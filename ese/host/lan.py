"""This machine's LAN IPv4 address, the one other machines on the network can reach.

The original README had users pick it out of `ifconfig | grep netmask`; here it is the address
of an interface that has a broadcast address (so: a real LAN segment, not a point-to-point VPN),
preferring the interface of the default route, and never loopback or a Docker bridge.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

from ese.errors import EseError

# This machine as its containers reach it: Docker Desktop defines the name, and a Linux engine
# maps it to the host's gateway for a container started with it in its extra hosts.
DOCKER_HOST_NAME = "host.docker.internal"

# Interfaces that are never "the LAN": loopback, container bridges and veths, VM host-only
# networks, and tunnels (VPNs are point-to-point even when they do carry a broadcast address).
_SKIP_PREFIXES = (
    "lo",
    "docker",
    "br-",
    "veth",
    "virbr",
    "vboxnet",
    "vmnet",
    "cni",
    "flannel",
    "cali",
    "kube",
    "tun",
    "tap",
    "wg",
    "utun",
    "ppp",
    "ipsec",
    "gif",
    "stf",
    "awdl",
    "llw",
    "zt",
    "tailscale",
)


@dataclass(frozen=True)
class Candidate:
    interface: str
    address: str
    default_route: bool


# Windows names adapters by GUID in netifaces; their friendly names (from psutil) tell the
# virtual ones apart: Hyper-V/WSL/Docker Desktop switches are "vEthernet (...)", and VM and
# VPN software names its adapters after itself.
_SKIP_WINDOWS_WORDS = (
    "vethernet",
    "hyper-v",
    "wsl",
    "docker",
    "virtualbox",
    "vmware",
    "loopback",
    "pseudo",
    "tailscale",
    "zerotier",
    "wireguard",
    "openvpn",
    "tap-windows",
    "wintun",
    "npcap",
)


def _skipped(name: str) -> bool:
    lowered = name.lower()
    return lowered.startswith(_SKIP_PREFIXES) or any(w in lowered for w in _SKIP_WINDOWS_WORDS)


def friendly_names(ps: Any = None) -> dict[str, str]:
    """IPv4 address -> interface name as the OS shows it (psutil; "" on failure).

    On Windows netifaces names interfaces by GUID, while psutil gives "Ethernet" or
    "vEthernet (WSL)"; joining the two by address lets the virtual adapters be skipped.
    """
    try:
        if ps is None:
            import psutil as ps
        names: dict[str, str] = {}
        for name, addrs in ps.net_if_addrs().items():
            for addr in addrs:
                if addr.family == socket.AF_INET and addr.address:
                    names.setdefault(addr.address, name)
        return names
    except Exception:  # best effort: without names the GUID rules still apply
        return {}


def candidates(ni: Any, names: dict[str, str] | None = None) -> list[Candidate]:
    """Interfaces with a usable IPv4 + broadcast address, default-route interface first.

    `names` maps an address to the OS's interface name, for interfaces netifaces only knows
    by GUID (Windows).
    """
    names = names or {}
    default = ni.gateways().get("default", {}).get(ni.AF_INET)
    default_iface = default[1] if default else None
    found: list[Candidate] = []
    for name in ni.interfaces():
        if _skipped(name):
            continue
        for entry in ni.ifaddresses(name).get(ni.AF_INET, []):
            addr, broadcast = entry.get("addr"), entry.get("broadcast")
            if not addr or not broadcast:
                continue  # no broadcast: point-to-point link (VPN) or unconfigured
            if _skipped(names.get(addr, "")):
                continue  # e.g. a GUID that psutil calls "vEthernet (WSL)"
            ip = ipaddress.IPv4Address(addr)
            if ip.is_loopback or ip.is_link_local or ip.is_unspecified:
                continue
            found.append(Candidate(name, addr, name == default_iface))
    # Stable order: default route first, then private (RFC 1918) addresses, then the rest.
    found.sort(key=lambda c: (not c.default_route, not ipaddress.IPv4Address(c.address).is_private))
    return found


def lan_ipv4(ni: Any = None, names: dict[str, str] | None = None) -> str:
    """The LAN IPv4 address, or an EseError that says what to do instead."""
    if ni is None:
        import netifaces as ni  # netifaces-plus provides this module

        names = friendly_names() if names is None else names
    found = candidates(ni, names)
    if not found:
        raise EseError(
            "no LAN IPv4 address found (no interface with a broadcast address other than "
            "loopback, Docker bridges and VPN tunnels)",
            "connect this machine to a network, or pass --server-url http://<host>:2003/events",
        )
    return found[0].address
