"""The XNAT stand-in as a container on a stack's network, for the demo (scripts/demo.sh) and bench/: reached by
the hub at `hub_xnat_url` as it would reach a real XNAT, and by this machine on loopback ports (the control API
has no authentication). Demo tooling, not part of the hub or the console.

    python -m hub.standin.container up --network NET --password-file FILE [--name ...]
    python -m hub.standin.container down [--name ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx

POLL = 0.2


class StandinError(Exception):
    """The stand-in cannot be started; the message says why."""


@dataclass(frozen=True)
class StandinSettings:
    name: str = "xnat-jupyterhub-standin"
    image: str = "xnat-jupyterhub/hub:dev"
    demo_image: str = "xnat-jupyterhub/singleuser:dev"
    xnat_port: int = 8090
    control_port: int = 8091
    password_file: Path | None = None  # the hub's XNAT password (the `jupyterhub` service account)

    @property
    def hub_xnat_url(self) -> str:
        return f"http://{self.name}:8080"

    @property
    def xnat_url(self) -> str:
        return f"http://127.0.0.1:{self.xnat_port}"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}/_standin"


def _client(client: Any = None) -> Any:
    if client is not None:
        return client
    try:
        found = docker.from_env(timeout=30)
        found.ping()
    except docker.errors.DockerException as e:
        raise StandinError(f"the Docker engine does not answer ({str(e)[-200:]})") from None
    return found


def start_standin(standin: StandinSettings, network: str, client: Any = None, timeout: float = 30.0) -> str:
    """Run (or keep) the stand-in container on `network`, seeded with the demo cast; wait until it answers."""
    client = _client(client)
    if standin.password_file is None or not standin.password_file.is_file():
        raise StandinError(f"the stand-in needs the hub's XNAT password file (got {standin.password_file})")
    if not [n for n in client.networks.list(names=[network]) if n.name == network]:
        raise StandinError(f"network {network} does not exist: deploy the stack first")
    try:
        container = client.containers.get(standin.name)
        if container.status != "running":
            container.remove(force=True)
            container = None
    except docker.errors.NotFound:
        container = None
    if container is None:
        client.containers.run(
            standin.image,
            ["python", "-m", "hub.standin", "--host", "0.0.0.0", "--port", "8080", "--control-host", "0.0.0.0",
             "--control-port", "8081", "--seed-demo", "--demo-image", standin.demo_image],
            name=standin.name,
            detach=True,
            network=network,
            ports={"8080/tcp": ("127.0.0.1", standin.xnat_port), "8081/tcp": ("127.0.0.1", standin.control_port)},
            volumes={str(standin.password_file.resolve()): {"bind": "/run/secrets/xnat_password", "mode": "ro"}},
            environment={"JH_XNAT_PASSWORD_FILE": "/run/secrets/xnat_password"},
            labels={"org.xnat.jupyterhub.component": "xnat-standin"},
            restart_policy={"Name": "unless-stopped"},
        )  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(standin.control_url + "/", timeout=2.0).status_code == 200:
                return f"XNAT stand-in {standin.name} answers at {standin.xnat_url} (hub: {standin.hub_xnat_url})"
        except httpx.HTTPError:
            pass
        time.sleep(POLL)
    logs = client.containers.get(standin.name).logs(tail=10).decode(errors="replace").strip()
    raise StandinError(f"the XNAT stand-in did not answer within {timeout:g} s; its last lines:\n{logs}")


def remove_standin(name: str, client: Any = None) -> list[str]:
    client = _client(client)
    try:
        client.containers.get(name).remove(force=True)
    except docker.errors.NotFound:
        return []
    return [f"container {name}"]


def main(argv: list[str] | None = None) -> int:
    defaults = StandinSettings()
    parser = argparse.ArgumentParser(prog="python -m hub.standin.container", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--name", default=defaults.name)
    parser.add_argument("--network", default=os.environ.get("JH_NETWORK") or "jupyterhub-network")
    parser.add_argument("--image", default=os.environ.get("JH_IMAGE") or defaults.image)
    parser.add_argument("--demo-image", default=defaults.demo_image, help="image in the demo users' launch options")
    parser.add_argument("--xnat-port", type=int, default=defaults.xnat_port, help="loopback port of its XNAT API")
    parser.add_argument("--control-port", type=int, default=defaults.control_port,
                        help="loopback port of its control API")
    parser.add_argument("--password-file", type=Path, help="the hub's XNAT password (service account `jupyterhub`)")
    args = parser.parse_args(argv)
    try:
        if args.action == "down":
            for item in remove_standin(args.name):
                print(f"removed {item}")
            return 0
        standin = StandinSettings(
            name=args.name, image=args.image, demo_image=args.demo_image, xnat_port=args.xnat_port,
            control_port=args.control_port, password_file=args.password_file,
        )  # fmt: skip
        print(start_standin(standin, args.network))
        return 0
    except (StandinError, docker.errors.DockerException) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
