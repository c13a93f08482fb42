"""The rights of a node container: --privileged, else the capability set, else one line."""

from __future__ import annotations

import pytest

import docker
from ese.cluster import privileges
from ese.errors import EseError

REFUSED = "OCI runtime create failed: unable to apply caps: operation not permitted"


class Attempts:
    """What the engine answers each choice with ('' = it ran)."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.tried: list[dict] = []

    def __call__(self, cli, image, options, name):
        self.tried.append(dict(options))
        return self.answers.pop(0)


def test_privileged_is_used_where_the_engine_allows_it():
    attempts = Attempts("")
    assert privileges.choose(None, "img", "probe", attempts, report=lambda _: None) == (
        privileges.PRIVILEGED
    )
    assert attempts.tried == [{"privileged": True}]


def test_a_refused_privileged_falls_back_to_every_capability_but_sys_resource():
    lines: list[str] = []
    attempts = Attempts(REFUSED, "")
    chosen = privileges.choose(None, "img", "probe", attempts, report=lines.append)
    assert chosen == privileges.CAPABILITIES
    assert privileges.flags(chosen) == (
        "--cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined "
        "--security-opt apparmor=unconfined --security-opt systempaths=unconfined"
    )
    assert f"  refused: {REFUSED}" in lines
    assert lines[0] == "> docker run --rm --privileged --entrypoint true img"


def test_an_engine_that_refuses_both_is_one_line_naming_what_is_missing():
    with pytest.raises(EseError) as err:
        privileges.choose(None, "img", "probe", Attempts(REFUSED, "no"), report=lambda _: None)
    text = str(err.value)
    assert "\n" not in text
    assert "--privileged (OCI runtime" in text and "CAP_SYS_ADMIN" in text


def test_systempaths_unconfined_becomes_no_masked_and_no_read_only_paths():
    # The real SDK builds the config; no engine is asked (the API version is given).
    cli = docker.DockerClient(base_url="unix:///nonexistent.sock", version="1.41")
    config = privileges.host_config(cli, privileges.CAPABILITIES, cgroupns="private")
    assert config["MaskedPaths"] == [] and config["ReadonlyPaths"] == []
    assert config["SecurityOpt"] == ["seccomp=unconfined", "apparmor=unconfined"]
    assert config["CapAdd"] == ["ALL"] and config["CapDrop"] == ["SYS_RESOURCE"]
    assert config["CgroupnsMode"] == "private"
    plain = privileges.host_config(cli, privileges.PRIVILEGED)
    assert plain["Privileged"] is True and "MaskedPaths" not in plain
