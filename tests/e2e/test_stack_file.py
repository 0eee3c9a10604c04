"""docker-stack.yml as `docker stack config` reads it (the docker CLI only, no engine needed)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from tests.helpers.live import REPO

pytestmark = [pytest.mark.docker]


def stack_config(**variables: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("docker") is None:
        pytest.fail("the docker CLI is not installed: run the tests with scripts/test.sh")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JH_")}
    env.update(variables)
    return subprocess.run(["docker", "stack", "config", "-c", str(REPO / "docker-stack.yml")],
                          capture_output=True, text=True, env=env)


def test_stack_file_is_accepted_and_deploys_the_hub_as_specified():
    result = stack_config(JH_XNAT_URL="https://xnat.example.org")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    hub = config["services"]["jupyterhub"]
    assert hub["deploy"]["endpoint_mode"] == "dnsrr"
    assert hub["deploy"]["placement"]["constraints"] == ["node.role == manager"]
    assert hub["ports"] == [{"mode": "host", "target": 8000, "published": 8000, "protocol": "tcp"}]
    mounts = {m["target"]: m for m in hub["volumes"]}
    assert mounts["/var/run/docker.sock"]["type"] == "bind"
    assert mounts["/srv/jupyterhub/data"]["type"] == "volume"
    network = config["networks"]["jupyterhub-network"]
    assert (network["name"], network["driver"], network["attachable"]) == ("jupyterhub-network", "overlay", True)
    # Every password and token is a Docker secret, read through *_FILE: none in plain env.
    env = hub["environment"]
    for variable in ("JH_XNAT_PASSWORD", "JH_XNAT_SERVICE_TOKEN", "JH_CONSOLE_TOKEN"):
        assert variable not in env
        assert env[f"{variable}_FILE"].startswith("/run/secrets/")
    assert {s["name"] for s in config["secrets"].values()} == {
        "xnat_jupyterhub_xnat_service_token", "xnat_jupyterhub_xnat_password", "xnat_jupyterhub_console_token"}
    assert all(s["external"] for s in config["secrets"].values())


def test_stack_file_follows_the_variables():
    result = stack_config(JH_XNAT_URL="http://xnat:8080", JH_NETWORK="site-net", JH_PORT="18000",
                          JH_SECRETS_PREFIX="site")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert config["networks"]["jupyterhub-network"]["name"] == "site-net"
    assert config["services"]["jupyterhub"]["environment"]["JH_NETWORK"] == "site-net"
    assert config["services"]["jupyterhub"]["ports"][0]["published"] == 18000
    assert {s["name"] for s in config["secrets"].values()} == {
        "site_xnat_service_token", "site_xnat_password", "site_console_token"}


def test_stack_file_without_xnat_url_says_what_is_missing():
    result = stack_config()
    assert result.returncode != 0
    assert "JH_XNAT_URL" in result.stderr
