"""The hub killed (`docker kill`: swarm starts a new container) or force-updated (`docker service update --force`)
while N notebooks run: afterwards the new hub container knows all N, ready, and each answers through the proxy.

Default run: 3 notebooks, hub killed. `-m slow`: 20 notebooks, killed and force-updated (about 4 minutes on two
cores; see docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import subprocess
import time

import httpx
import pytest

from hub.standin import options as xnat_options
from tests.helpers.fault_stack import HUB_SERVICE, FaultStack, notebook_options, stop_all
from tests.helpers.live import E2E_TIMEOUT, xnat_launch
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(E2E_TIMEOUT)]


async def launch_all(stack: FaultStack, users: list[str]) -> dict[str, str]:
    """Launch one notebook per user, XNAT-style, a few at a time; {user: server}."""
    servers: dict[str, str] = {}
    gate = asyncio.Semaphore(5)

    async def one(user: str) -> None:
        async with gate:
            server = xnat_options.event_tracking_id()
            await xnat_launch(stack, user, server, notebook_options(user, server), timeout=300)
            servers[user] = server

    await asyncio.gather(*(one(user) for user in users))
    return servers


async def tokens_for(stack: FaultStack, users: list[str]) -> dict[str, str]:
    async with stack.plugin() as plugin:
        return {user: await plugin.create_token(user) for user in users}


def answering(stack: FaultStack, servers: dict[str, str], tokens: dict[str, str]) -> list[str]:
    """The users whose notebook does not answer through the proxy."""
    silent = []
    with httpx.Client(timeout=20) as client:
        for user, server in servers.items():
            answer = client.get(f"{stack.hub_url}/user/{user}/{server}/api",
                                headers={"Authorization": f"token {tokens[user]}"})
            if answer.status_code != 200:
                silent.append(f"{user}: {answer.status_code}")
    return silent


async def known_ready(stack: FaultStack, servers: dict[str, str]) -> list[str]:
    """The users whose server the hub does not know as ready."""
    missing = []
    async with stack.plugin() as plugin:
        for user, server in servers.items():
            model = await plugin.get_server(user, server)
            if not model or model.get("ready") is not True:
                missing.append(user)
    return missing





def restart_hub(stack: FaultStack, how: str) -> float:
    """Kill or force-update the hub; seconds until a new hub container answers /hub/health."""
    before = stack.hub_container()
    started = time.monotonic()
    assert before, "no hub container"
    if how == "killed":
        subprocess.run(["docker", "kill", before], check=True, capture_output=True, timeout=60)
    else:
        subprocess.run(["docker", "service", "update", "--force", "--quiet", HUB_SERVICE], check=True,
                       capture_output=True, timeout=300)
    wait_for(lambda: stack.hub_container() not in ("", before) and stack.hub_healthy(), 180,
             "a new hub container to answer")
    return time.monotonic() - started


@pytest.mark.parametrize(
    ("count", "how"),
    [
        (3, "killed"),
        pytest.param(20, "killed", marks=pytest.mark.slow),
        pytest.param(20, "force-updated", marks=pytest.mark.slow),
    ],
)
def test_restarted_hub_still_knows_and_reaches_every_server(fault_stack: FaultStack, count: int, how: str) -> None:
    users = [f"flt{how[0]}{i:02d}" for i in range(count)]
    started = time.monotonic()
    servers = asyncio.run(launch_all(fault_stack, users))
    launched = time.monotonic() - started
    try:
        tokens = asyncio.run(tokens_for(fault_stack, users))
        assert answering(fault_stack, servers, tokens) == []
        services_before = {user: fault_stack.notebook_services(user)[0]["ID"] for user in users}

        hub_back = restart_hub(fault_stack, how)
        started = time.monotonic()

        assert asyncio.run(known_ready(fault_stack, servers)) == []
        # the proxy's routes come back from the hub's database (the proxy lives in the new container)
        wait_for(lambda: answering(fault_stack, servers, tokens) == [], 60, "every notebook to answer again")
        print(f"{count} notebooks launched in {launched:.1f} s; hub {how}: new hub answering after {hub_back:.1f} s, "
              f"all {count} known and answering through the proxy {time.monotonic() - started:.1f} s later")
        # the same services: nothing was respawned or orphaned
        assert {user: fault_stack.notebook_services(user)[0]["ID"] for user in users} == services_before
    finally:
        asyncio.run(stop_all(fault_stack, servers))
    wait_for(lambda: all(not fault_stack.notebook_services(user) for user in users), 60,
             "every notebook service to be removed")
