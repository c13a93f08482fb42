"""Where things live in the repository checkout."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TOPOLOGY_FILE = REPO_ROOT / "topology.toml"
DOCKER_DIR = REPO_ROOT / "docker"
# Per-install secrets. It sits beside the compose files because both compose v1 and v2 read
# `.env` from the compose file's directory, so a hand-typed `docker compose -f ...` finds it too.
ENV_FILE = DOCKER_DIR / ".env"
BACKEND_COMPOSE = DOCKER_DIR / "ese-server.compose.yml"
FRONTEND_COMPOSE = DOCKER_DIR / "ese-client.compose.yml"
