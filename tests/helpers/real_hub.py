"""A real `jupyterhub` process (with configurable-http-proxy) configured only for XnatSwarmSpawner, on loopback,
with the XNAT stand-in (in a thread) holding the hub's service account. XNAT's side is `XnatPlugin`.

`run_real_hub` is the one launcher: the `real_hub` fixture (one hub per module, on this machine's engine) and
tests/node2 (a hub whose engine is the isolated swarm's manager) both use it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.standin.options import start_request_body
from hub.standin.plugin import HubError, XnatPlugin
from hub.standin.server import SERVICE_ROLE, XnatStandin
from tests.helpers.hub_process import jupyterhub_process
from tests.helpers.spawner import PREFIX
from tests.helpers.waiting import free_port

SERVER = "20240615T101530123Z"


class RealHub:
    def __init__(self, api_url: str, token: str, standin: XnatStandin, network: str):
        self.api_url, self.token, self.standin, self.network = api_url, token, standin, network

    def plugin(self) -> XnatPlugin:
        return XnatPlugin(self.api_url, self.token, timeout=30)

    async def progress_events(self, user: str, server: str) -> list[dict[str, Any]]:
        """The progress stream of a spawn, read to its end."""
        events = []
        url = f"{self.api_url}/users/{user}/servers/{server}/progress"
        async with (
            httpx.AsyncClient(headers={"Authorization": f"token {self.token}"}, timeout=30) as client,
            client.stream("GET", url) as response,
        ):
            assert response.status_code == 200, await response.aread()
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    events.append(json.loads(line[len("data:"):]))
        return events


@contextmanager
def run_real_hub(
    work: Path, *, network: str, prefix: str, allowed_prefixes: str = tempfile.gettempdir(),
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[tuple[RealHub, subprocess.Popen[bytes]]]:
    """Start the hub in `work` (config, database, log), wait for its API, and stop it on exit.

    Skips (with the reason) when configurable-http-proxy is missing. `extra_env` adds to the hub's environment
    (e.g. DOCKER_HOST). The hub runs in a process group of its own, out of reach of the test's signals.
    """
    if not shutil.which("configurable-http-proxy"):
        pytest.skip("configurable-http-proxy is not on PATH (scripts/test.sh installs it)")
    token = secrets.token_hex(24)
    (work / "token").write_text(token)
    os.chmod(work / "token", 0o600)
    hub_port = free_port()
    config = (
        "c = get_config()  # noqa\n"
        f"c.JupyterHub.bind_url = 'http://127.0.0.1:{free_port()}/jupyterhub'\n"
        f"c.JupyterHub.hub_bind_url = 'http://127.0.0.1:{hub_port}'\n"
        f"c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:{free_port()}'\n"
        f"c.JupyterHub.db_url = 'sqlite:///{work}/jupyterhub.sqlite'\n"
        f"c.JupyterHub.cookie_secret_file = '{work}/cookie_secret'\n"
        f"c.JupyterHub.pid_file = '{work}/jupyterhub.pid'\n"
        "c.JupyterHub.authenticator_class = 'null'\n"
        "c.JupyterHub.allow_named_servers = True\n"
        "c.JupyterHub.spawner_class = 'hub.spawner.XnatSwarmSpawner'\n"
        f"c.XnatSwarmSpawner.prefix = '{prefix}'\n"
        "c.XnatSwarmSpawner.extra_container_spec = {'stop_grace_period': 1_000_000_000}\n"
        f"c.JupyterHub.services = [{{'name': 'xnat', 'api_token': open('{work}/token').read()}}]\n"
        "c.JupyterHub.load_roles = [{'name': 'xnat', 'services': ['xnat'],\n"
        "    'scopes': ['admin:users', 'admin:servers', 'tokens', 'read:hub']}]\n"
    )
    service_password = secrets.token_urlsafe(16)
    with XnatStandin().run_in_thread() as standin:
        standin.add_user("jupyterhub", service_password, [SERVICE_ROLE])
        env = {
            "PATH": os.environ["PATH"], "HOME": str(work), "LANG": "C.UTF-8",
            "JH_XNAT_URL": standin.url, "JH_XNAT_USERNAME": "jupyterhub", "JH_XNAT_PASSWORD": service_password,
            "JH_NETWORK": network, "JH_MOUNT_ALLOWED_PREFIXES": allowed_prefixes, "JH_HTTP_TIMEOUT": "30",
            **(extra_env or {}),
        }
        api_url = f"http://127.0.0.1:{hub_port}/jupyterhub/hub/api"
        with jupyterhub_process(work, config, api_url, env=env) as process:
            yield RealHub(api_url, token, standin, network), process


def _swarm_available() -> bool:
    try:
        import docker

        client = docker.APIClient(version="auto", timeout=5)
        try:
            return client.info().get("Swarm", {}).get("ControlAvailable") is True
        finally:
            client.close()
    except Exception:
        return False


@pytest.fixture(scope="module")
def real_hub(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[RealHub]:
    """One real hub per module on this machine's engine, its notebooks prefixed `xnatjh-spt`."""
    # the live-swarm tests of a module need a network; without a swarm, the others still run
    network = request.getfixturevalue("swarm_network") if _swarm_available() else "none-xnatjh-spt"
    with run_real_hub(tmp_path_factory.mktemp("hub"), network=network, prefix=PREFIX) as (hub, _process):
        yield hub


def a_user() -> str:
    return f"Spt{secrets.token_hex(3)}.Bob"


async def start_failing(hub: RealHub, user: str) -> tuple[HubError, list[dict[str, Any]]]:
    """XNAT's start of `user`'s server SERVER, which must be refused: the error and the progress stream."""
    async with hub.plugin() as xnat:
        await xnat.ensure_user(user)
        with pytest.raises(HubError) as info:
            await xnat.start_server(user, SERVER, start_request_body(event_tracking_id=SERVER))
    return info.value, await hub.progress_events(user, SERVER)
