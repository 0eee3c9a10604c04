"""The Docker engine restarted under a running hub: a real `jupyterhub` process with XnatSwarmSpawner, whose Docker
is the isolated swarm's manager (DOCKER_HOST, as dockerspawner reads it), never the shared engine.

While the engine is down the hub keeps answering (health, API) and a spawn fails at once with the spawner's clean
message; once the engine is back, without touching the hub, the next spawn reaches Docker again (its task on the
worker cannot start its command, and Docker's own words come back to the user), and nothing is left behind.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.standin.options import user_options
from tests.helpers.node2 import PREFIX, Node2
from tests.helpers.real_hub import SERVER, RealHub, run_real_hub, start_failing
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.timeout(240)]

NO_DOCKER = "The hub cannot reach Docker to start the notebook. Try again later, or tell your administrator."


@pytest.fixture
def hub_on_node2(node2: Node2, node2_network: str, tmp_path: Path) -> Iterator[tuple[RealHub, subprocess.Popen]]:
    with run_real_hub(
        tmp_path, network=node2_network, prefix=PREFIX, allowed_prefixes="/tmp",
        extra_env={"DOCKER_HOST": node2.manager},  # the isolated manager: dockerspawner reads it
    ) as running:
        yield running


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
