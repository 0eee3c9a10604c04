"""XNAT check: each step with pass or fail, the reason and a hint, as it runs."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from console.backend.models import CheckStatus, CheckStep
from console.formatting import Cell, state_cell
from console.screens.base import TableScreen

STATUS_ICONS = {CheckStatus.PASS: "✔", CheckStatus.FAIL: "✖", CheckStatus.WARN: "▲", CheckStatus.SKIP: "·"}


class XnatScreen(TableScreen):
    CRUMB = "xnat check"
    NOUN = "steps"
    COLUMNS: ClassVar[list[tuple[str, str]]] = [
        ("n", "#"), ("step", "STEP"), ("result", "RESULT"), ("reason", "REASON"), ("hint", "HINT"),
    ]
    SORT = ("n", False)
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "run_check", "Run again", id="xnat_rerun")]

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[CheckStep] = []
        self.running = False

    def compose_body(self) -> ComposeResult:
        yield from super().compose_body()
        yield Static("", id="step-detail")

    def chain_interval(self) -> float:
        # A check logs in to XNAT: run it on arrival, on `r`, and only rarely by itself.
        return self.console_app.xnat_interval

    def docker_changed(self) -> None:
        """Not a reason to run again: the check does not read the swarm, and its own one-off service's events
        would start the next run as each one ends, so the screen never left "running…"."""

    def action_run_check(self) -> None:
        self.refresh_chain.request()

    @work(exclusive=True, group="xnat-check", exit_on_error=False)
    async def load(self) -> None:
        self.steps = []
        self.running = True
        self.show_rows({})
        backend = self.console_app.backend
        try:
            async for step in backend.xnat_check():
                self.steps.append(step)
                self.show_rows(self._rows())
            # The hub and XNAT reach each other by other names than this node does: run it from there too.
            self.steps.extend(await backend.xnat_check_in_hub_network())
            self.show_rows(self._rows())
        except Exception as exc:
            self.show_error(f"the check itself failed: {exc}")
        finally:
            self.running = False
            self.update_status()
        self.console_app.record_xnat_check(self.steps)
        # Put the cursor on the first problem, so its reason and hint are on screen at once.
        for wanted in (CheckStatus.FAIL, CheckStatus.WARN):
            problem = next((n for n, step in enumerate(self.steps, start=1) if step.status == wanted), None)
            if problem is not None:
                table = self.main_table()
                table.move_cursor(row=table.get_row_index(str(problem)), animate=False)
                break
        self._show_detail()

    def _rows(self) -> dict[str, tuple[Cell, ...]]:
        return {
            str(n): (
                Cell(str(n), n), Cell(step.name), Cell(f"{STATUS_ICONS[step.status]} {step.status.value}",
                                                         step.status.value, state_cell(step.status.value).style),
                Cell(step.reason), Cell(step.hint or "-", style="italic" if step.hint else "dim"),
            )
            for n, step in enumerate(self.steps, start=1)
        }

    def update_status(self) -> None:
        if not self.is_mounted:
            return
        counts = {status: sum(s.status == status for s in self.steps) for status in CheckStatus}
        text = Text()
        if self.error:
            text.append(f"✖ {self.error}  ", style="bold red")
        text.append("running… " if self.running else "done · ", style="bold" if self.running else "")
        text.append(f"{counts[CheckStatus.PASS]} passed", style="green")
        text.append(" · ")
        text.append(f"{counts[CheckStatus.FAIL]} failed", style="bold red" if counts[CheckStatus.FAIL] else "")
        text.append(f" · {counts[CheckStatus.WARN]} warnings · {counts[CheckStatus.SKIP]} skipped · r runs again")
        self.query_one("#status-line", Static).update(text)

    @on(DataTable.RowHighlighted, "#main-table")
    def _show_detail(self) -> None:
        key = self.main_table().cursor_key
        detail = self.query_one("#step-detail", Static)
        if key is None or int(key) > len(self.steps):
            detail.update("")
            return
        step = self.steps[int(key) - 1]
        text = Text.assemble((step.name, "bold"), "  ", (step.status.value, state_cell(step.status.value).style))
        text.append(f"\n{step.reason}")
        if step.hint:
            text.append("\nhint: ", style="bold")
            text.append(step.hint, style="italic")
        detail.update(text)
