"""The Docker engine restarted under a running hub: a real `jupyterhub` process with XnatSwarmSpawner, whose Docker
is the isolated swarm's manager (DOCKER_HOST, as dockerspawner reads it), never the shared engine.

While the engine is down the hub keeps answering (health, API) and a spawn fails at once with the spawner's clean
message; once the engine is back, without touching the hub, the next spawn reaches Docker again (its task on the
worker cannot start its command, and Docker's own words come back to the user), and nothing is left behind.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from node2_fixtures import PREFIX, Node2, wait_for
from test_spawner_hub import SERVER, RealHub, free_port, start_failing

from hub.standin.options import user_options
from hub.standin.server import SERVICE_ROLE, XnatStandin

pytestmark = [pytest.mark.docker, pytest.mark.timeout(240)]

NO_DOCKER = "The hub cannot reach Docker to start the notebook. Try again later, or tell your administrator."


@pytest.fixture
def hub_on_node2(node2: Node2, node2_network: str, tmp_path: Path) -> Iterator[tuple[RealHub, subprocess.Popen]]:
    if not shutil.which("configurable-http-proxy"):
        pytest.skip("configurable-http-proxy is not on PATH (scripts/test.sh installs it)")
    token = secrets.token_hex(24)
    (tmp_path / "token").write_text(token)
    os.chmod(tmp_path / "token", 0o600)
    hub_port = free_port()
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(
        "c = get_config()  # noqa\n"
        f"c.JupyterHub.bind_url = 'http://127.0.0.1:{free_port()}/jupyterhub'\n"
        f"c.JupyterHub.hub_bind_url = 'http://127.0.0.1:{hub_port}'\n"
        f"c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:{free_port()}'\n"
        f"c.JupyterHub.db_url = 'sqlite:///{tmp_path}/jupyterhub.sqlite'\n"
        f"c.JupyterHub.cookie_secret_file = '{tmp_path}/cookie_secret'\n"
        f"c.JupyterHub.pid_file = '{tmp_path}/jupyterhub.pid'\n"
        "c.JupyterHub.authenticator_class = 'null'\n"
        "c.JupyterHub.allow_named_servers = True\n"
        "c.JupyterHub.spawner_class = 'hub.spawner.XnatSwarmSpawner'\n"
        f"c.XnatSwarmSpawner.prefix = '{PREFIX}'\n"
        "c.XnatSwarmSpawner.extra_container_spec = {'stop_grace_period': 1_000_000_000}\n"
        f"c.JupyterHub.services = [{{'name': 'xnat', 'api_token': open('{tmp_path}/token').read()}}]\n"
        "c.JupyterHub.load_roles = [{'name': 'xnat', 'services': ['xnat'],\n"
        "    'scopes': ['admin:users', 'admin:servers', 'tokens', 'read:hub']}]\n"
    )
    service_password = secrets.token_urlsafe(16)
    with XnatStandin().run_in_thread() as standin:
        standin.add_user("jupyterhub", service_password, [SERVICE_ROLE])
        env = {
            "PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8",
            "DOCKER_HOST": node2.manager,  # the isolated manager: dockerspawner reads it
            "JH_XNAT_URL": standin.url, "JH_XNAT_USERNAME": "jupyterhub", "JH_XNAT_PASSWORD": service_password,
            "JH_NETWORK": node2_network, "JH_MOUNT_ALLOWED_PREFIXES": "/tmp", "JH_HTTP_TIMEOUT": "30",
        }
        log = open(tmp_path / "hub.log", "wb")  # noqa: SIM115  (held open for the process's life; closed when it stops)
        process = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(config)], cwd=tmp_path, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        api_url = f"http://127.0.0.1:{hub_port}/jupyterhub/hub/api"
        try:
            def answering() -> bool:
                assert process.poll() is None, (tmp_path / "hub.log").read_text()[-3000:]
                try:
                    return httpx.get(api_url + "/", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(answering, 60, "the hub API to answer")
            yield RealHub(api_url, token, standin, node2_network), process
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


def hub_answers(hub: RealHub) -> bool:
    headers = {"Authorization": f"token {hub.token}"}
    return (httpx.get(hub.api_url.replace("/api", "/health"), timeout=5).status_code == 200
            and httpx.get(f"{hub.api_url}/users", headers=headers, timeout=5).status_code == 200)


async def test_the_hub_rides_out_an_engine_restart(node2: Node2, hub_on_node2: tuple[RealHub, Any],
                                                   manager_api: Any) -> None:
    hub, process = hub_on_node2
    user = f"N2{secrets.token_hex(3)}.Hub"
    hub.standin.set_user_options(user, SERVER, user_options(
        user, SERVER, image=node2.image, command="/bin/no-such-command", mounts=[], cpu_limit=None,
        cpu_reservation=None, mem_limit="32M", mem_reservation=None, constraints=["node.labels.xjh.node==worker"],
    ))
    try:
        node2.run("stop", "mgr")
        assert hub_answers(hub) and process.poll() is None
        error, events = await start_failing(hub, user)
        assert error.status == 503 and NO_DOCKER in str(error)
        assert events[-1] == {"progress": 100, "failed": True, "message": f"Spawn failed: {NO_DOCKER}"}
    finally:
        node2.run("up")

    assert hub_answers(hub) and process.poll() is None, "the hub must not need a restart"
    mine = {"label": f"org.xnat.jupyterhub.user={user}"}
    try:
        # a command that is not in the image: the task fails before it ever runs (a task that ran and exited
        # could be seen running first, and the hub would then wait for it to answer)
        error, events = await start_failing(hub, user)
        message = events[-1]["message"]
        assert message.startswith("Spawn failed: "), message
        assert "/bin/no-such-command" in message and "no such file or directory" in message, message  # Docker's
        assert "Traceback" not in message
        wait_for(lambda: not manager_api.services(filters=mine), 30, "the failed spawn's service to be removed")
    finally:
        for service in manager_api.services(filters=mine):
            manager_api.remove_service(service["ID"])
