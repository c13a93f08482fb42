"""What every service of the Swarm stack shares: its network, its secrets and its deploy block.

swarm_stack.py builds the stack from these, swarm_redis.py the replicated Redis and its
Sentinels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ese.host import secrets

NETWORK = "backend"  # the overlay network; Docker names it <stack>_backend


@dataclass(frozen=True)
class StackSecret:
    """One Docker secret: its key in the stack file and the docker/.env entry with its value."""

    key: str
    env_key: str

    @property
    def name_var(self) -> str:
        """The variable that carries the secret's real (hashed) name into `docker stack deploy`."""
        return f"ESE_SECRET_{self.key.upper()}"

    @property
    def path(self) -> str:
        return f"/run/secrets/{self.key}"


REDIS_SECRET = StackSecret("redis_password", secrets.REDIS_PASSWORD)
INGEST_SECRET = StackSecret("ingest_token", secrets.INGEST_TOKEN)
ANALYTICS_SECRET = StackSecret("analytics_token", secrets.ANALYTICS_TOKEN)
GRAFANA_SECRET = StackSecret("grafana_admin_password", secrets.GRAFANA_PASSWORD)
SECRETS = (REDIS_SECRET, INGEST_SECRET, ANALYTICS_SECRET, GRAFANA_SECRET)


def digest(text: str) -> str:
    """First 12 hex digits of the SHA-256 of `text`: names immutable objects by content."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def secret_name(stack: str, secret: StackSecret, value: str) -> str:
    """The Docker secret name for this value, e.g. ese_redis_password_0123456789ab."""
    return f"{stack}_{secret.key}_{digest(value)}"


def secret_names(stack: str, values: Mapping[str, str]) -> dict[str, str]:
    """name variable -> Docker secret name, for every secret, from the docker/.env values."""
    return {s.name_var: secret_name(stack, s, values[s.env_key]) for s in SECRETS}


def secret_refs(*items: StackSecret) -> list[str]:
    """A service's `secrets:` list."""
    return [s.key for s in items]


def host_port(port: int) -> list[dict[str, Any]]:
    """`port` published in host mode (no routing mesh), on the node that runs the task."""
    return [{"target": port, "published": port, "protocol": "tcp", "mode": "host"}]


def deploy(
    replicas: int | str = 1,
    *,
    order: str = "stop-first",
    placement: list[str] | None = None,
) -> dict[str, Any]:
    """Replicas, restart policy and update order (start-first needs an unpublished port)."""
    # dnsrr: a service name resolves to its tasks' addresses, not to a virtual IP. The VIP
    # is IPVS, like the routing mesh, and does not answer on every engine (not on the CI VM);
    # every client here re-resolves on reconnect, and the ports are published in host mode.
    out: dict[str, Any] = {"replicas": replicas, "endpoint_mode": "dnsrr"}
    if placement:
        out["placement"] = {"constraints": placement}
    out["update_config"] = {
        "parallelism": 1,
        "delay": "2s",
        "order": order,
        "failure_action": "rollback",
        "monitor": "10s",
    }
    out["rollback_config"] = {"parallelism": 1, "order": order}
    out["restart_policy"] = {"condition": "any", "delay": "2s"}
    return out
