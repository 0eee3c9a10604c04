"""A real two-node swarm (scripts/node2.sh): the project's spawner and console backend against its manager.

- XNAT's placement constraints (node labels, `==` and `!=`) land notebook tasks on the node they name.
- A worker task's output reaches the console backend through service logs, prefixed with its task.
- Draining or stopping the worker shows in the console backend's nodes, tasks and swarm health, and clears.
- The manager's engine stopped and started (its socket gone meanwhile): the console backend reports it and
  recovers by itself.

The spawner talks to the isolated manager through dockerspawner's `client_kwargs`; the console backend through
its `docker_host` setting (what `--docker-host` / `DOCKER_HOST` give it).
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from console.backend.docker import DockerUnavailable
from console.backend.live import LiveBackend
from console.backend.models import Health
from console.config import ConsoleConfig
from hub.spawner import XnatSwarmSpawner
from hub.standin.options import user_options
from tests.helpers.node2 import PREFIX, Node2
from tests.helpers.spawner import Xnat, make_spawner
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.timeout(240)]

SERVER = "20240615T101530123Z"


class Node2Spawner(XnatSwarmSpawner):
    # dockerspawner keeps one Docker client per spawner class: this class's client is the isolated manager's,
    # whatever other tests in the session did with XnatSwarmSpawner's.
    _client = None


def spawner_on(node2: Node2, network: str, user: str, created: list[str]) -> XnatSwarmSpawner:
    spawner = make_spawner(
        user, SERVER, prefix=PREFIX, network_name=network,
        client_kwargs={"base_url": node2.manager},
        # `sleep` as PID 1 ignores SIGTERM: a 1 s grace period spares each removal Docker's 10 s default
        extra_container_spec={"stop_grace_period": 1_000_000_000},
    )
    spawner.__class__ = Node2Spawner
    created.append(spawner.service_name)
    return spawner


def backend_on(node2: Node2, tmp_path: Path, **config: Any) -> LiveBackend:
    return LiveBackend(ConsoleConfig(docker_host=node2.manager, audit_log=str(tmp_path / "audit.log"), **config))


def launch(xnat: Xnat, node2: Node2, user: str, *, constraints: list[str], command: str | None = None) -> None:
    xnat.standin.set_user_options(user, SERVER, user_options(
        user, SERVER, image=node2.image, command=command or "/bin/sleep 600", mounts=[],
        cpu_limit=None, cpu_reservation=None, mem_limit="32M", mem_reservation=None, constraints=constraints,
    ))


def running_task(backend: LiveBackend, service: str) -> Any:
    tasks = [t for t in backend.tasks(service) if t.state == "running" and t.desired_state == "running"]
    return tasks[0] if len(tasks) == 1 else None


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [("node.labels.xjh.node==worker", "worker"), ("node.labels.xjh.node!=worker", "manager")],
)
async def test_xnat_constraints_place_the_notebook_on_the_named_node(
    xnat: Xnat, node2: Node2, node2_network: str, node2_services: list[str], tmp_path: Path,
    constraint: str, expected: str,
) -> None:
    user = f"N2{secrets.token_hex(3)}.Place"
    launch(xnat, node2, user, constraints=[constraint])
    spawner = spawner_on(node2, node2_network, user, node2_services)
    backend = backend_on(node2, tmp_path)
    try:
        assert await spawner.start() == (spawner.service_name, 8888)
        task = wait_for(lambda: running_task(backend, spawner.service_name), 30, "the notebook task to run")
        assert task.node_id == {"worker": node2.worker_id, "manager": node2.manager_id}[expected]
        spec = backend.inspect_service(spawner.service_name)["Spec"]
        assert spec["TaskTemplate"]["Placement"]["Constraints"] == [constraint]
    finally:
        await spawner.stop()
        await backend.aclose()


async def test_a_worker_tasks_logs_and_stats_reach_the_console(
    xnat: Xnat, node2: Node2, node2_network: str, node2_services: list[str], tmp_path: Path,
) -> None:
    user = f"N2{secrets.token_hex(3)}.Logs"
    marker = f"xjh-n2-marker-{secrets.token_hex(4)}"
    launch(xnat, node2, user, constraints=["node.labels.xjh.node==worker"],
           command=f'/bin/sh -c "echo {marker} from the worker; exec /bin/sleep 600"')
    spawner = spawner_on(node2, node2_network, user, node2_services)
    plain = backend_on(node2, tmp_path)
    with_worker_engine = backend_on(node2, tmp_path, node_engines={node2.worker_id: node2.worker})
    try:
        await spawner.start()
        task = wait_for(lambda: running_task(plain, spawner.service_name), 30, "the notebook task to run")
        assert task.node_id == node2.worker_id

        def marker_line() -> Any:
            with plain.service_logs(spawner.service_name) as lines:
                return next((line for line in lines if marker in line.text), None)

        line = wait_for(marker_line, 30, "the worker task's line in the service logs")
        assert line.text == f"{marker} from the worker"
        assert line.task.startswith(f"{spawner.service_name}.1.{task.id[:12]}@")

        # The manager's engine cannot see the worker's containers: stats say so, unless the worker's engine
        # is named for its node (`node_engines` in the console's config).
        assert plain.container_stats(task).unavailable_reason.startswith("n/a: task runs on")
        stats = with_worker_engine.container_stats(task)
        assert stats.unavailable_reason in (None, "") and stats.mem_bytes and stats.mem_limit_bytes == 32 * 1024**2
    finally:
        await spawner.stop()
        await plain.aclose()
        await with_worker_engine.aclose()


async def test_draining_the_worker_shows_in_nodes_and_tasks_and_clears(
    xnat: Xnat, node2: Node2, node2_network: str, node2_services: list[str], manager_api: Any, tmp_path: Path,
) -> None:
    user = f"N2{secrets.token_hex(3)}.Drain"
    launch(xnat, node2, user, constraints=["node.labels.xjh.node==worker"])
    spawner = spawner_on(node2, node2_network, user, node2_services)
    backend = backend_on(node2, tmp_path)

    def availability(value: str) -> None:
        spec = manager_api.inspect_node(node2.worker_id)
        manager_api.update_node(node2.worker_id, spec["Version"]["Index"], {**spec["Spec"], "Availability": value})

    def worker() -> Any:
        return next(n for n in backend.nodes() if n.id == node2.worker_id)

    try:
        await spawner.start()
        first = wait_for(lambda: running_task(backend, spawner.service_name), 30, "the notebook task to run")
        availability("drain")
        assert worker().availability == "drain"

        def stranded() -> Any:
            tasks = backend.tasks(spawner.service_name)
            old = next(t for t in tasks if t.id == first.id)
            new = [t for t in tasks if t.id != first.id and t.desired_state == "running"]
            return old.state == "shutdown" and new and new[0].state == "pending" and new[0]

        pending = wait_for(stranded, 60, "the drained task to stop and its replacement to wait for a node")
        assert "no suitable node" in pending.error
        # a drained node is not a broken swarm
        assert {c.name: c.health for c in backend.docker_health()}["swarm"] == Health.OK

        availability("active")
        assert worker().availability == "active"
        again = wait_for(lambda: running_task(backend, spawner.service_name), 60, "the task to run again")
        assert again.node_id == node2.worker_id and again.id != first.id
    finally:
        availability("active")
        await spawner.stop()
        await backend.aclose()


def test_a_stopped_worker_shows_as_down_and_recovers(node2: Node2, tmp_path: Path) -> None:
    backend = backend_on(node2, tmp_path)

    def worker_state() -> str:
        return next(n.state for n in backend.nodes() if n.id == node2.worker_id)

    def swarm() -> Any:
        return next(c for c in backend.docker_health() if c.name == "swarm")

    try:
        assert worker_state() == "ready" and swarm().health == Health.OK
        node2.run("stop", "wkr")
        wait_for(lambda: worker_state() == "down", 90, "the manager to see the worker down")
        health = swarm()
        assert health.health == Health.DEGRADED and "not ready" in health.detail
        node2.run("up")
        wait_for(lambda: worker_state() == "ready", 90, "the worker to be ready again")
        assert swarm().health == Health.OK
    finally:
        node2.run("up")
        backend.docker.close()


def test_the_manager_engine_restarting_is_reported_and_recovered(node2: Node2, tmp_path: Path) -> None:
    """The engine under a running console backend stops (its socket goes away) and starts again: the same
    backend object reports the fault with the engine's address, then answers again by itself."""
    backend = backend_on(node2, tmp_path)
    try:
        assert {c.name: c.health for c in backend.docker_health()} == {"engine": Health.OK, "swarm": Health.OK}
        assert backend.nodes()
        node2.run("stop", "mgr")
        engine, swarm = backend.docker_health()
        assert engine.health == Health.DOWN and swarm.health == Health.UNKNOWN
        assert engine.detail == f"no Docker engine answers at {node2.manager} (from --docker-host/config)"
        with pytest.raises(DockerUnavailable, match="no Docker engine answers"):
            backend.services()
        node2.run("up")
        assert {c.name: c.health for c in backend.docker_health()} == {"engine": Health.OK, "swarm": Health.OK}
        assert len(backend.nodes()) == 2
    finally:
        node2.run("up")
        backend.docker.close()


