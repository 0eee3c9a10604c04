"""How the console writes values and rows, for the TUI's tables and the CLI's alike: ages, sizes, CPUs, states,
and one row per server. A `Cell` shows `text`, sorts by `sort` and, in the TUI, carries a style; the CLI prints
the text. No Textual here (rich only, for the TUI's styled text)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from rich.text import Text

from console.backend.models import CheckStatus, Health, ServerRow

STATE_STYLES = {
    "ready": "bold green",
    "running": "green",
    "ok": "green",
    "pass": "green",
    "active": "green",
    "pending spawn": "yellow",
    "pending stop": "yellow",
    "preparing": "yellow",
    "starting": "yellow",
    "pending": "yellow",
    "assigned": "yellow",
    "degraded": "yellow",
    "warn": "yellow",
    "drain": "yellow",
    "pause": "yellow",
    "failed": "bold red",
    "rejected": "bold red",
    "down": "bold red",
    "fail": "bold red",
    "stopped": "dim",
    "shutdown": "dim",
    "complete": "dim",
    "skip": "dim",
    "unknown": "dim",
}


@dataclass(frozen=True, eq=True)
class Cell:
    """What a DataTable shows (`text`) and what it sorts by (`sort`); None sorts last."""

    text: str
    sort: Any = None
    style: str = ""

    def __rich__(self) -> Text:
        return Text(self.text, style=self.style, no_wrap=True, overflow="ellipsis")

    def _key(self) -> tuple:
        value = self.text.lower() if self.sort is None else self.sort
        return (self.sort is None and not self.text, value)

    def __lt__(self, other: Cell) -> bool:
        try:
            return self._key() < other._key()
        except TypeError:  # mixed types in one column: fall back to the text
            return self.text.lower() < other.text.lower()


def state_cell(state: str) -> Cell:
    return Cell(state, state, STATE_STYLES.get(state.lower(), ""))


def health_style(health: Health | CheckStatus | str) -> str:
    return STATE_STYLES.get(str(getattr(health, "value", health)).lower(), "")


def age(then: datetime | None, now: datetime) -> str:
    """k9s-style age: 42s, 7m, 3h12m, 5d."""
    if then is None:
        return "-"
    seconds = int((now - then).total_seconds())
    if seconds < 0:
        seconds = 0
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    return f"{hours // 24}d"


def age_cell(then: datetime | None, now: datetime) -> Cell:
    # Sort by the timestamp itself: most recent first under reverse sort.
    return Cell(age(then, now), then.timestamp() if then else None)


def size(num_bytes: int | None) -> str:
    if num_bytes is None:
        return "-"
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f}{unit}" if unit == "B" or value >= 100 else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}TiB"


def size_cell(num_bytes: int | None) -> Cell:
    return Cell(size(num_bytes), num_bytes)


def cpus_cell(cpus: float | None) -> Cell:
    return Cell("-" if cpus is None else f"{cpus:g}", cpus)


# -- servers: one row, written once -------------------------------------------------------------

SERVER_COLUMNS: list[tuple[str, str]] = [
    ("user", "USER"), ("server", "SERVER"), ("state", "STATE"), ("started", "STARTED"),
    ("activity", "ACTIVITY"), ("xsi_type", "XSITYPE"), ("item", "ITEM"), ("project", "PROJECT"),
    ("task", "TASK"), ("node", "NODE"), ("cpu", "CPU"), ("mem", "MEM"), ("cpu_limit", "CPU LIM"),
    ("mem_limit", "MEM LIM"), ("service", "SERVICE"), ("image", "IMAGE"),
]  # fmt: skip


def usage_cells(row: ServerRow) -> tuple[Cell, Cell]:
    """CPU and memory of the server's container, or why there are none."""
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


def server_cells(row: ServerRow, now: datetime) -> tuple[Cell, ...]:
    """One server, in SERVER_COLUMNS order."""
    task = Cell(row.task_state or "-", row.task_state, "bold red" if row.task_error else "")
    return (
        Cell(row.user), Cell(row.server or "(default)", row.server), state_cell(row.state),
        age_cell(row.started, now), age_cell(row.last_activity, now),
        Cell(row.xsi_type or "-"), Cell(row.item_id or "-"), Cell(row.project_id or "-"),
        task, Cell(row.node or "-"), *usage_cells(row), cpus_cell(row.cpu_limit), size_cell(row.mem_limit),
        Cell(row.service_name or "-"), Cell(row.image or "-"),
    )  # fmt: skip


# -- the CLI's output ----------------------------------------------------------------------------

def to_jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: to_jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    print(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False))


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Aligned columns, two spaces apart, no trailing blanks."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)
