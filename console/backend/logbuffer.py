"""A bounded log buffer for the log viewer: O(1) append, a fixed memory cap, fast search.

Lines are kept in chunks of `CHUNK` lines. The open chunk is a plain list; a full chunk is sealed into one
string (its lines joined by "\\n") plus an array of line offsets and small per-line arrays (task, stream,
timestamp). Sealed chunks cost about one byte per character instead of ~50 bytes of object overhead per line,
and search runs `re` over each chunk's single string (C speed), mapping match positions to lines with bisect.

The cap is both a line count and a byte count; when either is passed, the oldest sealed chunks are dropped and
`dropped` grows, so the viewer can say how many lines are gone. Line numbers are absolute (the first line ever
appended is 0), so marks and search results stay valid while old lines are dropped.
"""

from __future__ import annotations

import math
import re
import sys
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate, compress

from console.backend.models import LogLine

CHUNK = 4096
DENSE_HITS = 200  # past this many hits in one chunk, test it line by line from C
PROBE_HITS = 16  # hits seen before guessing a chunk's density
MAX_LINE_CHARS = 10_000  # longer lines are cut (one 90k-char line froze lazydocker for 20 s)


@dataclass
class _Chunk:
    first: int  # absolute number of its first line
    text: str  # lines joined by "\n"
    starts: array  # offset of each line's start in text, plus len(text)+1 at the end
    tasks: array  # index into LogBuffer.task_names
    streams: bytes  # 0 stdout, 1 stderr
    times: array | None  # epoch seconds, NaN where unknown; None when no line had one
    size: int  # bytes this chunk holds

    @property
    def count(self) -> int:
        return len(self.starts) - 1

    def line_text(self, i: int) -> str:
        return self.text[self.starts[i] : self.starts[i + 1] - 1]


