"""The spawn progress says why a first launch on a node is slow: the task is `preparing` (pulling its image).

Docker's task states are replayed here (a node really pulling a multi-GB image is a live-cluster matter); the
message is what JupyterHub streams to XNAT's and the user's progress view.
"""

from __future__ import annotations

from typing import Any

from tests.helpers.spawner import make_spawner


async def test_preparing_task_says_it_is_pulling_the_image(monkeypatch: Any) -> None:
    spawner = make_spawner(image="site/notebook:5", task_poll_interval=0)
    states = iter(["pending", "assigned", "preparing", "preparing", "starting", "running"])

    async def docker(method: str, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        assert method == "tasks"
        return [{"CreatedAt": "2024-06-15T10:15:30.1Z", "Status": {"State": next(states)}}]

    monkeypatch.setattr(spawner, "docker", docker)
    await spawner.start_object()
    messages = [event["message"] for event in spawner._events]
    assert messages == [
        "Notebook task pending", "Notebook task assigned",
        "Notebook task preparing: pulling site/notebook:5 if its node lacks it",
        "Notebook task starting", "The notebook is running; waiting for it to answer",
    ]
