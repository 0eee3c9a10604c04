"""N simultaneous XNAT-style launches (store options, create the user, POST the camelCase body, poll): each one
becomes ready or fails with a clean "Spawn failed: ..." message in its progress stream, and after XNAT stops them
nothing is left: no notebook service, no container.

Default run: 5 launches. `-m slow`: 20 (see docs/reliability.md for the time it takes on two cores).
"""

from __future__ import annotations

import asyncio
import json
import subprocess

import httpx
import pytest

from hub.standin import options as xnat_options
from hub.standin.plugin import HubError
from tests.helpers.fault_stack import FaultStack, notebook_options, stop_all
from tests.helpers.live import E2E_TIMEOUT, xnat_launch
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(E2E_TIMEOUT)]


async def last_progress_event(stack: FaultStack, user: str, server: str) -> dict:
    """The progress stream of a finished spawn, read to its end (the failure event for a failed one)."""
    token = stack.secret("xnat_service_token")
    url = f"{stack.api_url}/users/{user}/servers/{server}/progress"
    last: dict = {}
    async with (
        httpx.AsyncClient(headers={"Authorization": f"token {token}"}, timeout=60) as client,
        client.stream("GET", url) as response,
    ):
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    last = json.loads(line[len("data:"):])
    return last


def leftovers(users: list[str]) -> list[str]:
    """Notebook services and containers of these users still on the engine."""
    found = []
    for user in users:
        for kind in ("service", "container"):
            args = ["docker", kind, "ls", "-q", "--filter", f"label=org.xnat.jupyterhub.user={user}"]
            if kind == "container":
                args.insert(3, "-a")
            found += [f"{kind} of {user}: {i}" for i in
                      subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()]
    return found


@pytest.mark.parametrize("count", [5, pytest.param(20, marks=pytest.mark.slow)])
def test_simultaneous_xnat_launches_end_ready_or_cleanly_refused(fault_stack: FaultStack, count: int) -> None:
    users = [f"load{count}x{i:02d}" for i in range(count)]
    servers = {user: xnat_options.event_tracking_id() for user in users}
    outcomes: dict[str, str] = {}

    async def one(user: str) -> None:
        server = servers[user]
        try:
            await xnat_launch(fault_stack, user, server, notebook_options(user, server), timeout=300)
            outcomes[user] = "ready"
        except HubError as e:
            event = await last_progress_event(fault_stack, user, server)
            message = str(event.get("message", ""))
            assert event.get("failed") is True and message.startswith("Spawn failed: "), (user, str(e), event)
            assert "Traceback" not in message and len(message) < 1000, message
            outcomes[user] = message

    async def all_at_once() -> None:
        await asyncio.gather(*(one(user) for user in users))

    try:
        asyncio.run(all_at_once())
        assert len(outcomes) == count
        print(f"{count} simultaneous launches: {sum(o == 'ready' for o in outcomes.values())} ready, "
              f"failures: {[o for o in outcomes.values() if o != 'ready']}")
    finally:
        asyncio.run(stop_all(fault_stack, servers))
    wait_for(lambda: leftovers(users) == [], 60, "every notebook service and container to be gone")
