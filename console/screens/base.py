"""What every console screen shares: the top bar with health, the `:` command line, chained refreshes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, ClassVar, TypeVar, cast

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.events import Mount, ScreenResume
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Footer, Input, Static
from textual.worker import Worker, WorkerState

from console import registry
from console.backend.models import ComponentHealth, Health
from console.formatting import health_style
from console.widgets.resource_table import ResourceTable

if TYPE_CHECKING:
    from console.app import XnatConsoleApp

T = TypeVar("T")

# The hub's list of active servers is the costliest thing the console asks of the hub (~0.2 s of its CPU at 500
# servers). The Servers and Overview screens let the backend reuse its last answer this long while the swarm shows
# no change (a server that starts, stops or fails changes its service or task; pending servers are always asked
# again), so what only the hub knows, such as last activity, may be this much older than the Docker columns.
HUB_ROWS_MAX_AGE = 30.0

HEALTH_ICONS = {Health.OK: "●", Health.DEGRADED: "▲", Health.DOWN: "✖", Health.UNKNOWN: "?"}
COMMAND_WORDS = registry.command_words()


class RefreshChain:
    """Chained refreshes: the next run is scheduled only after the current one finished, so slow calls never
    pile up. A request while a run is in flight becomes one more run right after it. While the owning screen
    is hidden, ticks are skipped and one run happens when it comes back."""

    def __init__(
        self,
        start: Callable[[], Worker],
        interval: Callable[[], float],
        set_timer: Callable[[float, Callable[[], None]], Timer],
        active: Callable[[], bool] = lambda: True,
    ) -> None:
        self._start = start
        self._interval = interval
        self._set_timer = set_timer
        self._active = active
        self._worker: Worker | None = None
        self._timer: Timer | None = None
        self._pending = False
        self._stale = False
        self.runs = 0

    @property
    def running(self) -> bool:
        return self._worker is not None and self._worker.state in (WorkerState.PENDING, WorkerState.RUNNING)

    def request(self) -> None:
        if self.running:
            self._pending = True
            return
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if not self._active():
            self._stale = True
            return
        self._stale = False
        self.runs += 1
        self._worker = self._start()

    def resume(self) -> None:
        if self._stale:
            self.request()

    def worker_changed(self, worker: Worker) -> None:
        if worker is not self._worker or worker.is_running or worker.state == WorkerState.PENDING:
            return
        if self._pending:
            self._pending = False
            self.request()
        else:
            self._timer = self._set_timer(self._interval(), self.request)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._pending = False


def report_worker_error(node: Widget | App[None], worker: Worker[object]) -> None:
    """Workers run with exit_on_error=False so a failure never ends the app; it becomes a notification."""
    if worker.state == WorkerState.ERROR and worker.error is not None:
        error = worker.error
        node.notify(f"{worker.name}: {type(error).__name__}: {error}", title="internal error", severity="error",
                    timeout=15)


class TopBar(Static):
    """App name, where we are, the read-only badge and the health of every part, on one line."""

    def __init__(self, crumb: str) -> None:
        super().__init__(id="top-bar")
        self.crumb = crumb

    def on_mount(self) -> None:
        self.watch(self.app, "components", self._show)

    def _show(self, components: tuple[ComponentHealth, ...]) -> None:
        app = cast("XnatConsoleApp", self.app)
        text = Text.assemble(("xnat-jh-console", "bold"), " › ", (self.crumb, "bold"))
        if app.read_only:
            text.append("  ")
            text.append(" READ-ONLY ", style="bold reverse yellow")
        text.append("   ")
        for component in components:
            icon = HEALTH_ICONS.get(component.health, "?")
            text.append(f"  {icon} {component.name}", style=health_style(component.health))
            if component.health in (Health.DOWN, Health.DEGRADED):
                detail = component.detail if len(component.detail) <= 48 else component.detail[:47] + "…"
                text.append(f": {detail}", style=health_style(component.health))
        self.update(text)


class CommandLine(Input):
    """k9s' `:` prompt. Enter runs the command, Esc hides it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Close", show=False)]

    def __init__(self) -> None:
        super().__init__(
            placeholder=":servers  :svc  :nodes  :logs USER[/SERVER]  :xnat  :deploy  :sort COLUMN  :help",
            suggester=SuggestFromList(COMMAND_WORDS, case_sensitive=False),
            id="command-line",
        )

    def action_dismiss(self) -> None:
        self.value = ""
        self.display = False
        cast(ConsoleScreen, self.screen).focus_default()


