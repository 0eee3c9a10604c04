"""Hub servers joined with swarm state: each server's notebook service is found by its labels
(`org.xnat.jupyterhub.user` / `.server`, set by hub/spawner.py) or else by dockerspawner's name
(`jupyter-{user}` / `jupyter-{user}--{server}`); its newest task gives state, error and node."""

from __future__ import annotations

from dataclasses import replace

from console.backend.models import ServerRow, ServiceInfo, TaskInfo
from xjh_contract import notebook_service_name

FAILED_TASK_STATES = {"failed", "rejected"}


def join_swarm(rows: list[ServerRow], services: list[ServiceInfo], tasks: list[TaskInfo]) -> list[ServerRow]:
    """Each hub row with its notebook service, newest task, node, image and limits."""
    by_label = {(s.notebook_user, s.notebook_server): s for s in services if s.notebook_user}
    by_name = {s.name: s for s in services}
    newest: dict[str, TaskInfo] = {}
    for t in tasks:
        current = newest.get(t.service_id)
        # Prefer the task meant to run, then the most recent.
        rank = (t.desired_state == "running", t.timestamp.timestamp() if t.timestamp else 0)
        if current is None or rank > (
            current.desired_state == "running",
            current.timestamp.timestamp() if current.timestamp else 0,
        ):
            newest[t.service_id] = t
    out = []
    for row in rows:
        service = by_label.get((row.user, row.server)) or by_name.get(notebook_service_name(row.user, row.server))
        if service is None:
            out.append(row)
            continue
        task = newest.get(service.id)
        state = row.state
        if task and task.state in FAILED_TASK_STATES and row.state != "ready":
            state = "failed"
        out.append(
            replace(
                row,
                state=state,
                service_name=service.name,
                service_id=service.id,
                task_state=task.state if task else "",
                task_error=task.error if task else "",
                node=task.node_name if task else "",
                image=service.image,
                cpu_limit=service.cpu_limit,
                mem_limit=service.mem_limit,
            )
        )
    return out
