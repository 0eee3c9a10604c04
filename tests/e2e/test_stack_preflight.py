"""`console.backend.stack.deploy` refuses, before changing anything, with a message that says what to do."""

from __future__ import annotations

import subprocess

import pytest

from console.backend.stack import StackError, StackSettings, deploy, read_env_file
from tests.helpers.live import HUB_IMAGE

pytestmark = [pytest.mark.docker]

PREFIX = "xjh_preflight"


def settings(**variables: str) -> StackSettings:
    base = {"JH_XNAT_URL": "http://xnat:8080", "JH_NETWORK": "xjh-preflight-network", "JH_SECRETS_PREFIX": PREFIX,
            "JH_IMAGE": HUB_IMAGE, "JH_PORT": "8000"}
    return StackSettings(stack_name="xjh-preflight", variables={**base, **variables})


def refusal(stack: StackSettings) -> str:
    with pytest.raises(StackError) as error:
        for _line in deploy(stack):
            pass
    return str(error.value)


def nothing_created() -> None:
    secrets = subprocess.run(["docker", "secret", "ls", "--format", "{{.Name}}"], capture_output=True, text=True,
                             check=True).stdout.split()
    assert not [s for s in secrets if s.startswith(PREFIX)]
    services = subprocess.run(["docker", "service", "ls", "--format", "{{.Name}}"], capture_output=True, text=True,
                              check=True).stdout.split()
    assert not [s for s in services if s.startswith("xjh-preflight")]


def test_missing_xnat_url_is_refused(monkeypatch):
    monkeypatch.delenv("JH_XNAT_URL", raising=False)
    message = refusal(settings(JH_XNAT_URL=""))
    assert "JH_XNAT_URL is not set" in message
    nothing_created()


def test_missing_image_is_refused():
    message = refusal(settings(JH_IMAGE="xjh-preflight/no-such-image:1"))
    assert "images not present on this node: xjh-preflight/no-such-image:1" in message
    assert "scripts/build-images.sh" in message
    nothing_created()


def any_local_image() -> str:
    images = subprocess.run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}",
                             "--filter", "dangling=false"], capture_output=True, text=True, check=True).stdout.split()
    if not images:
        pytest.fail("this check needs any image on the node; run scripts/build-images.sh")
    return images[0]


def test_missing_secrets_are_named_with_how_to_create_them():
    message = refusal(settings(JH_IMAGE=any_local_image()))
    assert f"Docker secrets missing: {PREFIX}_console_token, {PREFIX}_xnat_password, {PREFIX}_xnat_service_token" \
        in message
    assert "docker secret create" in message
    nothing_created()


def test_env_file_of_the_last_deploy(tmp_path, monkeypatch):
    recorded = tmp_path / "stack.env"
    recorded.write_text("# written by demo.sh\nJH_NETWORK=site-net\nJH_PORT=18000\n")
    monkeypatch.setenv("JH_STACK_ENV_FILE", str(recorded))
    monkeypatch.setenv("JH_PORT", "19000")  # the environment wins over the file
    stack = StackSettings.from_env()
    assert (stack.network, stack.port) == ("site-net", 19000)
    recorded.write_text("JH_NETWORK site-net\n")
    with pytest.raises(StackError, match=r"stack\.env:1: expected NAME=value"):
        read_env_file(recorded)
