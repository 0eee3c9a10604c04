"""A DataTable of resources, keyed by a stable id and updated by difference.

A refresh only removes vanished rows, adds new ones and updates the cells that changed, so the cursor and
the scroll position survive it (`clear()` plus re-adding every row would reset both). Filtering, sorting on
any column and marks for bulk actions live here, once, for every screen.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

from console.formatting import Cell

MARK_COLUMN = "_mark"
MARK = Cell("●", None, "bold cyan")
NO_MARK = Cell(" ")


class ResourceTable(DataTable):
    """Rows are `key -> tuple[Cell, ...]` in the order of `columns`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_mark", "Mark", id="mark"),
        Binding("ctrl+space", "clear_marks", "Unmark all", id="clear_marks", show=False),
        Binding("o", "cycle_sort", "Sort", id="sort"),
        Binding("O", "reverse_sort", "Reverse", id="reverse_sort", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "scroll_top", "Top", show=False),
        Binding("G", "scroll_bottom", "Bottom", show=False),
    ]

    class SortChanged(Message):
        def __init__(self, table: ResourceTable, column: str, reverse: bool) -> None:
            super().__init__()
            self.table = table
            self.column = column
            self.reverse = reverse

    class MarksChanged(Message):
        def __init__(self, table: ResourceTable, marked: frozenset[str]) -> None:
            super().__init__()
            self.table = table
            self.marked = marked

    def __init__(
        self,
        columns: Sequence[tuple[str, str]],
        *,
        sort_column: str | None = None,
        sort_reverse: bool = False,
        markable: bool = False,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.column_spec = list(columns)
        self.markable = markable
        self.sort_column = sort_column or self.column_spec[0][0]
        self.sort_reverse = sort_reverse
        self.filter_text = ""
        self._filter: re.Pattern[str] | None = None
        self._all: dict[str, tuple[Cell, ...]] = {}
        self._shown: dict[str, tuple[Cell, ...]] = {}
        self.marked: set[str] = set()

    def on_mount(self) -> None:
        if self.markable:
            self.add_column(" ", key=MARK_COLUMN, width=1)
        for key, label in self.column_spec:
            # Room for the sort arrow, so sorting never changes column widths.
            self.add_column(label + "  ", key=key)
        self._update_headers()

    # -- data -----------------------------------------------------------------------------------
    def set_rows(self, rows: Mapping[str, tuple[Cell, ...]]) -> None:
        self._all = dict(rows)
        self.marked &= set(self._all)
        self._apply()

    @property
    def total_rows(self) -> int:
        return len(self._all)

    @property
    def cursor_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except RowDoesNotExist:
            return None

    def targets(self) -> list[str]:
        """Marked rows that are shown, else the row under the cursor."""
        marked = [key for key in self._shown if key in self.marked]
        if marked:
            return marked
        key = self.cursor_key
        return [key] if key else []

    def _matches(self, cells: tuple[Cell, ...]) -> bool:
        if self._filter is None:
            return True
        invert = self.filter_text.startswith("!")
        found = any(self._filter.search(cell.text) for cell in cells)
        return found != invert

    def _row_cells(self, key: str, cells: tuple[Cell, ...]) -> tuple[Cell, ...]:
        if not self.markable:
            return cells
        return (MARK if key in self.marked else NO_MARK, *cells)

    def _apply(self, resort: bool = False) -> None:
        """Bring the shown rows in line with the data: remove, add, update changed cells; re-sort only when
        the order can have changed (a row came or went, a sort cell changed, or the sort itself did)."""
        cursor_key = self.cursor_key
        visible = {
            key: self._row_cells(key, cells) for key, cells in self._all.items() if self._matches(cells)
        }
        column_keys = ([MARK_COLUMN] if self.markable else []) + [key for key, _ in self.column_spec]
        with self.app.batch_update():
            gone = [key for key in self._shown if key not in visible]
            for key in gone:
                self.remove_row(key)
            resort = resort or bool(gone)
            for key, cells in visible.items():
                old = self._shown.get(key)
                if old is None:
                    self.add_row(*cells, key=key)
                    resort = True
                elif old != cells:
                    for column, before, after in zip(column_keys, old, cells, strict=True):
                        if before != after:
                            self.update_cell(key, column, after, update_width=True)
                            resort = resort or column == self.sort_column
            self._shown = visible
            if resort:
                self._sort()
            if cursor_key in visible:
                self.move_cursor(row=self.get_row_index(cursor_key), animate=False)

    def _sort(self) -> None:
        if self.row_count > 1:
            self.sort(self.sort_column, reverse=self.sort_reverse)

    # -- filter and sort ------------------------------------------------------------------------
    def set_filter(self, text: str) -> None:
        self.filter_text = text
        pattern = text[1:] if text.startswith("!") else text
        if not pattern:
            self._filter = None
        else:
            try:
                self._filter = re.compile(pattern, re.IGNORECASE)
            except re.error:
                self._filter = re.compile(re.escape(pattern), re.IGNORECASE)
        self._apply()

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        if column not in {key for key, _ in self.column_spec}:
            raise KeyError(column)
        if reverse is None:
            reverse = not self.sort_reverse if column == self.sort_column else False
        self.sort_column, self.sort_reverse = column, reverse
        self._update_headers()
        self._apply(resort=True)
        self.post_message(self.SortChanged(self, column, reverse))

    def column_for(self, name: str) -> str | None:
        """A column key from its key or label, case-insensitive, unique prefix allowed."""
        name = name.lower()
        candidates = [key for key, label in self.column_spec if key.lower() == name or label.lower() == name]
        if not candidates:
            candidates = [
                key for key, label in self.column_spec if key.lower().startswith(name) or label.lower().startswith(name)
            ]
        return candidates[0] if len(candidates) == 1 else None

    def action_cycle_sort(self) -> None:
        keys = [key for key, _ in self.column_spec]
        self.sort_by(keys[(keys.index(self.sort_column) + 1) % len(keys)], reverse=False)

    def action_reverse_sort(self) -> None:
        self.sort_by(self.sort_column, reverse=not self.sort_reverse)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        column = event.column_key.value
        if column is not None and column != MARK_COLUMN:
            self.sort_by(column)

    def _update_headers(self) -> None:
        arrow = " ▼" if self.sort_reverse else " ▲"
        for key, label in self.column_spec:
            column = self.columns.get(key)  # type: ignore[call-overload]
            if column is not None:
                column.label = Text(label + (arrow if key == self.sort_column else "  "))
        self.refresh()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Hidden from the footer and help where there is nothing to mark.
        return self.markable or action not in ("toggle_mark", "clear_marks")

    # -- marks ----------------------------------------------------------------------------------
    def action_toggle_mark(self) -> None:
        key = self.cursor_key
        if not self.markable or key is None:
            return
        self.marked.symmetric_difference_update({key})
        self._apply()
        self.action_cursor_down()
        self.post_message(self.MarksChanged(self, frozenset(self.marked)))

    def action_clear_marks(self) -> None:
        self.marked.clear()
        self._apply()
        self.post_message(self.MarksChanged(self, frozenset()))

