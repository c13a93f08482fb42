"""The cluster's bridge network, with a subnet of its own so that each node keeps its address
when it is killed and started again (a swarm manager's address must not change)."""

from __future__ import annotations

import importlib
from typing import Any

from ese.cluster import spec
from ese.errors import EseError
from ese.swarm import calls
from ese.topology import Topology


def _labels(topo: Topology) -> dict[str, str]:
    return {spec.CLUSTER_LABEL: topo.cluster.network}


def _ipam(net: Any) -> tuple[str, str]:
    config = ((net.attrs or {}).get("IPAM") or {}).get("Config") or [{}]
    return str(config[0].get("Subnet", "")), str(config[0].get("Gateway", ""))


def find(cli: Any, topo: Topology) -> Any | None:
    """The cluster network when it exists."""
    found = [
        n for n in cli.networks.list(names=[topo.cluster.network]) if n.name == topo.cluster.network
    ]
    return cli.networks.get(found[0].id) if found else None


def ensure(cli: Any, topo: Topology, remembered: str = "") -> spec.Addresses:
    """The network's address plan, creating the network first when it is missing.

    Its subnet is the `remembered` one of an earlier cluster whose nodes' volumes stay (the
    same addresses let their swarm carry on), else one the engine picks (it knows its other
    networks): a first network is made only to learn it, then made again with that subnet
    fixed, as fixed addresses require.
    """
    name = topo.cluster.network
    net = find(cli, topo)
    if net is not None:
        if (net.attrs.get("Labels") or {}).get(spec.CLUSTER_LABEL) != name:
            raise EseError(
                f"a network {name} exists that `invoke cluster.up` did not create",
                f"remove it (docker network rm {name}) or rename [cluster] network",
            )
        subnet, gateway = _ipam(net)
        return spec.addresses(subnet, gateway)
    if remembered:
        plan = spec.addresses(remembered, "")
        try:
            _create(cli, topo, plan)
            return plan
        except EseError:
            print(f"{remembered} is taken now: the swarm is formed again on another subnet")
    scout = calls.call(
        f"docker network create {name}  (to learn the subnet the engine picks)",
        lambda: cli.networks.create(name, driver="bridge", labels=_labels(topo)),
        hint=spec.AGAIN,
    )
    scout.reload()
    subnet, gateway = _ipam(scout)
    calls.call(f"docker network rm {name}", scout.remove, hint=spec.AGAIN)
    try:
        plan = spec.addresses(subnet, gateway)
    except ValueError as exc:
        raise EseError(
            f"the engine gave {name} {exc}", "configure larger default-address-pools"
        ) from None
    _create(cli, topo, plan)
    return plan


def _create(cli: Any, topo: Topology, plan: spec.Addresses) -> None:
    name = topo.cluster.network
    types = importlib.import_module("docker.types")
    pool = types.IPAMPool(subnet=plan.subnet, iprange=plan.ip_range, gateway=plan.gateway)
    ipam = types.IPAMConfig(pool_configs=[pool])
    shown = (
        f"docker network create --subnet {plan.subnet} --ip-range {plan.ip_range} "
        f"--gateway {plan.gateway} --label {spec.CLUSTER_LABEL}={name} {name}"
    )
    calls.call(
        shown,
        lambda: cli.networks.create(name, driver="bridge", ipam=ipam, labels=_labels(topo)),
        hint=spec.AGAIN,
    )


def remove(cli: Any, topo: Topology) -> bool:
    """Remove the network; False when there was none."""
    net = find(cli, topo)
    if net is None:
        return False
    calls.call(f"docker network rm {net.name}", net.remove, hint=spec.AGAIN)
    return True