class LogBuffer:
    def __init__(self, max_lines: int = 1_000_000, max_bytes: int = 48 * 1024 * 1024):
        if max_lines < CHUNK or max_bytes < 1024:
            raise ValueError(f"max_lines must be at least {CHUNK}, max_bytes at least 1024")
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self._sealed: deque[_Chunk] = deque()
        self._sealed_lines = 0
        self._sealed_bytes = 0
        self._open_text: list[str] = []
        self._open_tasks: list[int] = []
        self._open_streams = bytearray()
        self._open_times: list[float] = []
        self._open_has_time = False
        self.task_names: list[str] = []
        self._task_index: dict[str, int] = {}
        self.total = 0  # lines ever appended
        self.dropped = 0  # lines dropped to stay under the cap
        self._first = 0  # absolute number of the oldest line held

    # -- writing -----------------------------------------------------------------------------

    def append(self, line: LogLine | str) -> None:
        if isinstance(line, str):
            text, task, stream, when = line, "", "stdout", None
        else:
            text, task, stream, when = line.text, line.task, line.stream, line.timestamp
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + "…"
        if "\n" in text:
            text = text.replace("\n", " ")
        index = self._task_index.get(task)
        if index is None:
            index = self._task_index[task] = len(self.task_names)
            self.task_names.append(task)
        self._open_text.append(text)
        self._open_tasks.append(index)
        self._open_streams.append(1 if stream == "stderr" else 0)
        if when is not None:
            self._open_has_time = True
            self._open_times.append(when.timestamp())
        else:
            self._open_times.append(math.nan)
        self.total += 1
        if len(self._open_text) >= CHUNK:
            self._seal()

    def extend(self, lines: Iterable[LogLine | str]) -> None:
        for line in lines:
            self.append(line)

    def _seal(self) -> None:
        texts = self._open_text
        text = "\n".join(texts)
        starts = array("I", [0])
        starts.extend(accumulate(len(t) + 1 for t in texts))
        chunk = _Chunk(
            first=self.total - len(texts),
            text=text,
            starts=starts,
            tasks=array("H" if len(self.task_names) < 65536 else "I", self._open_tasks),
            streams=bytes(self._open_streams),
            times=array("d", self._open_times) if self._open_has_time else None,
            size=0,
        )
        chunk.size = (
            sys.getsizeof(text) + starts.itemsize * len(starts) + chunk.tasks.itemsize * len(texts) + len(texts)
        )
        if chunk.times is not None:
            chunk.size += 8 * len(texts)
        self._sealed.append(chunk)
        self._sealed_lines += chunk.count
        self._sealed_bytes += chunk.size
        self._open_text, self._open_tasks, self._open_streams = [], [], bytearray()
        self._open_times, self._open_has_time = [], False
        while len(self._sealed) > 1 and (self._sealed_lines > self.max_lines or self._sealed_bytes > self.max_bytes):
            old = self._sealed.popleft()
            self._sealed_lines -= old.count
            self._sealed_bytes -= old.size
            self.dropped += old.count
            self._first = max(self._first, old.first + old.count)

    # -- reading -----------------------------------------------------------------------------

    @property
    def first(self) -> int:
        """Absolute number of the oldest line still held."""
        return self._first

    def __len__(self) -> int:
        return self.total - self._first

    @property
    def nbytes(self) -> int:
        """About how much memory the held lines use."""
        return self._sealed_bytes + sum(sys.getsizeof(t) + 16 for t in self._open_text)

    def _locate(self, n: int) -> tuple[_Chunk | None, int]:
        if n < self._first or n >= self.total:
            raise IndexError(f"line {n} is not held (held: {self._first}..{self.total - 1})")
        open_first = self.total - len(self._open_text)
        if n >= open_first:
            return None, n - open_first
        i = (n - self._sealed[0].first) // CHUNK  # every sealed chunk holds exactly CHUNK lines
        chunk = self._sealed[i]
        return chunk, n - chunk.first

    def text(self, n: int) -> str:
        chunk, i = self._locate(n)
        return self._open_text[i] if chunk is None else chunk.line_text(i)

    def line(self, n: int) -> LogLine:
        chunk, i = self._locate(n)
        if chunk is None:
            text, task, stream, when = (
                self._open_text[i],
                self._open_tasks[i],
                self._open_streams[i],
                self._open_times[i],
            )
        else:
            text, task, stream = chunk.line_text(i), chunk.tasks[i], chunk.streams[i]
            when = chunk.times[i] if chunk.times is not None else math.nan
        return LogLine(
            task=self.task_names[task],
            text=text,
            timestamp=None if math.isnan(when) else datetime.fromtimestamp(when, UTC),
            stream="stderr" if stream else "stdout",
        )

    def lines(self, start: int, stop: int) -> list[LogLine]:
        """Held lines with absolute numbers in [start, stop)."""
        start, stop = max(start, self._first), min(stop, self.total)
        return [self.line(n) for n in range(start, stop)]

    def __iter__(self) -> Iterator[LogLine]:
        for n in range(self._first, self.total):
            yield self.line(n)

    # -- search and filter -------------------------------------------------------------------

    @staticmethod
    def compile(pattern: str, *, regex: bool = False, ignore_case: bool = False) -> re.Pattern:
        """A pattern for search/filter. Raises ValueError with a readable message on a bad regex."""
        flags = re.MULTILINE | (re.IGNORECASE if ignore_case else 0)
        try:
            return re.compile(pattern if regex else re.escape(pattern), flags)
        except re.error as e:
            raise ValueError(f"bad regular expression: {e}") from None

    def search(self, pattern: str | re.Pattern, *, regex: bool = False, ignore_case: bool = False) -> array:
        """Absolute numbers of held lines matching, in order (a compact array, fine for n/N jumps)."""
        rx = pattern if isinstance(pattern, re.Pattern) else self.compile(pattern, regex=regex, ignore_case=ignore_case)
        found = array("q")
        for chunk in list(self._sealed):
            text, starts, first = chunk.text, chunk.starts, chunk.first
            search = rx.search
            hits: list[int] = []
            pos, end = 0, len(text)
            dense = False
            while pos <= end:
                m = search(text, pos)
                if m is None:
                    break
                i = bisect_right(starts, m.start()) - 1
                hits.append(first + i)
                if len(hits) == PROBE_HITS and m.start() * DENSE_HITS < PROBE_HITS * end:
                    dense = True  # on this pace the chunk would have more than DENSE_HITS hits
                    break
                pos = starts[i + 1]  # next line: one hit per line
            if dense:
                # Most lines match: testing each line from C (split + map + compress) beats a Python loop per hit.
                found.extend(compress(range(first, first + chunk.count), map(search, text.split("\n"))))
            else:
                found.extend(hits)
        open_first = self.total - len(self._open_text)
        for i, t in enumerate(self._open_text):
            if rx.search(t):
                found.append(open_first + i)
        return found

    def filter(
        self, pattern: str | re.Pattern, *, regex: bool = False, ignore_case: bool = False, invert: bool = False
    ) -> array:
        """Absolute numbers of the lines a filtered view shows."""
        hits = self.search(pattern, regex=regex, ignore_case=ignore_case)
        if not invert:
            return hits
        hit_set = set(hits)
        return array("q", (n for n in range(self._first, self.total) if n not in hit_set))

    @staticmethod
    def spans(rx: re.Pattern, text: str) -> list[tuple[int, int]]:
        """Where `rx` matches in one line, for highlighting."""
        return [(m.start(), m.end()) for m in rx.finditer(text) if m.end() > m.start()]

    def clear(self) -> None:
        """Forget every line (the user's "clear", not counted as dropped)."""
        self._first = self.total
        self._sealed.clear()
        self._sealed_lines = self._sealed_bytes = 0
        self._open_text, self._open_tasks, self._open_streams = [], [], bytearray()
        self._open_times, self._open_has_time = [], False
