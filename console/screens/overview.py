"""Overview: the health of every part, the counts operators ask for first, and recent Docker events."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Static

from console.backend.models import ComponentHealth, DockerEvent, NodeInfo, ServerRow, ServiceInfo, TaskInfo
from console.screens.base import ConsoleScreen
from console.widgets.cells import Cell, age_cell, health_style, state_cell
from console.widgets.resource_table import ResourceTable

FAILED_TASK_STATES = frozenset({"failed", "rejected", "orphaned"})


@dataclass(frozen=True)
class SwarmCounts:
    nodes: int
    managers: int
    services: int
    failed_stack_tasks: int


@dataclass(frozen=True)
class ServerCounts:
    users: int
    running: int
    pending: int
    failed: int


def count_swarm(nodes: list[NodeInfo], services: list[ServiceInfo], stack_tasks: list[TaskInfo]) -> SwarmCounts:
    failed = sum(t.state in FAILED_TASK_STATES and t.desired_state == "running" for t in stack_tasks)
    return SwarmCounts(len(nodes), sum(n.role == "manager" for n in nodes), len(services), failed)


def count_servers(rows: list[ServerRow], user_count: int | None) -> ServerCounts:
    users = user_count if user_count is not None else len({row.user for row in rows})
    return ServerCounts(
        users=users,
        running=sum(row.state == "ready" for row in rows),
        pending=sum(row.state.startswith("pending") for row in rows),
        failed=sum(row.state == "failed" or row.task_state in FAILED_TASK_STATES for row in rows),
    )


class Stat(Static):
    """One big number with its label."""

    def __init__(self, label: str, id: str) -> None:
        super().__init__(id=id, classes="stat")
        self.label = label
        self.set_value(None)

    def set_value(self, value: int | None, style: str = "bold") -> None:
        number = "–" if value is None else str(value)
        self.update(Text.assemble((number, style), "\n", (self.label, "dim")))


class OverviewScreen(ConsoleScreen):
    CRUMB = "overview"

    def compose_body(self) -> ComposeResult:
        with Vertical(id="overview"):
            with Horizontal(id="stats"):
                yield Stat("users", "stat-users")
                yield Stat("running", "stat-running")
                yield Stat("pending", "stat-pending")
                yield Stat("failed tasks", "stat-failed")
                yield Stat("nodes", "stat-nodes")
                yield Stat("managers", "stat-managers")
            yield Label("Health", classes="section-title")
            yield ResourceTable(
                [("component", "COMPONENT"), ("state", "STATE"), ("detail", "DETAIL")],
                id="health-table",
            )
            yield Label("Recent Docker events", classes="section-title")
            yield ResourceTable(
                [("time", "TIME"), ("age", "AGE"), ("type", "TYPE"), ("action", "ACTION"), ("actor", "ACTOR")],
                sort_column="time",
                sort_reverse=True,
                id="events-table",
            )

    def on_mount(self) -> None:
        self.watch(self.app, "components", self._show_health)
        self.watch(self.app, "recent_events", self._show_events)
        self.docker_chain = self.chain(self._load_swarm)
        self.hub_chain = self.chain(self._load_servers)
        self.docker_chain.request()
        self.hub_chain.request()

    def main_table(self) -> ResourceTable:
        return self.query_one("#events-table", ResourceTable)

    def docker_changed(self) -> None:
        self.docker_chain.request()
        self.hub_chain.request()

    def action_refresh_now(self) -> None:
        super().action_refresh_now()
        self.console_app.refresh_health()

    # -- workers --------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="overview-docker", exit_on_error=False)
    def _load_swarm(self) -> None:
        backend = self.console_app.backend
        try:
            nodes = backend.nodes()
            services = backend.services()
            stack_tasks = [task for s in services if not s.notebook_user for task in backend.tasks(s.name)]
        except Exception:
            self.app.call_from_thread(self._show_swarm, None)
            return
        self.app.call_from_thread(self._show_swarm, count_swarm(nodes, services, stack_tasks))

    @work(exclusive=True, group="overview-hub", exit_on_error=False)
    async def _load_servers(self) -> None:
        try:
            rows = await self.console_app.backend.hub_servers()
        except Exception:
            self._show_servers(None)
            return
        info = self.console_app.hub_info
        self._show_servers(count_servers(rows, getattr(info, "user_count", None)))

    # -- rendering ------------------------------------------------------------------------------
    def _show_swarm(self, counts: SwarmCounts | None) -> None:
        self.query_one("#stat-nodes", Stat).set_value(counts and counts.nodes)
        self.query_one("#stat-managers", Stat).set_value(counts and counts.managers)
        self._swarm_failed = counts.failed_stack_tasks if counts else 0
        self._show_failed()

    def _show_servers(self, counts: ServerCounts | None) -> None:
        self.query_one("#stat-users", Stat).set_value(counts and counts.users)
        self.query_one("#stat-running", Stat).set_value(counts and counts.running, "bold green")
        self.query_one("#stat-pending", Stat).set_value(counts and counts.pending, "bold yellow")
        self._servers_failed = counts.failed if counts else None
        self._show_failed()

    _swarm_failed: int = 0
    _servers_failed: int | None = None

    def _show_failed(self) -> None:
        if self._servers_failed is None:
            self.query_one("#stat-failed", Stat).set_value(None)
            return
        failed = self._servers_failed + self._swarm_failed
        self.query_one("#stat-failed", Stat).set_value(failed, "bold red" if failed else "bold green")

    def _show_health(self, components: tuple[ComponentHealth, ...]) -> None:
        rows = {
            c.name: (Cell(c.name, order), state_cell(c.health.value), Cell(c.detail, style=health_style(c.health)))
            for order, c in enumerate(components)
        }
        self.query_one("#health-table", ResourceTable).set_rows(rows)

    def _show_events(self, events: tuple[DockerEvent, ...]) -> None:
        now = self.console_app.clock()
        rows = {
            f"{e.time.isoformat()}|{e.type}|{e.action}|{e.actor}": (
                Cell(f"{e.time:%H:%M:%S}", e.time.timestamp()),
                age_cell(e.time, now),
                Cell(e.type),
                Cell(e.action),
                Cell(e.actor),
            )
            for e in events
        }
        self.query_one("#events-table", ResourceTable).set_rows(rows)
