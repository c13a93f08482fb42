"""The cluster's registry: what is pushed, the refs the nodes pull, no tag left here."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ese.cluster import registry


class Images:
    """Images of this machine's engine, with tags; a push stream that succeeds."""

    def __init__(self, tags: dict[str, list[str]]) -> None:
        self.by_id = tags  # image id -> tags
        self.pushed: list[str] = []

    def _image(self, image_id: str) -> Any:
        digests = ["redis@sha256:abc"] if image_id == "hub" else []

        def tag(repo: str, tag: str) -> None:
            self.by_id[image_id].append(f"{repo}:{tag}")

        return SimpleNamespace(id=image_id, attrs={"RepoDigests": digests}, tag=tag)

    def get(self, ref: str) -> Any:
        for image_id, tags in self.by_id.items():
            if ref in tags:
                return self._image(image_id)
        raise LookupError(ref)

    def push(self, repo: str, tag: str, stream: bool, decode: bool) -> list[dict]:
        self.pushed.append(f"{repo}:{tag}")
        return [{"status": "Pushed"}]

    def remove(self, ref: str, noprune: bool = False) -> None:
        for tags in self.by_id.values():
            if ref in tags:
                tags.remove(ref)

    def list(self) -> list[Any]:
        return [SimpleNamespace(tags=list(t)) for t in self.by_id.values()]


def test_local_images_are_pushed_and_named_for_the_nodes_official_ones_kept(topo):
    images = Images(
        {"srv": ["ese-server:local"], "kit": ["ese-offline/redis:7"], "hub": ["redis:7"]}
    )
    cli = SimpleNamespace(images=images)
    refs = {"ESE_SERVER_IMAGE": "ese-server:local", "R": "ese-offline/redis:7", "H": "redis:7"}
    out = registry.push(cli, topo, refs, 41000, report=lambda _: None)
    assert out == {
        "ESE_SERVER_IMAGE": "ese-registry:5000/ese-server:local",
        "R": "ese-registry:5000/ese-offline/redis:7",
        "H": "redis:7",  # pulled from its own registry: every node reaches it
    }
    assert images.pushed == [
        "127.0.0.1:41000/ese-server:local",
        "127.0.0.1:41000/ese-offline/redis:7",
    ]
    assert registry.host_tags(cli, 41000) == []  # the push tags are gone again
    assert images.by_id["srv"] == ["ese-server:local"]


def test_the_host_port_is_read_from_the_registry_container():
    box = SimpleNamespace(
        attrs={
            "HostConfig": {
                "PortBindings": {"5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "41000"}]}
            }
        }
    )
    assert registry.host_port(box) == 41000
    assert registry.host_port(SimpleNamespace(attrs={"HostConfig": {}})) is None


def test_a_ref_elsewhere_is_not_renamed(topo):
    assert registry.node_ref(topo, "127.0.0.1:4100/x:1", "127.0.0.1:41000") == "127.0.0.1:4100/x:1"
    assert registry.node_ref(topo, "127.0.0.1:41000/a/b:2", "127.0.0.1:41000") == (
        "ese-registry:5000/a/b:2"
    )
