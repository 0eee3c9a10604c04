"""`xnat-jh-console images pull`: on the shared engine (one node), an image the node holds, one that cannot be
pulled (no registry answers here), a bad reference, a node whose engine does not answer, and the images of the
notebook services running now."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

from console.backend.docker import DockerAccess
from console.backend.images import PullUpdate, launch_images, normalise, pull_images
from xjh_contract import LABEL_USER

pytestmark = pytest.mark.timeout(120)
CLI = [sys.executable, "-m", "console"]
UNPULLABLE = "xjc-test/never-published:1"


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_HOST", "LANG")}
    keep.update({"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_STATE_HOME": str(tmp_path / "state")})
    return keep


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=90)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_normalise_adds_latest_and_keeps_tags_and_digests():
    assert normalise("site/notebook") == "site/notebook:latest"
    assert normalise("registry:5000/site/notebook") == "registry:5000/site/notebook:latest"
    assert normalise("site/notebook:5") == "site/notebook:5"
    assert normalise("site/nb:5@sha256:" + "a" * 64) == "site/nb@sha256:" + "a" * 64


def test_a_held_image_is_reported_present_on_the_node(docker_client, tiny_image, env):
    hostname = docker_client.info()["Name"]
    result = cli("images", "pull", tiny_image, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{hostname}: {tiny_image}: present" in result.stdout
    assert f"{tiny_image}: on {hostname}" in result.stdout


def test_an_image_that_cannot_be_pulled_fails_clearly(docker_client, tiny_image, env):
    hostname = docker_client.info()["Name"]
    result = cli("images", "pull", tiny_image, UNPULLABLE, "Not A/Reference", env=env)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert f"{hostname}: {UNPULLABLE}: pulling" in lines
    failed = next(line for line in lines if line.startswith(f"{hostname}: {UNPULLABLE}: failed: "))
    assert len(failed) < 400
    assert any(line.startswith(f"{hostname}: Not A/Reference:latest: failed: ") and "invalid reference" in line
               for line in lines)
    assert f"{UNPULLABLE}: on no node" in lines and f"{tiny_image}: on {hostname}" in lines


def test_read_only_refuses_to_pull(tiny_image, env):
    result = cli("--read-only", "images", "pull", tiny_image, env=env)
    assert result.returncode == 1 and "read-only" in result.stderr and result.stdout == ""


def test_a_node_whose_engine_does_not_answer_is_reported(docker_client, tiny_image):
    class TwoNodes(DockerAccess):
        def nodes(self):
            real = super().nodes()
            return [*real, dataclasses.replace(real[0], id="remote-node-id", hostname="node2", leader=False)]

    access = TwoNodes(node_engines={"node2": "tcp://127.0.0.1:9"}, timeout=5)
    updates: list[PullUpdate] = []
    try:
        report = pull_images(access, [tiny_image], updates.append, timeout=5)
    finally:
        access.close()
    assert report.holders == {tiny_image: [docker_client.info()["Name"]]}
    assert [(p.node, p.state) for p in report.problems] == [("node2", "unreachable")]
    assert not report.ok


def test_no_image_named_means_the_images_of_the_notebook_services(make_service, tiny_image):
    make_service("images-nb", "sleep 600", labels={LABEL_USER: "alice"})
    access = DockerAccess(timeout=10)  # no network given: every notebook service on the swarm counts
    try:
        assert tiny_image in launch_images(access)
    finally:
        access.close()
