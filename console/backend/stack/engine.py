"""What deploy and stop both ask of the engine: the SDK client, the docker CLI, the stack's config, secrets,
networks and services."""

from __future__ import annotations

import os
import secrets as secrets_module
import shutil
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import yaml

from console.backend.stack.settings import (
    StackError,
    StackSettings,
)
from xjh_contract import (
    LABEL_STACK_NAMESPACE,
)


def docker_client(timeout: float = 30.0) -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except docker.errors.DockerException as e:
        raise StackError(f"the Docker engine does not answer ({_short(e)}); start it (scripts/engine.sh up)") from None
    return client


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[-1][:300] if text else type(error).__name__


def _run_docker(args: list[str], env: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    if shutil.which("docker") is None:
        raise StackError("the docker command-line client is not installed")
    try:
        return subprocess.run(
            ["docker", *args], env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise StackError(f"`docker {' '.join(args[:2])}` did not finish within {timeout:g} s") from None


def stack_config(settings: StackSettings) -> dict[str, Any]:
    """The stack file as `docker stack config` resolves it (variables substituted), or StackError."""
    if not settings.stack_file.is_file():
        raise StackError(f"stack file {settings.stack_file} not found")
    result = _run_docker(["stack", "config", "-c", str(settings.stack_file)], settings.environment, 30)
    if result.returncode != 0:
        raise StackError(f"{settings.stack_file.name} is not accepted: {result.stderr.strip()[-500:]}")
    try:
        config = yaml.safe_load(result.stdout)
    except yaml.YAMLError as e:
        raise StackError(f"cannot read `docker stack config` output: {e}") from None
    if not isinstance(config, dict) or not config.get("services"):
        raise StackError(f"{settings.stack_file.name} defines no services")
    return config


def write_secret_files(directory: Path, names: list[str]) -> list[Path]:
    """Make sure DIR/NAME holds a random value for each name (0600, directory 0700); returns the new files."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    created = []
    for name in names:
        path = directory / name
        if path.exists() and path.stat().st_size > 0:
            os.chmod(path, 0o600)
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets_module.token_hex(32) + "\n")
        created.append(path)
    return created


def _find_secret(client: docker.DockerClient, name: str) -> Any:
    # The engine's name filter matches prefixes: keep the exact name only.
    return next((s for s in client.secrets.list(filters={"name": name}) if s.name == name), None)


def _find_network(client: docker.DockerClient, name: str) -> Any:
    return next((n for n in client.networks.list(names=[name]) if n.name == name), None)


def _stack_services(client: docker.DockerClient, stack: str) -> list[Any]:
    services: list[Any] = client.services.list(filters={"label": f"{LABEL_STACK_NAMESPACE}={stack}"})
    return services


def _hub_answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/hub/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False
