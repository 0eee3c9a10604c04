"""A hub restart while servers run (`docker service update --force`, a new hub container on the same volume):
the hub still knows its servers afterwards, and they still answer through the proxy."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.helpers.live import E2E_TIMEOUT, STACK, LiveStack, xnat_launch
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(E2E_TIMEOUT)]

USER = "alice"


def hub_container_id() -> str:
    return subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={STACK}_jupyterhub"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()


def hub_healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/hub/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


async def test_hub_restart_keeps_running_servers(live_stack: LiveStack):
    server, _body, _model = await xnat_launch(live_stack, USER)
    async with live_stack.plugin() as plugin:
        token = await plugin.create_token(USER)
    notebook_api = f"{live_stack.hub_url}/user/{USER}/{server}/api"
    headers = {"Authorization": f"token {token}"}
    assert httpx.get(notebook_api, headers=headers, timeout=30).status_code == 200
    before = hub_container_id()

    subprocess.run(["docker", "service", "update", "--force", "--quiet", f"{STACK}_jupyterhub"],
                   check=True, capture_output=True, timeout=180)
    wait_for(lambda: hub_container_id() not in ("", before) and hub_healthy(live_stack.hub_url), 120,
             "the new hub container to answer")

    async with live_stack.plugin() as plugin:
        model = await plugin.get_server(USER, server)
        assert model is not None, "the restarted hub forgot the server"
        assert model["ready"] is True
        # The proxy's routes are rebuilt from the database: the notebook answers at the same URL.
        answer = httpx.get(notebook_api, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text[:300]
        await plugin.stop_server(USER, server)
        await plugin.wait_gone(USER, server, timeout=60)
    wait_for(lambda: not live_stack.notebook_services(USER, server), 30, "the notebook service to be removed")