async def test_the_console_shows_the_engine_gone_within_a_refresh_and_recovers(node2: Node2, tmp_path: Path) -> None:
    """The interactive console on the live backend (its Docker engine: the isolated manager; no hub at all): the
    manager's engine stops, the console shows it down within one refresh and keeps running; the engine comes
    back, the console shows it healthy again by itself."""
    import asyncio
    import time

    from console.app import XnatConsoleApp

    refresh = 2.0
    backend = backend_on(node2, tmp_path, hub_url="http://127.0.0.1:9/jupyterhub/hub/api", timeout=3.0)
    app = XnatConsoleApp(backend, replace(backend.config, refresh_interval=refresh, events_interval=1.0,
                                          xnat_interval=60.0, save_dir=str(tmp_path)))

    def engine() -> Any:
        return next((c for c in app.components if c.name == "engine"), None)

    async def until(condition: Any, timeout: float, what: str) -> float:
        started = time.monotonic()
        while not condition():
            assert app.is_running, "the console exited"
            assert time.monotonic() - started < timeout, f"timed out after {timeout} s waiting for {what}"
            await asyncio.sleep(0.1)
        return time.monotonic() - started

    try:
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.press("4")  # the nodes screen
            await until(lambda: engine() is not None and engine().health == Health.OK, 30, "the engine to show ok")
            await asyncio.to_thread(node2.run, "stop", "mgr")
            shown_after = await until(lambda: engine().health == Health.DOWN, 3 * refresh, "the engine to show down")
            assert shown_after <= refresh + backend.config.timeout, f"shown after {shown_after:.1f} s"
            await asyncio.to_thread(node2.run, "up")
            back_after = await until(
                lambda: engine().health == Health.OK, 3 * refresh + 10, "the engine to show ok again"
            )
            print(f"engine stopped: shown down after {shown_after:.1f} s; back: shown ok {back_after:.1f} s after "
                  f"`node2.sh up` returned (refresh every {refresh:g} s)")
            assert app.is_running
    finally:
        node2.run("up")
        await backend.aclose()
