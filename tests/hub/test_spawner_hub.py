"""What XNAT and the user see when a spawn goes through a real JupyterHub with XnatSwarmSpawner: the failure
message in the progress stream and in the start answer, and the start body echoed back in the server model.

One JupyterHub process (with configurable-http-proxy) per module, configured only for the spawner; XNAT's side
is the stand-in and `XnatPlugin`, making the plugin's own calls.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from spawner_fixtures import (  # noqa: F401  (fixtures)
    PREFIX,
    docker_api,
    host_dirs,
    light_options,
    services_of,
    swarm_network,
    tiny_image,
    wait_for,
)

from hub.standin.options import mount, start_request_body
from hub.standin.plugin import HubError, XnatPlugin
from hub.standin.server import SERVICE_ROLE, XnatStandin

pytestmark = pytest.mark.timeout(120)

SERVER = "20240615T101530123Z"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


@pytest.fixture(scope="module")
def real_hub(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[RealHub]:
    if not shutil.which("configurable-http-proxy"):
        pytest.skip("configurable-http-proxy is not on PATH (npm install -g configurable-http-proxy)")
    # the live-swarm tests of this module need a network; without a swarm, the others still run
    network = request.getfixturevalue("swarm_network") if _swarm_available() else "none-xnatjh-spt"
    work = tmp_path_factory.mktemp("hub")
    token = secrets.token_hex(24)
    hub_port = free_port()
    config = work / "jupyterhub_config.py"
    config.write_text(
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
        f"c.XnatSwarmSpawner.prefix = '{PREFIX}'\n"
        "c.XnatSwarmSpawner.extra_container_spec = {'stop_grace_period': 1_000_000_000}\n"
        "c.JupyterHub.services = [{'name': 'xnat', 'api_token': open(%r).read()}]\n"
        "c.JupyterHub.load_roles = [{'name': 'xnat', 'services': ['xnat'],\n"
        "    'scopes': ['admin:users', 'admin:servers', 'tokens', 'read:hub']}]\n" % str(work / "token")
    )
    (work / "token").write_text(token)
    os.chmod(work / "token", 0o600)
    service_password = secrets.token_urlsafe(16)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(work),
        "JH_XNAT_USERNAME": "jupyterhub",
        "JH_XNAT_PASSWORD": service_password,
        "JH_NETWORK": network,
        "JH_MOUNT_ALLOWED_PREFIXES": tempfile.gettempdir(),  # where host_dirs are made
        "JH_HTTP_TIMEOUT": "30",
    }
    with XnatStandin().run_in_thread() as standin:
        standin.add_user("jupyterhub", service_password, [SERVICE_ROLE])
        env["JH_XNAT_URL"] = standin.url
        log = open(work / "hub.log", "wb")  # noqa: SIM115  (held open for the process's life; closed when it stops)
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)], cwd=work, env=env, stdout=log,
            stderr=subprocess.STDOUT,
        )
        api_url = f"http://127.0.0.1:{hub_port}/jupyterhub/hub/api"
        try:
            def answering() -> bool:
                if process.poll() is not None:
                    raise AssertionError(f"the hub exited: {(work / 'hub.log').read_text()[-2000:]}")
                try:
                    return httpx.get(api_url + "/", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(answering, 60, "the hub API to answer")
            yield RealHub(api_url, token, standin, network)
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


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


def a_user() -> str:
    return f"Spt{secrets.token_hex(3)}.Bob"


async def start_failing(hub: RealHub, user: str) -> tuple[HubError, list[dict[str, Any]]]:
    async with hub.plugin() as xnat:
        await xnat.ensure_user(user)
        with pytest.raises(HubError) as info:
            await xnat.start_server(user, SERVER, start_request_body(event_tracking_id=SERVER))
    return info.value, await hub.progress_events(user, SERVER)


async def test_missing_options_reach_the_user_cleanly(real_hub: RealHub) -> None:
    user = a_user()
    error, events = await start_failing(real_hub, user)
    message = "XNAT has no launch options stored for this server. Start it again from XNAT."
    assert error.status == 404 and message in str(error)
    assert events[-1] == {"progress": 100, "failed": True, "message": f"Spawn failed: {message}"}


async def test_refused_mount_reaches_the_user_cleanly(real_hub: RealHub) -> None:
    user = a_user()
    real_hub.standin.set_user_options(user, SERVER, light_options(user, SERVER, mounts=[mount("/etc", "/x")]))
    error, events = await start_failing(real_hub, user)
    assert error.status == 400
    assert events[-1]["failed"] is True
    assert events[-1]["message"] == (
        "Spawn failed: The launch options XNAT holds for this server cannot be used: "
        f"mount source /etc is outside the directories this hub may mount ({tempfile.gettempdir()})"
    )


@pytest.mark.docker
async def test_rejected_task_reaches_the_user_fast(real_hub: RealHub, tiny_image: str, docker_api: Any,
                                                   host_dirs: Path) -> None:
    user = a_user()
    missing = host_dirs / "gone"
    real_hub.standin.set_user_options(user, SERVER, light_options(
        user, SERVER, image=tiny_image, command="/bin/sleep 600", mounts=[mount(str(missing), "/data")]
    ))
    started = time.monotonic()
    _error, events = await start_failing(real_hub, user)
    assert time.monotonic() - started < 10
    assert events[-1]["failed"] is True
    assert events[-1]["message"].startswith("Spawn failed: Docker rejected the notebook: ")
    assert f"bind source path does not exist: {missing}" in events[-1]["message"]
    assert "Traceback" not in events[-1]["message"]
    assert services_of(docker_api, user) == []


@pytest.mark.docker
async def test_start_body_comes_back_unchanged_in_the_server_model(real_hub: RealHub, tiny_image: str,
                                                                   docker_api: Any) -> None:
    """The service runs (`sleep`, not a notebook), so the server stays pending while the hub waits for it to
    answer: long enough to read the model XNAT reads, then XNAT stops it."""
    user = a_user()
    real_hub.standin.set_user_options(user, SERVER, light_options(user, SERVER, image=tiny_image,
                                                                 command="/bin/sleep 600"))
    body = {**start_request_body(event_tracking_id=SERVER), "image": "attacker/rootkit"}
    async with real_hub.plugin() as xnat:
        await xnat.ensure_user(user)
        assert await xnat.start_server(user, SERVER, body) == 202
        model = await xnat.get_server(user, SERVER)
        assert model is not None and model["user_options"] == body
        service = wait_for(lambda: services_of(docker_api, user), 30, "the notebook service")
        assert service[0]["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0] == tiny_image
        await xnat.stop_server(user, SERVER)
        await xnat.wait_gone(user, SERVER)
    wait_for(lambda: services_of(docker_api, user) == [], 30, "the service to be removed")
