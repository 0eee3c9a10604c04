"""A bounded, searchable, filterable log view (Line API: only the visible rows are ever rendered).

Lines live in the backend's `LogBuffer`, whose memory is capped: the oldest lines are dropped and counted, so a
log of any length costs the same (lazydocker keeps everything and gets OOM-killed; k9s caps at 5k lines).
Search highlights matches and jumps with n/N; the filter (less's `&`) hides lines that do not match; both run
over the whole buffer at C speed (`LogBuffer.search`), and new lines are tested as they arrive.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.backend.logbuffer import LogBuffer
from console.backend.models import LogLine

TIMESTAMP_WIDTH = 20  # "2026-11-27T12:00:00Z"


def prefix_of(line: LogLine, timestamps: bool, service: str = "") -> str:
    """What precedes the message on screen: the timestamp (if shown) and the task that wrote the line, without
    the service's name (every line has it): `jupyter-alice.1.k8k7gimf@node1` shows as `1.k8k7gimf@node1`."""
    task = line.task
    if service and task.startswith(service + "."):
        task = task[len(service) + 1 :]
    if not timestamps:
        return f"{task} | "
    stamp = line.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ") if line.timestamp else ""
    return f"{stamp:<{TIMESTAMP_WIDTH}} {task} | "


class LogView(ScrollView, can_focus=True):
    """Shows a LogBuffer. The screen owns the stream; this widget owns what is shown and how."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "logview--timestamp",
        "logview--task",
        "logview--stderr",
        "logview--match",
        "logview--current-match",
    }
    DEFAULT_CSS = """
    LogView > .logview--timestamp { color: $text-muted; }
    LogView > .logview--task { color: $text-secondary; }
    LogView > .logview--stderr { color: $error; }
    LogView > .logview--match { background: $warning 40%; }
    LogView > .logview--current-match { background: $warning; color: $background; text-style: bold; }
    """

    follow: reactive[bool] = reactive(True)
    wrap: reactive[bool] = reactive(False)
    timestamps: reactive[bool] = reactive(True)
    new_lines: reactive[int] = reactive(0)  # arrived while not following

    def __init__(self, max_lines: int = 1_000_000, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.buffer = LogBuffer(max_lines=max_lines)
        self.service = ""  # stripped from task ids on screen
        self.search_text = ""
        self.filter_text = ""
        self._search: re.Pattern[str] | None = None
        self._filter: re.Pattern[str] | None = None
        self._visible: array | None = None  # absolute numbers of lines passing the filter; None = all
        self._matches: array = array("q")  # absolute numbers of shown lines matching the search
        self.current_match: int | None = None
        self._rows: list[tuple[int, int]] = []  # with wrap: (line number, start column) per display row
        self._max_width = 0

    # -- content --------------------------------------------------------------------------------
    def append(self, lines: Sequence[LogLine]) -> None:
        if not lines:
            return
        buffer = self.buffer
        first_new = buffer.total
        buffer.extend(lines)
        pairs = list(zip(range(first_new, buffer.total), lines, strict=True))
        if self._filter is not None:
            search_filter = self._filter.search
            pairs = [(n, line) for n, line in pairs if search_filter(line.text)]
            self._visible.extend(n for n, _ in pairs)  # type: ignore[union-attr]
        shown = [n for n, _ in pairs]
        if self._search is not None:
            search = self._search.search
            self._matches.extend(n for n, line in pairs if search(line.text))
        # Widest line with timestamps: stamp, space, task, " | ", message.
        widest = max(TIMESTAMP_WIDTH + 4 + len(line.task) + len(line.text) for line in lines)
        self._max_width = max(self._max_width, widest)
        if self.wrap:
            self._rows.extend(self._wrap_rows(shown))
        self._prune()
        if not self.follow:
            self.new_lines += len(shown)
        self._update_size()
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    def clear(self) -> None:
        self.buffer.clear()
        self._visible = array("q") if self._filter is not None else None
        self._matches = array("q")
        self._rows.clear()
        self.current_match = None
        self.new_lines = 0
        self._max_width = 0
        self._update_size()
        self.refresh()

    def _prune(self) -> None:
        """Forget the numbers of lines the buffer dropped."""
        first = self.buffer.first
        if self._visible and self._visible[0] < first:
            del self._visible[: bisect_left(self._visible, first)]
        if self._matches and self._matches[0] < first:
            del self._matches[: bisect_left(self._matches, first)]
        if self.current_match is not None and self.current_match < first:
            self.current_match = None
        if self._rows and self._rows[0][0] < first:
            del self._rows[: bisect_left(self._rows, (first, 0))]

    def visible_numbers(self) -> Sequence[int]:
        return range(self.buffer.first, self.buffer.total) if self._visible is None else self._visible

    @property
    def visible_count(self) -> int:
        return len(self.buffer) if self._visible is None else len(self._visible)

    def shown_text(self, number: int) -> str:
        line = self.buffer.line(number)
        return prefix_of(line, self.timestamps, self.service) + line.text

    # -- display rows ---------------------------------------------------------------------------
    def _wrap_width(self) -> int:
        return max(self.scrollable_content_region.width or self.size.width, 10)

    def _wrap_rows(self, numbers: Iterable[int]) -> list[tuple[int, int]]:
        width = self._wrap_width()
        rows: list[tuple[int, int]] = []
        for number in numbers:
            length = len(self.shown_text(number))
            rows.extend((number, column) for column in range(0, max(length, 1), width))
        return rows

    def _rebuild(self) -> None:
        """After the filter, wrap, timestamps or the width changed."""
        self._prune()
        self._rows = self._wrap_rows(self.visible_numbers()) if self.wrap else []
        self._update_size()
        self.refresh()

    def _row_count(self) -> int:
        return len(self._rows) if self.wrap else self.visible_count

    def _update_size(self) -> None:
        width = 0 if self.wrap else self._max_width - (0 if self.timestamps else TIMESTAMP_WIDTH + 1)
        self.virtual_size = Size(max(width, 0), self._row_count())

    def _row_of(self, number: int) -> int | None:
        """Display row of an absolute line number."""
        if self.wrap:
            row = bisect_left(self._rows, (number, 0))
            return row if row < len(self._rows) and self._rows[row][0] == number else None
        if self._visible is None:
            first = self.buffer.first
            return number - first if first <= number < self.buffer.total else None
        row = bisect_left(self._visible, number)
        return row if row < len(self._visible) and self._visible[row] == number else None

    def _line_at_row(self, row: int) -> tuple[int, int] | None:
        if self.wrap:
            return self._rows[row] if 0 <= row < len(self._rows) else None
        visible = self.visible_numbers()
        return (visible[row], 0) if 0 <= row < len(visible) else None

    def on_resize(self) -> None:
        if self.wrap:
            self._rebuild()

    def watch_wrap(self) -> None:
        self._rebuild()

    def watch_timestamps(self) -> None:
        self._rebuild()

    def watch_follow(self, follow: bool) -> None:
        if follow:
            self.new_lines = 0
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    # -- search and filter ----------------------------------------------------------------------
    def set_filter(self, text: str) -> None:
        """Show only lines whose message matches `text` (a regex, case-insensitive; `!` inverts).
        Raises ValueError, with a readable message, on a bad regex."""
        invert = text.startswith("!")
        pattern = text[1:] if invert else text
        self._filter = LogBuffer.compile(pattern, regex=True, ignore_case=True) if pattern else None
        self.filter_text = text
        if self._filter is None:
            self._visible = None
        else:
            self._visible = self.buffer.filter(self._filter, invert=invert)
            if invert:  # new lines are tested with the same sense
                self._filter = _Inverted(self._filter)  # type: ignore[assignment]
        self._recompute_matches()
        self._rebuild()
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def set_search(self, text: str) -> int:
        """Highlight matches and jump to the first one at or below the top row; returns the match count.
        Raises ValueError, with a readable message, on a bad regex."""
        self._search = LogBuffer.compile(text, regex=True, ignore_case=True) if text else None
        self.search_text = text
        self._recompute_matches()
        self.current_match = None
        if self._matches:
            self.next_match()
        self.refresh()
        return len(self._matches)

    def _recompute_matches(self) -> None:
        if self._search is None:
            self._matches = array("q")
        else:
            matches = self.buffer.search(self._search)
            if self._visible is not None:
                shown = set(self._visible)
                matches = array("q", (n for n in matches if n in shown))
            self._matches = matches
        if self.current_match is not None and self._row_in(self._matches, self.current_match) is None:
            self.current_match = None

    @staticmethod
    def _row_in(numbers: Sequence[int], number: int) -> int | None:
        row = bisect_left(numbers, number)
        return row if row < len(numbers) and numbers[row] == number else None

    @property
    def match_count(self) -> int:
        return len(self._matches)

    @property
    def match_position(self) -> int | None:
        """1-based position of the current match."""
        if self.current_match is None:
            return None
        return bisect_left(self._matches, self.current_match) + 1

    def next_match(self, backwards: bool = False) -> bool:
        if not self._matches:
            return False
        if self.current_match is None:
            top = self._line_at_row(int(self.scroll_y))
            anchor = top[0] if top else self.buffer.first
            position = bisect_left(self._matches, anchor)
            if backwards:
                position -= 1
        else:
            position = bisect_left(self._matches, self.current_match) + (-1 if backwards else 1)
        self.current_match = self._matches[position % len(self._matches)]
        self.follow = False
        row = self._row_of(self.current_match)
        if row is not None:
            height = self.scrollable_content_region.height
            self.scroll_to(y=max(row - height // 3, 0), animate=False, immediate=True)
        self.refresh()
        return True

    def shown_lines(self) -> Iterable[str]:
        """What a save writes: the lines passing the filter, as shown (timestamps per the toggle)."""
        return (self.shown_text(n) for n in self.visible_numbers())

    # -- rendering ------------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self.rich_style
        located = self._line_at_row(scroll_y + y)
        if located is None:
            return Strip.blank(width, base)
        number, column = located
        text = self._styled(number)
        if self.wrap:
            text = text[column : column + width]
            scroll_x = 0
        segments = list(text.render(self.app.console))
        strip = Strip(Segment.apply_style(segments, base), text.cell_len)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _styled(self, number: int) -> Text:
        line = self.buffer.line(number)
        prefix = prefix_of(line, self.timestamps, self.service)
        text = Text(prefix + line.text, no_wrap=True, end="")
        task_start = 0
        if self.timestamps:
            text.stylize(self._component_style("logview--timestamp"), 0, TIMESTAMP_WIDTH)
            task_start = TIMESTAMP_WIDTH + 1
        text.stylize(self._component_style("logview--task"), task_start, len(prefix) - 3)
        if line.stream == "stderr":
            text.stylize(self._component_style("logview--stderr"), len(prefix))
        if self._search is not None:
            style = self._component_style(
                "logview--current-match" if number == self.current_match else "logview--match"
            )
            for start, end in LogBuffer.spans(self._search, line.text):
                text.stylize(style, len(prefix) + start, len(prefix) + end)
        return text

    def _component_style(self, name: str) -> Style:
        return self.get_component_rich_style(name, partial=True)

    # -- scrolling up turns follow off, going to the end turns it back on --------------------------
    def action_scroll_up(self) -> None:
        self.follow = False
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self.follow = False
        super().action_page_up()

    def action_scroll_home(self) -> None:
        self.follow = False
        super().action_scroll_home()

    def action_scroll_end(self) -> None:
        self.follow = True

    def _on_mouse_scroll_up(self, event) -> None:
        self.follow = False
        super()._on_mouse_scroll_up(event)


class _Inverted:
    """A pattern whose `search` succeeds where the wrapped one fails (the `!` filter)."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern

    def search(self, text: str) -> bool:
        return self.pattern.search(text) is None
