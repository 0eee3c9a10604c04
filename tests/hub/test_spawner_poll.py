"""XnatSwarmSpawner.poll after a node is lost: only a task that runs and should run counts as the notebook running.
The Docker answers are the shapes swarm 20.10 gave on the multi-node cluster (tests/multinode, worker lost)."""

from __future__ import annotations

from typing import Any

from tests.helpers.spawner import make_spawner


def task(state: str, desired: str, created: str) -> dict[str, Any]:
    return {"Status": {"State": state}, "DesiredState": desired, "CreatedAt": created}


def spawner_seeing(tasks: list[dict[str, Any]], *, service: bool = True, pending: str | None = None):
    spawner = make_spawner()

    async def docker(method: str, *args: Any, **kwargs: Any) -> Any:
        assert method == "tasks"
        return tasks

    async def get_object() -> dict | None:
        return {"ID": "svc"} if service else None

    spawner.docker = docker  # type: ignore[method-assign]
    spawner.get_object = get_object  # type: ignore[method-assign]
    spawner._spawn_pending = pending == "spawn"
    return spawner


async def test_a_running_task_that_should_run_is_running():
    assert await spawner_seeing([task("running", "running", "2026-12-02T06:00:00Z")]).poll() is None


async def test_the_lost_nodes_stale_task_and_a_pending_replacement_are_not_running():
    # the lost worker's task still says running (nobody can update it) but swarm wants it shut down, and the
    # replacement waits for a node its placement allows: dockerspawner would call this running forever
    spawner = spawner_seeing([
        task("running", "shutdown", "2026-12-02T06:00:00Z"),
        task("pending", "ready", "2026-12-02T06:05:00Z"),
    ])
    status = await spawner.poll()
    assert status is not None and "pending" in str(status)


async def test_no_service_is_stopped():
    assert await spawner_seeing([], service=False).poll() == 0
