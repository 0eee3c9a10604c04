"""Which Docker engine, and how to reach it: an explicit host (flag or config), else `DOCKER_HOST` (with
`DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`), else the docker context named by `DOCKER_CONTEXT` or the CLI's current
context (`~/.docker/config.json`), read from `~/.docker/contexts` exactly as the docker CLI stores it, else the
local socket. `unix://`, `tcp://` (with TLS) and `ssh://` (paramiko, reading `~/.ssh/config` and the agent) all
work. Failures become `DockerUnavailable` with a message fit for the screen.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.backend import docker_sdk

if TYPE_CHECKING:  # the SDK itself is imported when the first client is made (docker_sdk)
    import docker
    from docker.tls import TLSConfig


class DockerUnavailable(ConnectionError):
    """The engine could not be asked, or refused. The message is fit to show."""


# -- which engine --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """Where the engine is and how to reach it; `source` says which setting chose it (for messages)."""

    host: str
    tls: TLSConfig | None = None
    source: str = "default"

    def describe(self) -> str:
        return f"{self.host} (from {self.source})"


def docker_config_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("DOCKER_CONFIG") or Path.home() / ".docker")


def current_context_name(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    if env.get("DOCKER_CONTEXT"):
        return env["DOCKER_CONTEXT"]
    config = docker_config_dir(env) / "config.json"
    try:
        return json.loads(config.read_text()).get("currentContext") or "default"
    except (OSError, ValueError, AttributeError):
        return "default"


def context_endpoint(name: str, env: dict[str, str] | None = None) -> Endpoint:
    """A docker context's endpoint, read from `contexts/meta/<sha256(name)>/meta.json` and its TLS files."""
    base = docker_config_dir(env) / "contexts"
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta_file = base / "meta" / digest / "meta.json"
    try:
        meta = json.loads(meta_file.read_text())
        endpoint = meta["Endpoints"]["docker"]
        host = endpoint["Host"]
    except FileNotFoundError:
        raise DockerUnavailable(f"docker context {name!r} does not exist (no {meta_file})") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DockerUnavailable(f"docker context {name!r}: cannot read {meta_file}: {e}") from None
    tls_dir = base / "tls" / digest / "docker"
    ca, cert, key = (tls_dir / f for f in ("ca.pem", "cert.pem", "key.pem"))
    tls = None
    if host.startswith("tcp://") and (ca.exists() or cert.exists()):
        docker_sdk.load()
        from docker.tls import TLSConfig

        tls = TLSConfig(
            client_cert=(str(cert), str(key)) if cert.exists() and key.exists() else None,
            ca_cert=str(ca) if ca.exists() else None,
            verify=not endpoint.get("SkipTLSVerify", False),
        )
    return Endpoint(host=host, tls=tls, source=f"docker context {name!r}")


def resolve_endpoint(host: str | None = None, env: dict[str, str] | None = None) -> Endpoint:
    """The engine to use, in the docker CLI's order of precedence."""
    env = dict(os.environ) if env is None else env
    if host:
        return Endpoint(host=host, tls=_env_tls(host, env), source="--docker-host/config")
    if env.get("DOCKER_HOST"):
        return Endpoint(host=env["DOCKER_HOST"], tls=_env_tls(env["DOCKER_HOST"], env), source="DOCKER_HOST")
    name = current_context_name(env)
    if name != "default":
        return context_endpoint(name, env)
    return Endpoint(host="unix:///var/run/docker.sock", source="default socket")


def _env_tls(host: str, env: dict[str, str]) -> TLSConfig | None:
    if not host.startswith("tcp://"):
        return None
    verify = env.get("DOCKER_TLS_VERIFY", "") not in ("", "0")
    cert_path = env.get("DOCKER_CERT_PATH") or str(docker_config_dir(env))
    ca, cert, key = (os.path.join(cert_path, f) for f in ("ca.pem", "cert.pem", "key.pem"))
    if not verify and not os.path.exists(cert):
        return None
    docker_sdk.load()
    from docker.tls import TLSConfig

    return TLSConfig(
        client_cert=(cert, key) if os.path.exists(cert) else None,
        ca_cert=ca if verify else None,
        verify=verify,
    )


def make_client(endpoint: Endpoint, timeout: float) -> docker.DockerClient:
    # A larger pool than the SDK's 10: screens' thread workers and the stats sampler share one client.
    kwargs: dict[str, Any] = {"base_url": endpoint.host, "timeout": timeout, "version": "auto", "max_pool_size": 24}
    if endpoint.tls is not None:
        kwargs["tls"] = endpoint.tls
    ssh = endpoint.host.startswith("ssh://")
    if ssh:
        # In-process SSH (paramiko, docker's "ssh" extra), which reads ~/.ssh/config and uses the agent. The
        # system-ssh mode would write ssh's own errors onto the terminal, under a full-screen console.
        kwargs["use_ssh_client"] = False
    try:
        docker_sdk.load(ssh=ssh)
    except ImportError:
        raise DockerUnavailable(
            f"{endpoint.host}: ssh:// needs the docker SDK's ssh support: pip install 'docker[ssh]'"
        ) from None
    import docker

    return docker.DockerClient(**kwargs)


def _is_ssh_error(error: Exception) -> bool:
    return type(error).__module__.startswith("paramiko")


def _explain(error: Exception, endpoint: Endpoint) -> str:
    docker_sdk.load()  # already loaded when a call failed; `load` only makes sure before naming its errors
    import docker.errors
    import requests.exceptions

    text = str(error)
    if isinstance(error, docker.errors.APIError):
        explanation = getattr(error, "explanation", None) or text
        if "not a swarm manager" in str(explanation) or "This node is not a swarm manager" in str(explanation):
            return f"the engine at {endpoint.host} is not a swarm manager; run the console on a manager"
        return f"the engine refused: {explanation}"
    if "Permission denied" in text:
        return f"no permission to use {endpoint.describe()}; is this user in the docker group?"
    if (
        "No such file" in text
        or "Connection refused" in text
        or "ConnectionRefused" in text
        or "Unable to connect" in text
    ):
        return f"no Docker engine answers at {endpoint.describe()}"
    if isinstance(error, requests.exceptions.Timeout) or "timed out" in text.lower():
        return f"the Docker engine at {endpoint.describe()} did not answer in time"
    return f"cannot reach the Docker engine at {endpoint.describe()}: {text[:200]}"
