"""Servers: one row per hub server, joined with its swarm service, task, node and live usage."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from console.backend.models import ActionResult, Outcome, ServerRow
from console.formatting import SERVER_COLUMNS, Cell, server_cells, state_cell
from console.screens.base import HUB_ROWS_MAX_AGE, TableScreen
from console.screens.dialogs import ProgressScreen


class ServersScreen(TableScreen):
    CRUMB = "servers"
    NOUN = "servers"
    MARKABLE = True
    COLUMNS: ClassVar[list[tuple[str, str]]] = SERVER_COLUMNS
    SORT = ("user", False)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "stop", "Stop", id="server_stop"),
        Binding("r", "restart", "Restart", id="server_restart"),
        Binding("d", "delete", "Delete named", id="server_delete"),
        Binding("l", "logs", "Logs", id="server_logs"),
        Binding("a", "toggle_stopped", "Stopped too", id="servers_stopped"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.servers: dict[str, ServerRow] = {}
        self.include_stopped = False  # the hub's admin page shows stopped named servers on request too
        self.ask_hub_now = False  # ctrl+r: the operator wants the hub's own answer, not the last one

    def compose_body(self) -> ComposeResult:
        yield from super().compose_body()
        yield Static("", id="server-detail")

    @work(exclusive=True, group="servers", exit_on_error=False)
    async def load(self) -> None:
        try:
            max_age, self.ask_hub_now = (0.0 if self.ask_hub_now else HUB_ROWS_MAX_AGE), False
            rows = await self.console_app.backend.hub_servers(include_stopped=self.include_stopped,
                                                              hub_max_age=max_age)
        except Exception as exc:
            self.show_error(f"hub: {exc}")
            return
        self.servers = {row.key: row for row in rows}
        self.show_rows(self.rows(rows))
        self._show_detail()

    def rows(self, servers: list[ServerRow]) -> dict[str, tuple[Cell, ...]]:
        now = self.console_app.clock()
        return {r.key: server_cells(r, now) for r in servers}

    def action_refresh_now(self) -> None:
        self.ask_hub_now = True
        super().action_refresh_now()

    def action_toggle_stopped(self) -> None:
        self.include_stopped = not self.include_stopped
        self.update_status()
        self.refresh_chain.request()

    def status_extra(self) -> str:
        return " · stopped servers shown (a hides)" if self.include_stopped else " · a shows stopped servers"

    @on(DataTable.RowHighlighted, "#main-table")
    def _show_detail(self) -> None:
        row = self.servers.get(self.main_table().cursor_key or "")
        detail = self.query_one("#server-detail", Static)
        if row is None:
            detail.update("")
            return
        text = Text.assemble((row.key, "bold"), "  ", (row.state, state_cell(row.state).style))
        if row.xsi_type:
            text.append(f"  launched for {row.xsi_type} {row.item_id} in project {row.project_id}", style="dim")
        if row.task_error:
            text.append("\ntask error: ", style="bold red")
            text.append(row.task_error)
        if row.stats and row.stats.unavailable_reason:
            text.append(f"\nusage {row.stats.unavailable_reason}", style="dim")
        detail.update(text)

    # -- actions --------------------------------------------------------------------------------
    def _targets(self) -> list[ServerRow]:
        return [self.servers[key] for key in self.main_table().targets() if key in self.servers]

    def action_stop(self) -> None:
        targets = self._targets()
        if self.console_app.refuse_if_read_only(f"stop {_names(targets)}") or not targets:
            return
        self.console_app.confirm(
            f"Stop {len(targets)} server{'s' if len(targets) > 1 else ''}?",
            "Stops through the hub (the hub removes the swarm service):" + _bullets(targets),
            lambda: self._stop(targets),
            confirm_label="Stop",
        )

    @work(group="server-actions", exit_on_error=False)
    async def _stop(self, targets: list[ServerRow]) -> None:
        await self._run_each("stop", targets, self.console_app.backend.stop_server)

    def action_delete(self) -> None:
        targets = self._targets()
        if self.console_app.refuse_if_read_only(f"delete {_names(targets)}") or not targets:
            return
        defaults = [r.key for r in targets if not r.server]
        if defaults:
            self.notify(f"Only named servers can be deleted; not {', '.join(defaults)}.", severity="warning")
            targets = [r for r in targets if r.server]
            if not targets:
                return
        self.console_app.confirm(
            f"Delete {len(targets)} named server{'s' if len(targets) > 1 else ''}?",
            "Stops and removes from the hub:" + _bullets(targets),
            lambda: self._delete(targets),
            confirm_label="Delete",
        )

    @work(group="server-actions", exit_on_error=False)
    async def _delete(self, targets: list[ServerRow]) -> None:
        await self._run_each("delete", targets, self.console_app.backend.delete_server)

    async def _run_each(self, verb: str, targets: list[ServerRow], call) -> None:
        failures = 0
        for row in targets:
            try:
                result: ActionResult = await call(row.user, row.server)
            except Exception as exc:
                result = ActionResult(verb, row.key, outcome=Outcome.FAILED, detail=str(exc) or type(exc).__name__)
            failures += not result.ok
            self.notify_result(result)
        self.main_table().action_clear_marks()
        if len(targets) > 1:
            self.notify(f"{verb}: {len(targets) - failures} of {len(targets)} done",
                        severity="information" if not failures else "error")
        self.refresh_chain.request()

    def notify_result(self, result: ActionResult) -> None:
        if result.ok:
            self.notify(f"{result.action} {result.target}: {result.detail or 'done'}", title=result.action)
        else:
            self.notify(f"{result.action} {result.target} {result.outcome.value}: {result.detail}", title=result.action,
                        severity="error", timeout=10)

    def action_restart(self) -> None:
        targets = self._targets()
        if self.console_app.refuse_if_read_only(f"restart {_names(targets)}") or not targets:
            return
        self.console_app.confirm(
            f"Restart {len(targets)} server{'s' if len(targets) > 1 else ''}?",
            "Stops, then starts again with the same user_options, following the spawn progress:"
            + _bullets(targets),
            lambda: self._open_restart(targets),
            confirm_label="Restart",
        )

    def _open_restart(self, targets: list[ServerRow]) -> None:
        progress = ProgressScreen(f"Restarting {_names(targets)}")
        self.app.push_screen(progress)
        self._restart(targets, progress)

    @work(group="server-actions", exit_on_error=False)
    async def _restart(self, targets: list[ServerRow], progress: ProgressScreen) -> None:
        failures: list[str] = []
        for row in targets:
            prefix = f"{row.key}: " if len(targets) > 1 else ""
            try:
                def say(message: str, prefix: str = prefix) -> None:
                    progress.add_line(prefix + message)

                result = await self.console_app.backend.restart_server(row.user, row.server, progress=say)
            except Exception as exc:  # the backend reports failures as results; this is the last guard
                result = ActionResult("restart", row.key, Outcome.FAILED, str(exc) or type(exc).__name__)
            if not result.ok:
                progress.add_line(f"{prefix}{result.outcome.value}: {result.detail}")
                failures.append(f"{row.key}: {result.detail}")
        names = _names(targets)
        outcome = Outcome.FAILED if failures else Outcome.OK
        result = ActionResult("restart", names, outcome, "; ".join(failures) or "ready")
        progress.finish(result)
        self.notify_result(result)
        self.main_table().action_clear_marks()
        self.refresh_chain.request()

    def action_logs(self) -> None:
        targets = self._targets()
        if targets:
            row = targets[0]
            self.console_app.open_logs(row.service_name or row.key)

    def palette_commands(self) -> Iterable[SystemCommand]:
        targets = self._targets()
        if targets:
            names = _names(targets)
            yield SystemCommand(f"Stop {names}", "stop through the hub (asks first)", self.action_stop)
            yield SystemCommand(f"Restart {names}", "stop and start with the same options", self.action_restart)
            yield SystemCommand(f"Logs of {targets[0].key}", "open its service logs", self.action_logs)


def _bullets(rows: list[ServerRow]) -> str:
    return "".join(f"\n • {row.key}" for row in rows)


def _names(rows: list[ServerRow]) -> str:
    keys = [r.key for r in rows]
    if not keys:
        return "nothing (no server selected)"
    return ", ".join(keys) if len(keys) <= 3 else f"{', '.join(keys[:3])} and {len(keys) - 3} more"
