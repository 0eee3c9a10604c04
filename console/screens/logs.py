"""Logs: the service logs of the hub or any notebook service, every task merged, across nodes."""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from console.backend.models import LogLine
from console.screens.base import ConsoleScreen
from console.screens.dialogs import PromptScreen
from console.widgets.log_view import LogView

SINCE_PRESETS: list[tuple[str, timedelta | None]] = [
    ("1m", timedelta(minutes=1)),
    ("5m", timedelta(minutes=5)),
    ("15m", timedelta(minutes=15)),
    ("1h", timedelta(hours=1)),
    ("all", None),
]
DEFAULT_TAIL = 1000
DRAIN_INTERVAL = 0.1  # the UI takes what the stream thread collected this often: natural batching
FILTER_DELAY = 0.3


def _close(stream: object) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        # The backend's stream allows close() from another thread; one already broken has nothing to release.
        with contextlib.suppress(Exception):
            close()


class LogsScreen(ConsoleScreen):
    CRUMB = "logs"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "toggle_follow", "Follow", id="logs_follow"),
        Binding("t", "toggle_timestamps", "Timestamps", id="logs_timestamps"),
        Binding("w", "toggle_wrap", "Wrap", id="logs_wrap"),
        Binding("slash", "search", "Search", id="logs_search"),
        Binding("n", "next_match", "Next", id="logs_next"),
        Binding("N", "previous_match", "Prev", id="logs_previous"),
        Binding("ampersand", "filter_lines", "Filter", id="logs_filter"),
        Binding("S", "cycle_since", "Since", id="logs_since"),
        Binding("T", "set_tail", "Tail N", id="logs_tail"),
        Binding("ctrl+s", "save", "Save", id="logs_save"),
        Binding("c", "clear", "Clear", id="logs_clear", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.target = "hub"  # what the operator asked for: hub, USER[/SERVER] or a service name
        self.service = "hub"  # the service it resolved to
        self.since_index = len(SINCE_PRESETS) - 1  # all
        self.tail: int | None = DEFAULT_TAIL
        self.state = "idle"
        self._generation = 0
        self._incoming: deque[tuple[int, LogLine]] = deque()
        self._stream: object | None = None
        self._stream_lock = threading.Lock()
        self._drain_timer: Timer | None = None
        self._retry_timer: Timer | None = None
        self._filter_timer: Timer | None = None
        self._last_timestamp: datetime | None = None
        self._resume_after: datetime | None = None

    def compose_body(self) -> ComposeResult:
        yield LogView(self.console_app.log_max_lines, id="log-view")
        yield Static("", id="new-lines")
        with Horizontal(id="log-inputs"):
            yield Input(placeholder="search (regex), Enter to find, n/N next/previous", id="log-search")
            yield Input(placeholder="& filter (regex): only matching lines", id="log-filter")
        yield Static("", id="status-line")

    def on_mount(self) -> None:
        for input_id in ("#log-search", "#log-filter"):
            self.query_one(input_id).display = False
        view = self.query_one(LogView)
        self.watch(view, "new_lines", self._show_new_lines)
        self.watch(view, "follow", lambda _: self.update_status())
        self._drain_timer = self.set_interval(DRAIN_INTERVAL, self._drain, pause=True)
        self.restart_stream()
        view.focus()

    def on_unmount(self) -> None:
        self._close_stream()

    # -- the stream ----------------------------------------------------------------------------
    def show_target(self, target: str) -> None:
        self.target = self.service = target
        if self.is_mounted:
            self.query_one(LogView).clear()
            self.restart_stream()

    def restart_stream(self) -> None:
        self._close_stream()
        self._incoming.clear()
        self._last_timestamp = None
        if self._retry_timer is not None:
            self._retry_timer.stop()
        _, delta = SINCE_PRESETS[self.since_index]
        since = self.console_app.clock() - delta if delta else None
        self.state = "connecting"
        self.update_status()
        self._follow_stream(self.target, since, self.tail, self._generation)
        if self._drain_timer is not None:
            self._drain_timer.resume()

    def _close_stream(self) -> None:
        """End the current stream; a stream still opening sees the new generation and closes itself."""
        with self._stream_lock:
            self._generation += 1
            stream, self._stream = self._stream, None
        _close(stream)

    @work(thread=True, exclusive=True, group="log-stream", exit_on_error=False)
    def _follow_stream(self, target: str, since: datetime | None, tail: int | None, generation: int) -> None:
        worker = get_current_worker()
        backend = self.console_app.backend
        try:
            service = backend.resolve_service(target)
            self.app.call_from_thread(self._resolved, generation, service)
            stream = backend.service_logs(
                service, follow=True, since=since, tail=tail, timestamps=True
            )
            with self._stream_lock:
                superseded = generation != self._generation
                if not superseded:
                    self._stream = stream
            if superseded:  # a newer stream started while this one opened: don't leak it
                _close(stream)
                return
            self.app.call_from_thread(self._set_state, generation, "streaming")
            for line in stream:
                if worker.is_cancelled or generation != self._generation:
                    break
                self._incoming.append((generation, line))
        except Exception as exc:
            self.app.call_from_thread(self._stream_ended, generation, str(exc) or type(exc).__name__)
            return
        self.app.call_from_thread(self._stream_ended, generation, "")

    def _resolved(self, generation: int, service: str) -> None:
        if generation == self._generation:
            view = self.query_one(LogView)
            self.service = view.service = service
            view.refresh()
            self.update_status()

    def _set_state(self, generation: int, state: str) -> None:
        if generation == self._generation:
            self.state = state
            self.update_status()

    def _stream_ended(self, generation: int, error: str) -> None:
        if generation != self._generation:
            return
        self._drain()
        self.state = f"✖ {error}" if error else "stream ended"
        # Reconnect by itself (a dead engine comes back), resuming after the last line seen.
        self._retry_timer = self.set_timer(self.console_app.refresh_interval, self._reconnect)
        self.update_status()

    def _reconnect(self) -> None:
        resume_from = self._resume_after = self._last_timestamp
        self._close_stream()
        self.state = "reconnecting"
        self.update_status()
        self._follow_stream(self.target, resume_from, None if resume_from else self.tail, self._generation)

    def _drain(self) -> None:
        lines: list[LogLine] = []
        incoming = self._incoming
        while incoming:
            generation, line = incoming.popleft()
            if generation == self._generation:
                lines.append(line)
        if not lines:
            return
        if self._resume_after is not None:
            # After a reconnect `since` repeats the last second: skip what we already have.
            lines = [line for line in lines if line.timestamp is None or line.timestamp > self._resume_after]
            if not lines:
                return
            self._resume_after = None
        stamps = [line.timestamp for line in lines if line.timestamp]
        if stamps:
            self._last_timestamp = max(stamps)
        view = self.query_one(LogView)
        view.append(lines)
        self.update_status()

    # -- display ---------------------------------------------------------------------------------
    def _show_new_lines(self, count: int) -> None:
        banner = self.query_one("#new-lines", Static)
        banner.display = count > 0
        banner.update(Text.assemble((f" +{count:,} new lines ", "bold reverse"), "  f or End to follow"))

    def update_status(self) -> None:
        if not self.is_mounted:
            return
        view = self.query_one(LogView)
        since, _ = SINCE_PRESETS[self.since_index]
        text = Text.assemble((self.service, "bold"), f" · {self.state}")
        text.append(f" · {len(view.buffer):,} lines")
        if view.buffer.dropped:
            text.append(f" (dropped {view.buffer.dropped:,} oldest; keeps {view.buffer.max_lines:,})", style="yellow")
        text.append(f" · follow {'on' if view.follow else 'off'} · since {since} · tail {self.tail or 'all'}")
        if view.search_text:
            position = view.match_position
            where = f"{position}/{view.match_count}" if position else f"{view.match_count} matches"
            text.append(f" · search /{view.search_text} {where}", style="bold")
        if view.filter_text:
            text.append(f" · filter &{view.filter_text} ({view.visible_count:,} shown)", style="bold")
        self.query_one("#status-line", Static).update(text)

    # -- actions ---------------------------------------------------------------------------------
    def action_toggle_follow(self) -> None:
        view = self.query_one(LogView)
        view.follow = not view.follow

    def action_toggle_timestamps(self) -> None:
        view = self.query_one(LogView)
        view.timestamps = not view.timestamps

    def action_toggle_wrap(self) -> None:
        view = self.query_one(LogView)
        view.wrap = not view.wrap

    def action_search(self) -> None:
        self._open_input("#log-search")

    def action_filter_lines(self) -> None:
        self._open_input("#log-filter")

    def action_filter(self) -> None:  # the app's `/` means search here
        self.action_search()

    def _open_input(self, selector: str) -> None:
        field = self.query_one(selector, Input)
        field.display = True
        field.focus()

    @on(Input.Submitted, "#log-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        view = self.query_one(LogView)
        try:
            count = view.set_search(event.value)
        except ValueError as exc:
            self.notify(str(exc), severity="error")
            return
        if event.value and not count:
            self.notify(f"No match for /{event.value}", severity="warning")
        event.input.display = False
        view.focus()
        self.update_status()

    @on(Input.Changed, "#log-filter")
    def _log_filter_changed(self, event: Input.Changed) -> None:
        # Filter as you type, but only once typing pauses: a million lines take a moment to filter.
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._filter_timer = self.set_timer(FILTER_DELAY, lambda: self._apply_filter(event.value))

    def _apply_filter(self, text: str) -> None:
        self._filter_timer = None
        view = self.query_one(LogView)
        if text == view.filter_text:
            return
        try:
            view.set_filter(text)
        except ValueError:
            return  # half-typed regex: keep the last valid filter until it parses
        self.update_status()

    @on(Input.Submitted, "#log-filter")
    def _log_filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._apply_filter(event.value)
        event.input.display = bool(event.value)
        self.query_one(LogView).focus()

    def action_next_match(self) -> None:
        if self.query_one(LogView).next_match():
            self.update_status()

    def action_previous_match(self) -> None:
        if self.query_one(LogView).next_match(backwards=True):
            self.update_status()

    def action_cycle_since(self) -> None:
        self.since_index = (self.since_index + 1) % len(SINCE_PRESETS)
        self.query_one(LogView).clear()
        self.restart_stream()

    def action_set_tail(self) -> None:
        def chosen(value: str | None) -> None:
            if value is None:
                return
            if value.lower() == "all":
                self.tail = None
            elif value.isdigit():
                self.tail = int(value)
            else:
                self.notify(f"Tail must be a number or 'all', not '{value}'.", severity="error")
                return
            self.query_one(LogView).clear()
            self.restart_stream()

        self.app.push_screen(PromptScreen("Tail: last N lines (or 'all')", str(self.tail or "all")), chosen)

    def action_clear(self) -> None:
        self.query_one(LogView).clear()
        self.update_status()

    def action_save(self) -> None:
        stamp = self.console_app.clock().strftime("%Y%m%dT%H%M%S")
        default = self.console_app.save_dir / f"{self.service}-{stamp}.log"

        def chosen(value: str | None) -> None:
            if value:
                self._save(Path(value).expanduser(), list(self.query_one(LogView).shown_lines()))

        self.app.push_screen(PromptScreen("Save the shown lines to", str(default)), chosen)

    @work(thread=True, group="log-save", exit_on_error=False)
    def _save(self, path: Path, lines: list[str]) -> None:
        try:
            with path.open("x", encoding="utf-8") as out:
                for line in lines:
                    out.write(line + "\n")
        except FileExistsError:
            self.app.call_from_thread(self.notify, f"{path} exists; choose another name.", severity="error")
            return
        except OSError as exc:
            self.app.call_from_thread(self.notify, f"Cannot save to {path}: {exc.strerror}", severity="error")
            return
        self.app.call_from_thread(self.notify, f"Saved {len(lines):,} lines to {path}", title="logs saved")
