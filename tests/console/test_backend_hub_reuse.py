"""LiveBackend.hub_servers(hub_max_age=...) against a real JupyterHub: the hub's last answer is reused only while
the notebook swarm is unchanged, so the Servers screen asks the hub less without showing a start or stop late.

The swarm is an in-memory one (a DockerAccess whose notebook services and tasks live in this test), so no engine
is needed; the hub, its proxy and its servers are real.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from console.backend.docker import DockerAccess
from console.backend.live import LiveBackend
from console.backend.models import ComponentHealth, ContainerStats, Health, NodeInfo, ServiceInfo, TaskInfo
from console.config import ConsoleConfig
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.timeout(120)


class InMemorySwarm(DockerAccess):
    """Notebook services and tasks that exist only here; nothing else is asked of an engine."""

    def __init__(self) -> None:
        super().__init__("unix:///nonexistent/engine.sock")
        self.notebook_services: list[ServiceInfo] = []
        self.notebook_tasks: list[TaskInfo] = []

    def add_notebook(self, user: str, server: str) -> None:
        now = datetime.now(UTC)
        number = len(self.notebook_services)
        service = ServiceInfo(f"svc{number}", f"jupyter-{user}--{server}", "tiny", "replicated", 1, 1, now,
                              notebook_user=user, notebook_server=server)
        self.notebook_services.append(service)
        self.notebook_tasks.append(
            TaskInfo(f"task{number}", service.id, 1, "n1", "node1", "running", "running", "", "", now, f"c{number}")
        )

    def health_and_nodes(self) -> tuple[list[ComponentHealth], list[NodeInfo]]:
        node = NodeInfo("n1", "node1", "manager", "active", "ready", leader=True)
        health = [ComponentHealth("engine", Health.OK, "in memory"), ComponentHealth("swarm", Health.OK, "1 node")]
        return health, [node]

    def services(self, *, all_services: bool = False) -> list[ServiceInfo]:
        return list(self.notebook_services)

    def tasks(self, service: str | None = None, *, desired_running: bool = False) -> list[TaskInfo]:
        return [t for t in self.notebook_tasks if service is None or t.service_id == service]

    def container_stats(self, task: TaskInfo) -> ContainerStats:
        return ContainerStats(cpu_percent=1.0, mem_bytes=1 << 20)


@pytest.fixture
async def swarm_and_backend(local_hub, tmp_path):
    swarm = InMemorySwarm()
    config = ConsoleConfig(hub_url=local_hub.api_url, token=local_hub.console_token,
                           audit_log=str(tmp_path / "audit.log"), timeout=10)
    backend = LiveBackend(config, docker=swarm)
    yield swarm, backend
    await backend.aclose()


def stop_through_the_hub(local_hub, user: str) -> None:
    """Stop the server as the hub's admin page would, behind the console's back, and wait until it has."""
    with local_hub.admin() as admin:
        assert admin.delete(f"users/{user}/servers/nb").status_code in (202, 204)

        def stopped() -> bool:
            return "nb" not in (admin.get(f"users/{user}").json().get("servers") or {})

        wait_for(stopped, 60, "the hub server to stop", interval=0.2)


@pytest.fixture
def started_server(local_hub):
    """A user with a running named server, started and stopped through the hub's own API."""
    name = "reuse-user"
    with local_hub.admin() as admin:
        assert admin.post("users", json={"usernames": [name]}).status_code in (201, 409)
        assert admin.post(f"users/{name}/servers/nb", json={}).status_code in (201, 202)

        def ready() -> bool:
            servers = admin.get(f"users/{name}").json().get("servers") or {}
            return bool(servers.get("nb", {}).get("ready"))

        wait_for(ready, 60, "the hub server to be ready", interval=0.2)
    yield name
    with local_hub.admin() as admin:
        admin.delete(f"users/{name}")


async def test_the_hub_answer_is_reused_until_the_swarm_changes(local_hub, swarm_and_backend, started_server):
    swarm, backend = swarm_and_backend
    user = started_server
    swarm.add_notebook(user, "nb")
    first = {r.key: r for r in await backend.hub_servers(hub_max_age=300)}
    row = first[f"{user}/nb"]
    assert row.state == "ready" and row.task_state == "running"
    assert row.stats is not None and row.stats.mem_bytes == 1 << 20  # sampled while the hub answered

    # Stopped behind the console's back, with the swarm as it was: the hub is not asked again yet.
    stop_through_the_hub(local_hub, user)
    reused = {r.key for r in await backend.hub_servers(hub_max_age=300)}
    assert f"{user}/nb" in reused
    # Without a max age (the CLI, ctrl+r) the hub is always asked.
    assert f"{user}/nb" not in {r.key for r in await backend.hub_servers()}


async def test_a_swarm_change_asks_the_hub_again(local_hub, swarm_and_backend, started_server):
    swarm, backend = swarm_and_backend
    user = started_server
    swarm.add_notebook(user, "nb")
    assert f"{user}/nb" in {r.key for r in await backend.hub_servers(hub_max_age=300)}
    stop_through_the_hub(local_hub, user)
    swarm.notebook_tasks = [replace(t, state="shutdown", desired_state="shutdown") for t in swarm.notebook_tasks]
    rows = {r.key: r for r in await backend.hub_servers(hub_max_age=300)}
    # The stop reached the swarm: the hub is asked, and no longer lists the server among the active ones.
    assert f"{user}/nb" not in rows


async def test_an_old_answer_is_not_reused(local_hub, swarm_and_backend, started_server):
    swarm, backend = swarm_and_backend
    user = started_server
    swarm.add_notebook(user, "nb")
    assert f"{user}/nb" in {r.key for r in await backend.hub_servers(hub_max_age=300)}
    stop_through_the_hub(local_hub, user)
    assert f"{user}/nb" not in {r.key for r in await backend.hub_servers(hub_max_age=1e-9)}


async def test_the_overview_counts_reuse_the_same_answer(local_hub, swarm_and_backend, started_server):
    swarm, backend = swarm_and_backend
    user = started_server
    swarm.add_notebook(user, "nb")
    assert (await backend.overview(hub_max_age=300)).running_servers == 1
    stop_through_the_hub(local_hub, user)
    assert (await backend.overview(hub_max_age=300)).running_servers == 1  # the swarm shows no change yet
    assert (await backend.overview()).running_servers == 0
