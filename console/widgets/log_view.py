"""A bounded, searchable, filterable log view (Line API: only the visible rows are ever rendered).

Memory is bounded by `max_lines`: the oldest lines are dropped and counted, so a log of any length costs the
same (lazydocker keeps everything and gets OOM-killed; k9s caps at 5k lines). Search highlights matches and
jumps with n/N; the filter (less's `&`) hides lines that do not match; both work over the whole buffer.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.backend.models import LogLine

MAX_LINE_LENGTH = 2000  # longer lines are cut, so one huge line cannot stall rendering
TIMESTAMP_WIDTH = 20  # "2026-11-27T12:00:00Z"


class LogRing:
    """The last `max_lines` lines, addressed by an absolute index that keeps growing.

    A list with a moving start, compacted in bulk, gives O(1) indexing and amortised O(1) appends.
    """

    def __init__(self, max_lines: int) -> None:
        if max_lines < 1:
            raise ValueError("max_lines must be at least 1")
        self.max_lines = max_lines
        self._lines: list[str] = []
        self._start = 0  # position of the oldest kept line in _lines
        self.first = 0  # absolute index of the oldest kept line
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._lines) - self._start

    @property
    def end(self) -> int:
        """Absolute index one past the newest line."""
        return self.first + len(self)

    def extend(self, lines: Iterable[str]) -> None:
        self._lines.extend(lines)
        excess = len(self) - self.max_lines
        if excess > 0:
            self._start += excess
            self.first += excess
            self.dropped += excess
            if self._start > self.max_lines // 2:  # compact in bulk
                del self._lines[: self._start]
                self._start = 0

    def __getitem__(self, index: int) -> str:
        """By absolute index."""
        return self._lines[self._start + index - self.first]

    def indices(self) -> range:
        return range(self.first, self.end)

    def clear(self) -> None:
        self.dropped += len(self)
        self.first = self.end
        self._lines.clear()
        self._start = 0


def format_line(line: LogLine) -> str:
    stamp = line.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ") if line.timestamp else ""
    return f"{stamp:<{TIMESTAMP_WIDTH}} {line.task} | {line.text[:MAX_LINE_LENGTH]}"


def _compile(pattern: str) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error:
        return re.compile(re.escape(pattern), re.IGNORECASE)


class LogView(ScrollView, can_focus=True):
    """Shows a LogRing. The screen owns the stream; this widget owns display state."""

    COMPONENT_CLASSES = {
        "logview--timestamp",
        "logview--task",
        "logview--match",
        "logview--current-match",
    }
    DEFAULT_CSS = """
    LogView > .logview--timestamp { color: $text-muted; }
    LogView > .logview--task { color: $secondary; }
    LogView > .logview--match { background: $warning 40%; }
    LogView > .logview--current-match { background: $warning; color: $background; text-style: bold; }
    """

    follow: reactive[bool] = reactive(True)
    wrap: reactive[bool] = reactive(False)
    timestamps: reactive[bool] = reactive(True)
    new_lines: reactive[int] = reactive(0)  # arrived while not following

    def __init__(self, max_lines: int = 100_000, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.ring = LogRing(max_lines)
        self.search_text = ""
        self.filter_text = ""
        self._search: re.Pattern[str] | None = None
        self._filter: re.Pattern[str] | None = None
        self._visible: list[int] | None = None  # absolute indices passing the filter; None = all
        self._matches: list[int] = []  # absolute indices (visible) matching the search
        self.current_match: int | None = None
        self._rows: list[tuple[int, int]] = []  # with wrap: (absolute index, start column) per display row
        self._wrap_width = 0
        self._max_width = 0

    # -- content --------------------------------------------------------------------------------
    def append(self, lines: Iterable[LogLine]) -> None:
        start = self.ring.end
        formatted = [format_line(line) for line in lines]
        if not formatted:
            return
        self.ring.extend(formatted)
        new = range(max(start, self.ring.first), self.ring.end)
        added_visible = [i for i in new if self._passes(i)] if self._filter else list(new)
        if self._visible is not None:
            self._visible.extend(added_visible)
        if self._search:
            self._matches.extend(i for i in added_visible if self._search.search(self.ring[i]))
        if self.wrap:
            self._rows.extend(self._wrap_rows(added_visible))
        self._max_width = max(self._max_width, max(len(self._shown_text(i)) for i in added_visible) if added_visible else 0)
        self._prune()
        if not self.follow:
            self.new_lines += len(added_visible)
        self._update_size()
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    def clear(self) -> None:
        self.ring.clear()
        self._visible = [] if self._filter else None
        self._matches.clear()
        self._rows.clear()
        self.current_match = None
        self.new_lines = 0
        self._max_width = 0
        self._update_size()
        self.refresh()

    def _prune(self) -> None:
        """Forget indices of lines the ring dropped."""
        first = self.ring.first
        if self._visible and self._visible[0] < first:
            del self._visible[: bisect_left(self._visible, first)]
        if self._matches and self._matches[0] < first:
            del self._matches[: bisect_left(self._matches, first)]
            if self.current_match is not None and self.current_match < first:
                self.current_match = None
        if self._rows and self._rows[0][0] < first:
            del self._rows[: bisect_left(self._rows, (first, 0))]

    def _passes(self, index: int) -> bool:
        return self._filter is None or bool(self._filter.search(self.ring[index]))

    def visible_indices(self) -> list[int] | range:
        return self.ring.indices() if self._visible is None else self._visible

    @property
    def visible_count(self) -> int:
        return len(self.ring) if self._visible is None else len(self._visible)

    def _shown_text(self, index: int) -> str:
        text = self.ring[index]
        return text if self.timestamps else text[TIMESTAMP_WIDTH + 1 :]

    # -- display rows ---------------------------------------------------------------------------
    def _wrap_rows(self, indices: Iterable[int]) -> list[tuple[int, int]]:
        width = max(self._wrap_width, 10)
        rows = []
        for index in indices:
            length = len(self._shown_text(index))
            rows.extend((index, column) for column in range(0, max(length, 1), width))
        return rows

    def _rebuild(self) -> None:
        """After the filter, wrap, timestamps or the width changed."""
        self._prune()
        if self.wrap:
            self._wrap_width = self.scrollable_content_region.width or self.size.width
            self._rows = self._wrap_rows(self.visible_indices())
        else:
            self._rows = []
        self._update_size()
        self.refresh()

    def _row_count(self) -> int:
        return len(self._rows) if self.wrap else self.visible_count

    def _update_size(self) -> None:
        width = 0 if self.wrap else self._max_width - (0 if self.timestamps else TIMESTAMP_WIDTH + 1)
        self.virtual_size = Size(max(width, 0), self._row_count())

    def _row_of(self, index: int) -> int | None:
        """Display row of an absolute line index."""
        if self.wrap:
            row = bisect_left(self._rows, (index, 0))
            return row if row < len(self._rows) and self._rows[row][0] == index else None
        if self._visible is None:
            return index - self.ring.first if self.ring.first <= index < self.ring.end else None
        row = bisect_left(self._visible, index)
        return row if row < len(self._visible) and self._visible[row] == index else None

    def _line_at_row(self, row: int) -> tuple[int, int] | None:
        if self.wrap:
            return self._rows[row] if 0 <= row < len(self._rows) else None
        visible = self.visible_indices()
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
        self.filter_text = text
        self._filter = _compile(text)
        self._visible = None if self._filter is None else [i for i in self.ring.indices() if self._passes(i)]
        self._max_width = max((len(self.ring[i]) for i in self.visible_indices()), default=0)
        self._recompute_matches()
        self._rebuild()
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def set_search(self, text: str) -> int:
        """Highlight matches and jump to the first one at or below the top row; returns the match count."""
        self.search_text = text
        self._search = _compile(text)
        self._recompute_matches()
        self.current_match = None
        if self._matches:
            self.next_match()
        self.refresh()
        return len(self._matches)

    def _recompute_matches(self) -> None:
        search = self._search
        self._matches = [i for i in self.visible_indices() if search.search(self.ring[i])] if search else []
        if self.current_match not in self._matches:
            self.current_match = None

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
            anchor = top[0] if top else self.ring.first
            position = bisect_left(self._matches, anchor)
            if backwards:
                position -= 1
        else:
            position = bisect_left(self._matches, self.current_match) + (-1 if backwards else 1)
        self.current_match = self._matches[position % len(self._matches)]
        self.follow = False
        row = self._row_of(self.current_match)
        if row is not None:
            self.scroll_to(y=max(row - self.scrollable_content_region.height // 3, 0), animate=False, immediate=True)
        self.refresh()
        return True

    def shown_lines(self) -> Iterable[str]:
        """What a save writes: the lines passing the filter, as shown (timestamps per the toggle)."""
        return (self._shown_text(i) for i in self.visible_indices())

    # -- rendering ------------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self.rich_style
        located = self._line_at_row(scroll_y + y)
        if located is None:
            return Strip.blank(width, base)
        index, column = located
        text = self._styled(index)
        if self.wrap:
            text = text[column : column + width]
            scroll_x = 0
        segments = list(text.render(self.app.console))
        strip = Strip(Segment.apply_style(segments, base), text.cell_len)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _styled(self, index: int) -> Text:
        raw = self._shown_text(index)
        text = Text(raw, no_wrap=True, end="")
        offset = 0
        if self.timestamps:
            text.stylize(self._component_style("logview--timestamp"), 0, TIMESTAMP_WIDTH)
            offset = TIMESTAMP_WIDTH + 1
        bar = raw.find(" | ", offset)
        if bar > 0:
            text.stylize(self._component_style("logview--task"), offset, bar)
        if self._search is not None and raw:
            style = self._component_style(
                "logview--current-match" if index == self.current_match else "logview--match"
            )
            for match in self._search.finditer(raw):
                if match.end() > match.start():
                    text.stylize(style, match.start(), match.end())
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
