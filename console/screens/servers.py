"""Servers: one row per hub server, joined with its swarm service, task, node and live usage."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.widgets import DataTable, Static

from console.backend.models import ActionResult, Outcome, ServerRow
from console.screens.base import TableScreen
from console.screens.dialogs import ProgressScreen
from console.widgets.cells import Cell, age_cell, cpus_cell, size, size_cell, state_cell


def usage_cells(row: ServerRow) -> tuple[Cell, Cell]:
    stats = row.stats
    if stats is None:
        reason = "n/a: not running" if row.state != "ready" else "n/a: no stats yet"
        return Cell("n/a", None, "dim"), Cell(reason, None, "dim")
    if stats.cpu_percent is None and stats.mem_bytes is None:
        reason = stats.unavailable_reason or "n/a"
        return Cell("n/a", None, "dim"), Cell(reason if reason.startswith("n/a") else f"n/a: {reason}", None, "dim")
    cpu = Cell("-" if stats.cpu_percent is None else f"{stats.cpu_percent:.1f}%", stats.cpu_percent)
    mem = size(stats.mem_bytes)
    if stats.mem_limit_bytes:
        mem += f" / {size(stats.mem_limit_bytes)}"
    return cpu, Cell(mem, stats.mem_bytes)


class ServersScreen(TableScreen):
    CRUMB = "servers"
    NOUN = "servers"
    MARKABLE = True
    COLUMNS = [
        ("user", "USER"), ("server", "SERVER"), ("state", "STATE"), ("started", "STARTED"),
        ("activity", "ACTIVITY"), ("xsi_type", "XSITYPE"), ("item", "ITEM"), ("project", "PROJECT"),
        ("task", "TASK"), ("node", "NODE"), ("cpu", "CPU"), ("mem", "MEM"), ("cpu_limit", "CPU LIM"),
        ("mem_limit", "MEM LIM"), ("service", "SERVICE"), ("image", "IMAGE"),
    ]
    SORT = ("user", False)
    BINDINGS = [
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

    def compose_body(self) -> ComposeResult:
        yield from super().compose_body()
        yield Static("", id="server-detail")

    @work(exclusive=True, group="servers", exit_on_error=False)
    async def load(self) -> None:
        try:
            rows = await self.console_app.backend.hub_servers(include_stopped=self.include_stopped)
        except Exception as exc:
            self.show_error(f"hub: {exc}")
            return
        self.servers = {row.key: row for row in rows}
        self.show_rows(self.rows(rows))
        self._show_detail()

    def rows(self, servers: list[ServerRow]) -> dict[str, tuple[Cell, ...]]:
        now = self.console_app.clock()
        rows = {}
        for r in servers:
            task = Cell(r.task_state or "-", r.task_state, "bold red" if r.task_error else "")
            rows[r.key] = (
                Cell(r.user), Cell(r.server or "(default)", r.server), state_cell(r.state),
                age_cell(r.started, now), age_cell(r.last_activity, now),
                Cell(r.xsi_type or "-"), Cell(r.item_id or "-"), Cell(r.project_id or "-"),
                task, Cell(r.node or "-"), *usage_cells(r), cpus_cell(r.cpu_limit), size_cell(r.mem_limit),
                Cell(r.service_name or "-"), Cell(r.image or "-"),
            )
        return rows

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
                result = await self.console_app.backend.restart_server(
                    row.user, row.server, progress=lambda message, prefix=prefix: progress.add_line(prefix + message)
                )
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
