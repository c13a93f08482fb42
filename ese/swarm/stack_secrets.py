"""The stack's Docker secrets, created from docker/.env under names that hash their values.

Swarm secrets are immutable: a changed value is a new secret (a new name), and the earlier
ones are removed once no task uses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ese.render import swarm_stack
from ese.swarm import state
from ese.topology import Topology

SECRET_LABEL = "org.ese.secret"


def ensure_secrets(
    cli: Any, topo: Topology, values: Mapping[str, str], env_shown: str
) -> dict[str, str]:
    """Create the missing Docker secrets from `values` (docker/.env, shown as `env_shown`);
    name variable -> secret name."""
    stack_name = topo.swarm.stack
    names = swarm_stack.secret_names(stack_name, values)
    existing = {s.name for s in cli.secrets.list(filters=state.stack_filter(stack_name))}
    for secret in swarm_stack.SECRETS:
        name = names[secret.name_var]
        if name in existing:
            continue
        source = f"{secret.env_key} from {env_shown} on stdin"
        print(
            f"> docker secret create --label {state.STACK_LABEL}={stack_name} {name} - ({source})"
        )
        labels = {state.STACK_LABEL: stack_name, SECRET_LABEL: secret.key}
        cli.secrets.create(name=name, data=values[secret.env_key].encode("utf-8"), labels=labels)
    return names


def prune_secrets(cli: Any, topo: Topology, keep: set[str]) -> None:
    """Remove this stack's secrets of earlier values (best effort: one in use stays)."""
    for secret in cli.secrets.list(filters=state.stack_filter(topo.swarm.stack)):
        if secret.name not in keep:
            try:
                secret.remove()
                print(f"removed secret {secret.name} (an earlier value)")
            except Exception:  # still referenced by a task that is stopping; down removes it
                pass