class FilterBar(Input):
    """`/` filter: regex over every column, `!` inverts. Enter keeps it, Esc clears it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "clear", "Clear filter", show=False)]

    def __init__(self) -> None:
        super().__init__(placeholder="/ filter: regex over every column, !regex to invert", id="filter-bar")

    def action_clear(self) -> None:
        self.value = ""
        self.post_message(self.Submitted(self, ""))


class ConsoleScreen(Screen):
    """Base of every screen: top bar, a body, the command line and the footer."""

    CRUMB = ""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "refresh_now", "Refresh", id="refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.chains: list[RefreshChain] = []

    @property
    def console_app(self) -> XnatConsoleApp:
        return cast("XnatConsoleApp", self.app)

    def compose(self) -> ComposeResult:
        yield TopBar(self.CRUMB)
        yield from self.compose_body()
        if self.console_app.first_frame_drawn:
            yield from self._command_line_and_footer()

    @staticmethod
    def _command_line_and_footer() -> Iterable[Widget]:
        command_line = CommandLine()
        command_line.display = False
        yield command_line
        yield Footer()

    @on(Mount)
    def _mount_command_line_and_footer(self) -> None:
        # On the first screen the hidden `:` line and the key hints (~50 ms of Textual work: their CSS and a widget
        # per key) come a frame after the content, so the first frame is not kept waiting for them; later screens
        # compose them at once.
        if not self.query(Footer):
            self.console_app.after_first_frame(lambda: self.call_later(self._add_command_line_and_footer))

    async def _add_command_line_and_footer(self) -> None:
        await self.mount_all(self._command_line_and_footer())
        self.refresh_bindings()  # a footer mounted after the screen took focus learns its keys from this

    def compose_body(self) -> ComposeResult:
        yield from ()

    def focus_default(self) -> None:
        """Give focus back to the main widget after the command line or the filter closes."""
        for widget in self.query("ResourceTable, LogView, RichLog").results(Widget):
            if widget.display:
                widget.focus()
                return

    # -- refresh chains -------------------------------------------------------------------------
    def chain(self, start: Callable[[], Worker], interval: Callable[[], float] | None = None) -> RefreshChain:
        chain = RefreshChain(
            start,
            interval or (lambda: self.console_app.refresh_interval),
            lambda delay, callback: self.set_timer(delay, callback),
            active=lambda: self.is_current,
        )
        self.chains.append(chain)
        return chain

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        for chain in self.chains:
            chain.worker_changed(event.worker)
        report_worker_error(self, event.worker)

    @on(ScreenResume)
    def _resume_chains(self) -> None:
        for chain in self.chains:
            chain.resume()

    def action_refresh_now(self) -> None:
        for chain in self.chains:
            chain.request()

    def palette_commands(self) -> Iterable[SystemCommand]:
        """Commands this screen adds to the palette (context-sensitive, like posting's)."""
        return ()

    def docker_changed(self) -> None:
        """Docker reported events: refresh what depends on Docker. Screens override."""

    # -- command line ---------------------------------------------------------------------------
    def open_command_line(self, prefill: str = "") -> None:
        if not self.query(CommandLine):
            return  # a key pressed before the first frame was drawn
        command_line = self.query_one(CommandLine)
        command_line.value = prefill
        command_line.display = True
        command_line.focus()

    @on(Input.Submitted, "#command-line")
    def _run_command_line(self, event: Input.Submitted) -> None:
        event.stop()
        command_line = self.query_one(CommandLine)
        command_line.display = False
        text = event.value.strip().lstrip(":")
        command_line.value = ""
        self.focus_default()
        if text:
            self.console_app.run_command_line(text)

    # -- filter (screens with a ResourceTable) --------------------------------------------------
    def action_filter(self) -> None:
        bars = self.query(FilterBar)
        if bars:
            bar = bars.first()
            bar.display = True
            bar.focus()

    @on(Input.Changed, "#filter-bar")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.main_table().set_filter(event.value)
        self.update_status()

    @on(Input.Submitted, "#filter-bar")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.main_table().set_filter(event.value)
        bar = self.query_one(FilterBar)
        bar.display = bool(event.value)
        self.update_status()
        self.focus_default()

    def update_status(self) -> None:
        """Screens with a status line redraw it (after a filter, a sort, marks)."""

    def main_table(self) -> ResourceTable:
        return self.query_one(ResourceTable)

    def sort_command(self, column: str) -> None:
        tables = self.query(ResourceTable)
        if not tables:
            self.notify("This screen has no table to sort.", severity="warning")
            return
        table = tables.first()
        reverse = column.startswith("-")
        key = table.column_for(column.lstrip("-"))
        if key is None:
            names = ", ".join(label.lower() for _, label in table.column_spec)
            self.notify(f"No column '{column.lstrip('-')}'. Columns: {names}", severity="warning")
            return
        table.sort_by(key, reverse=reverse)


class TableScreen(ConsoleScreen):
    """A screen whose body is one ResourceTable with a filter bar and a status line."""

    COLUMNS: ClassVar[list[tuple[str, str]]] = []
    SORT: tuple[str | None, bool] = (None, False)
    MARKABLE = False
    NOUN = "rows"

    BINDINGS: ClassVar[list[BindingType]] = [Binding("slash", "filter", "Filter", id="filter")]

    def __init__(self) -> None:
        super().__init__()
        self.error: str = ""

    def compose_body(self) -> ComposeResult:
        bar = FilterBar()
        bar.display = False
        yield bar
        column, reverse = self.SORT
        yield ResourceTable(self.COLUMNS, sort_column=column, sort_reverse=reverse, markable=self.MARKABLE,
                            id="main-table")
        yield Static("", id="status-line")

    def on_mount(self) -> None:
        self.refresh_chain = self.chain(self.load, self.chain_interval)
        self.console_app.after_first_frame(self.refresh_chain.request)
        self.main_table().focus()

    def chain_interval(self) -> float:
        return self.console_app.refresh_interval

    def load(self) -> Worker:
        raise NotImplementedError

    def docker_changed(self) -> None:
        self.refresh_chain.request()

    def show_rows(self, rows: dict[str, tuple]) -> None:
        self.error = ""
        self.main_table().set_rows(rows)
        self.update_status()

    def fetch_in_thread(self, fetch: Callable[[], T], show: Callable[[T], None], source: str) -> None:
        """From a thread worker: call the (blocking) backend, then show its answer or its error on the UI thread."""
        try:
            result = fetch()
        except Exception as exc:
            self.app.call_from_thread(self.show_error, f"{source}: {exc}")
            return
        self.app.call_from_thread(show, result)

    def show_error(self, exc: BaseException | str) -> None:
        """Keep the last rows (marked stale) and say what is wrong; the chain keeps retrying."""
        self.error = str(exc) or type(exc).__name__
        self.update_status()

    def update_status(self) -> None:
        table = self.main_table()
        text = Text()
        if self.error:
            text.append(f"✖ {self.error}", style="bold red")
            text.append(f" (last data shown; retrying every {self.console_app.refresh_interval:g}s)  ", style="red")
        text.append(f"{table.row_count}/{table.total_rows} {self.NOUN}")
        label = dict(table.column_spec).get(table.sort_column, table.sort_column)
        text.append(f" · sort {label.lower()} {'▼' if table.sort_reverse else '▲'}")
        if table.filter_text:
            text.append(f" · filter /{table.filter_text}", style="bold")
        if table.marked:
            text.append(f" · {len(table.marked)} marked", style="bold cyan")
        text.append(self.status_extra())
        self.query_one("#status-line", Static).update(text)

    def status_extra(self) -> str:
        return ""

    @on(ResourceTable.SortChanged)
    @on(ResourceTable.MarksChanged)
    def _table_changed(self) -> None:
        self.update_status()
