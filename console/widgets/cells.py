"""Table cells that display one thing and sort by another, and the formatting they share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.text import Text

from console.backend.models import CheckStatus, Health

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
