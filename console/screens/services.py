"""Services (stack and notebook), the tasks of one service, and the swarm's nodes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from console.backend.models import NodeInfo, ServiceInfo, TaskInfo
from console.formatting import Cell, age_cell, cpus_cell, size_cell, state_cell
from console.screens.base import TableScreen
from console.screens.dialogs import InspectScreen
from console.screens.images import ImagePulls


class ServicesScreen(TableScreen):
    CRUMB = "services"
    NOUN = "services"
    COLUMNS: ClassVar[list[tuple[str, str]]] = [
        ("name", "NAME"), ("kind", "KIND"), ("owner", "USER/SERVER"), ("replicas", "REPLICAS"),
        ("image", "IMAGE"), ("updated", "UPDATED"), ("cpu", "CPU LIMIT"), ("mem", "MEM LIMIT"),
    ]
    SORT = ("kind", True)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "tasks", "Tasks", id="service_tasks"),
        Binding("l", "logs", "Logs", id="service_logs"),
        Binding("i", "inspect", "Inspect", id="service_inspect"),
    ]

    @work(thread=True, exclusive=True, group="services", exit_on_error=False)
    def load(self) -> None:
        self.fetch_in_thread(self.console_app.backend.services, lambda services: self.show_rows(self.rows(services)),
                             "engine")

    def rows(self, services: list[ServiceInfo]) -> dict[str, tuple[Cell, ...]]:
        now = self.console_app.clock()
        rows: dict[str, tuple[Cell, ...]] = {}
        for s in services:
            owner = f"{s.notebook_user}/{s.notebook_server}" if s.notebook_server else s.notebook_user
            healthy = s.replicas_running >= s.replicas_desired
            replicas = Cell(f"{s.replicas_running}/{s.replicas_desired}", (s.replicas_running, s.replicas_desired),
                            "green" if healthy else "bold red")
            rows[s.name] = (
                Cell(s.name), Cell("notebook" if s.notebook_user else "stack"), Cell(owner or "-"), replicas,
                Cell(s.image), age_cell(s.updated_at, now), cpus_cell(s.cpu_limit), size_cell(s.mem_limit),
            )
        return rows

    def action_tasks(self) -> None:
        service = self.main_table().cursor_key
        if service:
            self.app.push_screen(TasksScreen(service))

    def action_logs(self) -> None:
        service = self.main_table().cursor_key
        if service:
            self.console_app.open_logs(service)

    def action_inspect(self) -> None:
        service = self.main_table().cursor_key
        if service:
            self.load_inspect(service)

    @work(thread=True, exclusive=True, group="inspect", exit_on_error=False)
    def load_inspect(self, service: str) -> None:
        try:
            inspected = self.console_app.backend.inspect_service(service)
        except Exception as exc:
            self.app.call_from_thread(self.notify, f"inspect {service}: {exc}", severity="error")
            return
        text = json.dumps(inspected, indent=2, sort_keys=True, default=str)
        self.app.call_from_thread(self.app.push_screen, InspectScreen(service, text))

    @on(DataTable.RowSelected, "#main-table")
    def _selected(self) -> None:
        self.action_tasks()

    def palette_commands(self) -> Iterable[SystemCommand]:
        service = self.main_table().cursor_key
        if service:
            yield SystemCommand(f"Tasks of {service}", "drill into the service's tasks", self.action_tasks)
            yield SystemCommand(f"Logs of {service}", "follow the service's logs", self.action_logs)
            yield SystemCommand(f"Inspect {service}", "docker service inspect, secrets redacted", self.action_inspect)


class TasksScreen(TableScreen):
    """Drill-down: where each task runs, its state, and Docker's own error text."""

    NOUN = "tasks"
    COLUMNS: ClassVar[list[tuple[str, str]]] = [
        ("id", "TASK"), ("slot", "SLOT"), ("node", "NODE"), ("state", "STATE"), ("desired", "DESIRED"),
        ("error", "ERROR"), ("age", "AGE"),
    ]
    SORT = ("age", True)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "logs", "Logs", id="task_logs"),
    ]

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self.CRUMB = f"services › {service} › tasks"
        self.tasks: dict[str, TaskInfo] = {}

    def compose_body(self) -> ComposeResult:
        yield from super().compose_body()
        yield Static("", id="task-detail")

    @work(thread=True, exclusive=True, group="tasks", exit_on_error=False)
    def load(self) -> None:
        self.fetch_in_thread(lambda: self.console_app.backend.tasks(self.service), self._show_tasks, "engine")

    def _show_tasks(self, tasks: list[TaskInfo]) -> None:
        now = self.console_app.clock()
        self.tasks = {task.id: task for task in tasks}
        self.show_rows({
            t.id: (
                Cell(t.id[:12], t.id), Cell("-" if t.slot is None else str(t.slot), t.slot), Cell(t.node_name),
                state_cell(t.state), Cell(t.desired_state), Cell(t.error or t.message, style="red" if t.error else ""),
                age_cell(t.timestamp, now),
            )
            for t in tasks
        })
        self._show_detail()

    @on(DataTable.RowHighlighted, "#main-table")
    def _show_detail(self) -> None:
        task = self.tasks.get(self.main_table().cursor_key or "")
        detail = self.query_one("#task-detail", Static)
        if task is None:
            detail.update("")
            return
        text = Text.assemble(("task ", "dim"), (task.id, "bold"), ("  container ", "dim"), task.container_id or "-")
        if task.error:
            text.append("\nerror: ", style="bold red")
            text.append(task.error)
        elif task.message:
            text.append(f"\n{task.message}", style="dim")
        detail.update(text)

    def action_logs(self) -> None:
        self.console_app.open_logs(self.service)


class NodesScreen(TableScreen):
    CRUMB = "nodes"
    NOUN = "nodes"
    COLUMNS: ClassVar[list[tuple[str, str]]] = [
        ("hostname", "HOSTNAME"), ("role", "ROLE"), ("availability", "AVAILABILITY"), ("state", "STATE"),
        ("cpus", "CPUS"), ("memory", "MEMORY"), ("address", "ADDRESS"), ("labels", "LABELS"),
    ]
    SORT = ("hostname", False)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("P", "pull_images", "Pull images", id="images_pull"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.image_pulls = ImagePulls(self)

    def action_pull_images(self) -> None:
        """The images of the notebook services running now; `:images IMAGE...` names others."""
        self.image_pulls.start([])

    @work(thread=True, exclusive=True, group="nodes", exit_on_error=False)
    def load(self) -> None:
        self.fetch_in_thread(self.console_app.backend.nodes, lambda nodes: self.show_rows(self.rows(nodes)), "engine")

    def rows(self, nodes: list[NodeInfo]) -> dict[str, tuple[Cell, ...]]:
        return {
            n.id: (
                Cell(n.hostname), Cell(n.role + (" (leader)" if n.leader else ""), n.role),
                state_cell(n.availability), state_cell(n.state),
                cpus_cell(n.nano_cpus / 1e9 if n.nano_cpus else None), size_cell(n.memory_bytes or None),
                Cell(n.address or "-"), Cell(",".join(f"{k}={v}" for k, v in sorted(n.labels.items())) or "-"),
            )
            for n in nodes
        }
