"""The Swarm flows wired to temporary files and fakes of what lies outside the engine."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ese.flows import provisioning, shared
from ese.host import lan, ports, secrets
from ese.swarm import membership
from ese.swarm import stack_images as images


@pytest.fixture
def wired(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    monkeypatch.setattr(secrets, "ENV_FILE", env_file)
    monkeypatch.setattr(membership, "MARKER", tmp_path / ".swarm-created")
    monkeypatch.setattr(shared, "render_if_stale", lambda topo: [])
    monkeypatch.setattr(
        images,
        "resolve",
        lambda cli, topo, build, mode: {
            topo.images[k].env: topo.images[k].default for k in images.STACK_IMAGES
        },
    )
    monkeypatch.setattr(lan, "lan_ipv4", lambda ni=None: "192.168.1.23")
    monkeypatch.setattr(ports, "is_free", lambda port, bind="0.0.0.0": True)
    provisioned: list[str] = []
    monkeypatch.setattr(
        provisioning, "provision_grafana", lambda topo, url, *a, **k: provisioned.append(url)
    )
    return SimpleNamespace(
        env_file=env_file, marker=tmp_path / ".swarm-created", grafana=provisioned
    )
