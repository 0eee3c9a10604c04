"""Overview: the health of every part, the counts operators ask for first, and recent Docker events.

Health comes from the app's chains (shared with every screen's top bar); counts from `backend.overview()`.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Static

from console.backend.models import ComponentHealth, DockerEvent, Health, Overview
from console.formatting import Cell, age_cell, health_style, state_cell
from console.screens.base import HUB_ROWS_MAX_AGE, ConsoleScreen
from console.widgets.resource_table import ResourceTable


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

    def __init__(self) -> None:
        super().__init__()
        self.ask_hub_now = False

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
        self.refresh_chain = self.chain(self._load_counts)
        self.console_app.after_first_frame(self.refresh_chain.request)

    def main_table(self) -> ResourceTable:
        return self.query_one("#events-table", ResourceTable)

    def docker_changed(self) -> None:
        self.refresh_chain.request()

    def action_refresh_now(self) -> None:
        self.ask_hub_now = True  # ctrl+r: the hub's own answer, not the last one
        super().action_refresh_now()
        self.console_app.refresh_health()

    @work(exclusive=True, group="overview", exit_on_error=False)
    async def _load_counts(self) -> None:
        try:
            max_age, self.ask_hub_now = (0.0 if self.ask_hub_now else HUB_ROWS_MAX_AGE), False
            overview = await self.console_app.backend.overview(hub_max_age=max_age)
        except Exception:
            overview = None  # the health chains say what is down
        self._show_counts(overview)
        self._show_events(self.console_app.recent_events)  # ages move on even when no event comes

    def _show_counts(self, overview: Overview | None) -> None:
        """A part that is down shows "–", not a misleading 0."""
        if overview is None:
            overview, down = Overview((), 0, 0, 0, 0, 0, 0), {"engine", "hub"}
        else:
            down = {c.name for c in overview.components if c.health == Health.DOWN}
        failed_style = "bold red" if overview.failed_tasks else "bold green"
        for stat_id, value, style, part in (
            ("users", overview.users, "bold", "hub"),
            ("running", overview.running_servers, "bold green", "hub"),
            ("pending", overview.pending_servers, "bold yellow", "hub"),
            ("failed", overview.failed_tasks, failed_style, "engine"),
            ("nodes", overview.nodes, "bold", "engine"),
            ("managers", overview.managers, "bold", "engine"),
        ):
            self.query_one(f"#stat-{stat_id}", Stat).set_value(None if part in down else value, style)

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
