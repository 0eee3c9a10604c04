"""LiveBackend against a real JupyterHub and the live Docker engine: the join, actions, read-only, audit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import cast

import pytest

from console.backend.docker import DockerAccess
from console.backend.live import LiveBackend
from console.backend.models import READ_ONLY, Health, Outcome, ServerRow, ServiceInfo, TaskInfo
from console.backend.swarm_join import join_swarm
from console.config import ConsoleConfig
from tests.helpers.console_backend import TEST_NETWORK, TEST_PREFIX, TEST_STACK

pytestmark = pytest.mark.timeout(180)

OPTIONS = {"xsiType": "xnat:mrSessionData", "itemId": "XNAT_E00001", "projectId": "PRJ1", "eventTrackingId": "x"}


@pytest.fixture
def config(local_hub, tmp_path) -> ConsoleConfig:
    return ConsoleConfig(
        hub_url=local_hub.api_url,
        token=local_hub.console_token,
        audit_log=str(tmp_path / "audit.log"),
        stack=TEST_STACK,
        network=TEST_NETWORK,
        timeout=10,
    )


@pytest.fixture
async def backend(config):
    live = LiveBackend(config)
    yield live
    await live.aclose()


@pytest.fixture
def hub_user(local_hub):
    names = []

    def make(name: str) -> str:
        with local_hub.admin() as admin:
            assert admin.post("users", json={"usernames": [name]}).status_code in (201, 409)
        names.append(name)
        return name

    yield make
    with local_hub.admin() as admin:
        for name in names:
            admin.delete(f"users/{name}")


async def start_ready(backend: LiveBackend, user: str, server: str, options: dict) -> None:
    await backend.hub.start_server(user, server, options)
    async for event in backend.hub.progress(user, server):
        if event.failed:
            raise AssertionError(event.message)


async def test_hub_info_reports_version_scopes_routes(backend):
    info = await backend.hub_info()
    assert info.version.startswith("5.") and info.health == Health.OK
    assert info.spawner.endswith("HTTPServerSpawner") and info.missing_scopes == ()
    assert info.proxy_routes is not None and info.proxy_routes >= 1


async def test_servers_join_swarm_service_task_stats(backend, hub_user, make_service):
    user = hub_user("alice-live")
    await start_ready(backend, user, "mri", OPTIONS)
    make_service(
        "alice-live-mri",
        "sleep 600",
        labels={"org.xnat.jupyterhub.user": user, "org.xnat.jupyterhub.server": "mri"},
        limits={"cpu_limit": 1_000_000_000, "mem_limit": 128 * 1024 * 1024},
    )

    async def joined():
        rows = {r.key: r for r in await backend.hub_servers()}
        row = rows.get(f"{user}/mri")
        return row if row and row.task_state == "running" else None

    deadline = asyncio.get_running_loop().time() + 60
    row = None
    while row is None and asyncio.get_running_loop().time() < deadline:
        row = await joined()
        if row is None:
            await asyncio.sleep(0.2)
    assert row is not None, "the row never showed its running task"
    assert row.state == "ready" and row.service_name == TEST_PREFIX + "alice-live-mri"
    assert (row.xsi_type, row.item_id, row.project_id) == ("xnat:mrSessionData", "XNAT_E00001", "PRJ1")
    assert row.node and row.image == "xjc-test/tiny:latest"
    assert row.cpu_limit == 1.0 and row.mem_limit == 128 * 1024 * 1024
    assert row.stats is not None and row.stats.unavailable_reason == "" and row.stats.mem_bytes
    # What an operator types resolves to that service, and its logs come through it.
    assert backend.resolve_service(f"{user}/mri") == TEST_PREFIX + "alice-live-mri"
    calls = {"nodes": 0}
    read_nodes = backend.docker.nodes

    def counting_nodes():
        calls["nodes"] += 1
        return read_nodes()

    backend.docker.nodes = counting_nodes
    overview = await backend.overview()
    assert overview.users >= 1 and overview.running_servers >= 1 and overview.nodes >= 1
    assert calls["nodes"] == 1, "one refresh reads the node list once, for the swarm's health and the counts"
    await backend.hub.stop_server(user, "mri", remove=True)


def test_join_marks_a_pending_spawn_with_a_rejected_task_failed():
    now = datetime.now(UTC)
    rows = [ServerRow("bob", "", "pending spawn", None, None), ServerRow("carol", "x", "ready", now, now)]
    services = [
        ServiceInfo("s1", "jupyter-bob", "img", "replicated", 0, 1, now),  # found by dockerspawner's name
        ServiceInfo("s2", "whatever", "img", "replicated", 1, 1, now, notebook_user="carol", notebook_server="x"),
    ]
    tasks = [
        TaskInfo("t1", "s1", 1, "n1", "node1", "rejected", "shutdown", "rejected", "invalid mount config", now),
        TaskInfo(
            "t2", "s1", 1, "n1", "node1", "rejected", "running", "rejected", "bind source path does not exist", now
        ),
        TaskInfo("t3", "s2", 1, "n1", "node1", "running", "running", "started", "", now),
    ]
    bob, carol = join_swarm(rows, services, tasks)
    assert bob.state == "failed" and bob.task_error == "bind source path does not exist"
    assert carol.state == "ready" and carol.service_name == "whatever" and carol.task_state == "running"


async def test_stop_restart_delete_are_audited(backend, hub_user, config):
    user = hub_user("dave-live")
    await start_ready(backend, user, "nb", OPTIONS)

    messages: list[str] = []
    assert (await backend.restart_server(user, "nb", progress=messages.append)).outcome is Outcome.OK
    assert messages[0] == f"stopping {user}/nb" and "stopped" in messages
    assert any("Server ready" in m or "ready" in m.lower() for m in messages[3:])
    row = await backend.hub.server(user, "nb")
    assert row.state == "ready" and row.user_options == OPTIONS  # the same user_options

    result = await backend.stop_server(user, "nb")
    assert result.ok
    assert (await backend.hub.server(user, "nb")) is None or (await backend.hub.server(user, "nb")).state == "stopped"
    result = await backend.delete_server(user, "nb")
    assert result.ok
    rows = await backend.hub.servers(include_stopped=True)
    assert f"{user}/nb" not in {r.key for r in rows}
    refused = await backend.delete_server(user, "")
    assert not refused.ok and "default server" in refused.detail

    entries = backend.audit.entries()
    assert [(e["action"], e["outcome"]) for e in entries] == [
        ("restart", "ok"),
        ("stop", "ok"),
        ("delete", "ok"),
        ("delete", "failed"),
    ]
    assert config.token not in (backend.audit.path.read_text())


async def test_read_only_refuses_every_change_and_changes_nothing(config, hub_user, local_hub):
    config.read_only = True
    backend = LiveBackend(config)
    user = hub_user("erin-live")
    try:
        await start_ready(backend, user, "nb", OPTIONS)  # set-up through the client, not the backend's actions
        results = [
            await backend.stop_server(user, "nb"),
            await backend.delete_server(user, "nb"),
            await backend.restart_server(user, "nb"),
            backend.deploy(),
            backend.stop_stack(),
        ]
        assert all(r.outcome is Outcome.REFUSED and r.detail == READ_ONLY for r in results)
        server = await backend.hub.server(user, "nb")
        assert server is not None and server.state == "ready"  # nothing was stopped
        entries = backend.audit.entries()
        assert [(e["action"], e["outcome"]) for e in entries] == [
            ("stop", "refused"),
            ("delete", "refused"),
            ("restart", "refused"),
            ("deploy", "refused"),
            ("stop", "refused"),
        ]
        await backend.hub.stop_server(user, "nb", remove=True)
    finally:
        await backend.aclose()


async def test_restart_of_a_missing_server_fails_cleanly(backend, hub_user):
    user = hub_user("frank-live")
    result = await backend.restart_server(user, "ghost")
    assert result.outcome is Outcome.FAILED and "no server to restart" in result.detail
    assert backend.audit.entries()[-1]["outcome"] == "failed"


async def test_dead_hub_is_a_connection_error_not_a_crash(tmp_path):
    backend = LiveBackend(
        ConsoleConfig(hub_url="http://127.0.0.1:9/hub/api", token="t", audit_log=str(tmp_path / "a"), timeout=2)
    )
    try:
        with pytest.raises(ConnectionError, match="cannot connect"):
            await backend.hub_info()
        overview = await backend.overview()
        assert {c.name: c.health for c in overview.components}["hub"] == Health.DOWN
    finally:
        await backend.aclose()


async def test_restart_starts_a_stopped_named_server_with_its_user_options(backend, hub_user):
    user = hub_user("gina-live")
    await start_ready(backend, user, "nb", OPTIONS)
    assert (await backend.stop_server(user, "nb")).ok

    messages: list[str] = []
    assert (await backend.restart_server(user, "nb", progress=messages.append)).ok
    assert not any(m.startswith("stopping") for m in messages)  # nothing to stop
    row = await backend.hub.server(user, "nb")
    assert row.state == "ready" and row.user_options == OPTIONS
    await backend.hub.stop_server(user, "nb", remove=True)


async def test_stats_sample_a_batch_per_refresh_oldest_first_and_forget_gone_containers(tmp_path):
    from console.backend.live import STATS_BATCH
    from console.backend.models import ContainerStats

    sampled: list[str] = []

    class CountingDocker:  # only the one call _sample_stats makes; the cache logic is what is under test
        def container_stats(self, task):
            sampled.append(task.container_id)
            return ContainerStats(mem_bytes=len(sampled))

        def close(self):
            pass

    now = datetime.now(UTC)
    count = STATS_BATCH + 12
    rows = [ServerRow(f"u{i}", "", "ready", now, now, service_id=f"s{i}") for i in range(count)]
    tasks = [
        TaskInfo(f"t{i}", f"s{i}", 1, "n", "node", "running", "running", "", "", now, f"c{i}") for i in range(count)
    ]
    backend = LiveBackend(ConsoleConfig(audit_log=str(tmp_path / "a")), docker=cast(DockerAccess, CountingDocker()))
    async def sampled_rows(rows: list[ServerRow], tasks: list[TaskInfo]) -> list[ServerRow]:
        async def swarm() -> tuple[list[ServiceInfo], list[TaskInfo]]:
            return [], tasks

        await backend._sample_stats(swarm())
        return backend._with_stats(rows, tasks)

    try:
        first = await sampled_rows(rows, tasks)
        assert len(sampled) == STATS_BATCH and sum(r.stats is not None for r in first) == STATS_BATCH
        second = await sampled_rows(rows, tasks)
        # The 12 never sampled come first in the second batch; after it every row shows a sample.
        assert {f"c{i}" for i in range(count)} - set(sampled[:STATS_BATCH]) <= set(sampled[STATS_BATCH:])
        assert all(r.stats is not None for r in second)
        await sampled_rows(rows[:1], tasks[:1])
        assert set(backend._stats) == {"c0"}, "samples of containers no longer running are dropped"
    finally:
        await backend.aclose()
