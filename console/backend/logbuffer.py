"""A bounded log buffer for the log viewer: cheap ingest, a fixed memory cap, fast search.

New lines go to a pending list as they come (the LogLine objects the stream made anyway; appending is one list
operation). Every `CHUNK` lines the pending lines are packed into a sealed chunk: a tuple of their texts (the very
`str` objects the stream made, not copies) and small arrays of task, stream and timestamp. Packing is done column
by column with `map` over C-level getters, so no Python code runs per line, and it drops the LogLine objects: a
sealed line costs its string and ~18 bytes instead of ~300 bytes for a LogLine in a list, and the garbage
collector, which walks every LogLine of a list, never sees the held lines.

Search tests each line of a chunk from C: `map(contains, texts, ...)` for a literal (an ASCII literal ignoring
case against lowered ASCII lines), `map(rx.search, texts)` for a regex, so a regex means on each line exactly
what it means on that line alone. This is the same test a plain list of lines does, without the interpreter's
step per line; the answers become one byte per line, from which the hits' numbers are gathered (`_gather`). Lines
kept whole (rather than joined into one string per chunk, ~40% smaller) are what make a search where almost every
line matches cheap: nothing has to be split before it is tested.

The cap is both a line count and a byte count; when either is passed, the oldest sealed chunks are dropped and
`dropped` grows, so the viewer can say how many lines are gone. Line numbers are absolute (the first line ever
appended is 0), so search results stay valid while old lines are dropped.
"""

from __future__ import annotations

import math
import re
import sys
from array import array
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import compress, count, repeat
from operator import attrgetter, contains, truth

from console.backend.models import LogLine

CHUNK = 4096
MAX_LINE_CHARS = 10_000  # longer lines are cut (one 90k-char line froze lazydocker for 20 s)
_TEXT = attrgetter("text")
_TASK = attrgetter("task")
_STREAM = attrgetter("stream")
_TIME = attrgetter("timestamp")
_IS_STDERR = "stderr".__eq__
_ASCII_STR_HEADER = sys.getsizeof("")
# Below this many hits (or misses) in a chunk, a step of Python per hit (or miss) costs less than making a Python
# int for every line: the hits are found with bytes.find (or cut out of the chunk's whole run of numbers).
FEW = CHUNK // 32
_LANE_ONES = int.from_bytes(array("q", [1] * CHUNK).tobytes(), sys.byteorder)
_LANE_OFFSETS = int.from_bytes(array("q", range(CHUNK)).tobytes(), sys.byteorder)


def _clean(text: str) -> str:
    if len(text) > MAX_LINE_CHARS:
        text = text[:MAX_LINE_CHARS] + "…"
    return text.replace("\n", " ") if "\n" in text else text


def _as_line(raw: LogLine | str) -> LogLine:
    return LogLine(task="", text=raw) if isinstance(raw, str) else raw


def _literal(rx: re.Pattern[str]) -> tuple[str | None, bool]:
    """The plain text `rx` matches, if it is a literal (then `in` can do the work), and whether it ignores case
    (then only an ASCII literal, lowered, to be looked for in lowered ASCII lines)."""
    folded = bool(rx.flags & re.IGNORECASE)
    if rx.flags & re.VERBOSE or not isinstance(rx.pattern, str):
        return None, False
    text = re.sub(r"\\(.)", r"\1", rx.pattern, flags=re.DOTALL)
    if re.escape(text) != rx.pattern or "\n" in text or (folded and not text.isascii()):
        return None, False
    return (text.lower() if folded else text), folded


class _Chunk:
    __slots__ = ("ascii", "first", "size", "streams", "tasks", "texts", "times")

    def __init__(self, first: int, texts: tuple[str, ...], ascii: bool, tasks: array[int], streams: bytes | None,
                 times: array[float] | None, size: int):
        self.first = first  # absolute number of its first line
        self.texts = texts  # its CHUNK lines
        self.ascii = ascii  # every line is ASCII (then lower() folds case as an IGNORECASE regex does)
        self.tasks = tasks  # index into LogBuffer.task_names
        self.streams: bytes | None = streams  # 1 for stderr; None when every line is stdout
        self.times: array[float] | None = times  # epoch seconds, NaN where unknown; None when no line had one
        self.size = size  # bytes this chunk holds


class LogBuffer:
    def __init__(self, max_lines: int = 1_000_000, max_bytes: int = 48 * 1024 * 1024):
        if max_lines < CHUNK or max_bytes < 1024:
            raise ValueError(f"max_lines must be at least {CHUNK}, max_bytes at least 1024")
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self._sealed: deque[_Chunk] = deque()
        self._sealed_bytes = 0
        self._pending: list[LogLine | str] = []  # as they came, not yet packed; fewer than CHUNK
        self.task_names: list[str] = []
        self._task_index: dict[str, int] = {}
        self.total = 0  # lines ever appended
        self.dropped = 0  # lines dropped to stay under the cap
        self._first = 0  # absolute number of the oldest line held

    # -- writing -----------------------------------------------------------------------------

    def append(self, line: LogLine | str) -> None:
        self._pending.append(line)
        self.total += 1
        if len(self._pending) >= CHUNK:
            self._seal()

    def extend(self, lines: Iterable[LogLine | str]) -> None:
        pending = self._pending
        before = len(pending)
        pending.extend(lines)
        self.total += len(pending) - before
        if len(pending) >= CHUNK:
            self._seal()

    def _seal(self) -> None:
        pending = self._pending
        first = self.total - len(pending)
        done = 0
        while len(pending) - done >= CHUNK:
            self._sealed.append(self._pack(pending[done : done + CHUNK], first + done))
            self._sealed_bytes += self._sealed[-1].size
            done += CHUNK
        self._pending = pending[done:]
        while len(self._sealed) > 1 and (
            len(self._sealed) * CHUNK > self.max_lines or self._sealed_bytes > self.max_bytes
        ):
            old = self._sealed.popleft()
            self._sealed_bytes -= old.size
            self.dropped += CHUNK
            self._first = max(self._first, old.first + CHUNK)

    def _pack(self, batch: list[LogLine | str], first: int) -> _Chunk:
        try:
            texts = list(map(_TEXT, batch))
        except AttributeError:  # some lines are plain strings
            batch = list(map(_as_line, batch))
            texts = list(map(_TEXT, batch))
        joined = "\n".join(texts)  # one C pass to tell whether any line needs cleaning
        if joined.count("\n") != len(texts) - 1 or max(map(len, texts)) > MAX_LINE_CHARS:
            texts = list(map(_clean, texts))
            joined = "\n".join(texts)

        tasks = list(map(_TASK, batch))
        index = self._task_index
        for task in dict.fromkeys(tasks):
            if task not in index:
                index[task] = len(self.task_names)
                self.task_names.append(task)
        code = "H" if len(self.task_names) <= 65536 else "I"
        if tasks.count(tasks[0]) == len(tasks):
            task_array = array(code, [index[tasks[0]]]) * len(tasks)
        else:
            task_array = array(code, map(index.__getitem__, tasks))

        streams = list(map(_STREAM, batch))
        stream_bytes = bytes(map(_IS_STDERR, streams)) if "stderr" in streams else None

        stamps = list(map(_TIME, batch))
        try:
            times: array[float] | None = array("d", map(datetime.timestamp, stamps))
        except TypeError:  # some lines have no timestamp
            if stamps.count(None) == len(stamps):
                times = None
            else:
                times = array("d", [math.nan if s is None else s.timestamp() for s in stamps])

        held = tuple(texts)
        all_ascii = joined.isascii()
        # An ASCII str is a fixed header and a byte a character (the joined text's length less its newlines);
        # others are measured, as sys.getsizeof costs ~120 ns a line.
        size = sys.getsizeof(held) + task_array.itemsize * len(held)
        if all_ascii:
            size += len(held) * _ASCII_STR_HEADER + len(joined) - (len(held) - 1)
        else:
            size += sum(map(sys.getsizeof, held))
        size += len(stream_bytes) if stream_bytes is not None else 0
        size += 8 * len(times) if times is not None else 0
        return _Chunk(first, held, all_ascii, task_array, stream_bytes, times, size)

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
        return self._sealed_bytes + sum(sys.getsizeof(_as_line(raw).text) + 16 for raw in self._pending)

    def _locate(self, n: int) -> tuple[_Chunk | None, int]:
        if n < self._first or n >= self.total:
            raise IndexError(f"line {n} is not held (held: {self._first}..{self.total - 1})")
        pending_first = self.total - len(self._pending)
        if n >= pending_first:
            return None, n - pending_first
        chunk = self._sealed[(n - self._sealed[0].first) // CHUNK]  # every sealed chunk holds CHUNK lines
        return chunk, n - chunk.first

    def text(self, n: int) -> str:
        chunk, i = self._locate(n)
        return _clean(_as_line(self._pending[i]).text) if chunk is None else chunk.texts[i]

    def line(self, n: int) -> LogLine:
        chunk, i = self._locate(n)
        if chunk is None:
            raw = _as_line(self._pending[i])
            return LogLine(task=raw.task, text=_clean(raw.text), timestamp=raw.timestamp, stream=raw.stream)
        when = chunk.times[i] if chunk.times is not None else math.nan
        return LogLine(
            task=self.task_names[chunk.tasks[i]],
            text=chunk.texts[i],
            timestamp=None if math.isnan(when) else datetime.fromtimestamp(when, UTC),
            stream="stderr" if chunk.streams is not None and chunk.streams[i] else "stdout",
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
    def compile(pattern: str, *, regex: bool = False, ignore_case: bool = False) -> re.Pattern[str]:
        """A pattern for search/filter. Raises ValueError with a readable message on a bad regex."""
        flags = re.IGNORECASE if ignore_case else 0
        try:
            return re.compile(pattern if regex else re.escape(pattern), flags)
        except re.error as e:
            raise ValueError(f"bad regular expression: {e}") from None

    def search(self, pattern: str | re.Pattern[str], *, regex: bool = False, ignore_case: bool = False) -> array[int]:
        """Absolute numbers of held lines matching, in order (a compact array, fine for n/N jumps)."""
        rx = pattern if isinstance(pattern, re.Pattern) else self.compile(pattern, regex=regex, ignore_case=ignore_case)
        needle, folded = _literal(rx)
        found = array("q")
        for chunk in list(self._sealed):
            _gather(found, chunk.first, bytes(_tests(chunk.texts, rx, needle, folded and chunk.ascii)))
        pending = [_clean(_as_line(raw).text) for raw in self._pending]
        _gather(found, self.total - len(pending), bytes(_tests(pending, rx, needle, False)))
        return found

    def filter(
        self, pattern: str | re.Pattern[str], *, regex: bool = False, ignore_case: bool = False, invert: bool = False
    ) -> array[int]:
        """Absolute numbers of the lines a filtered view shows."""
        hits = self.search(pattern, regex=regex, ignore_case=ignore_case)
        if not invert:
            return hits
        hit_set = set(hits)
        return array("q", (n for n in range(self._first, self.total) if n not in hit_set))

    @staticmethod
    def spans(rx: re.Pattern[str], text: str) -> list[tuple[int, int]]:
        """Where `rx` matches in one line, for highlighting."""
        return [(m.start(), m.end()) for m in rx.finditer(text) if m.end() > m.start()]

    def clear(self) -> None:
        """Forget every line (the user's "clear", not counted as dropped)."""
        self._first = self.total
        self._sealed.clear()
        self._sealed_bytes = 0
        self._pending = []


def _tests(texts: Iterable[str], rx: re.Pattern[str], needle: str | None, fold_ascii: bool) -> Iterator[bool]:
    """Per line, whether `rx` matches it, from C. A literal is looked for with `in`; ignoring case, in the lowered
    lines when they are all ASCII (for other text, lower() and IGNORECASE fold differently, e.g. the Kelvin sign,
    so the regex is run)."""
    if needle is None or (rx.flags & re.IGNORECASE and not fold_ascii):
        return map(truth, map(rx.search, texts))
    return map(contains, map(str.lower, texts) if fold_ascii else texts, repeat(needle))


def _gather(found: array[int], first: int, hits: bytes) -> None:
    """Append the numbers of the lines whose byte in `hits` is 1 (line `first` is the first byte)."""
    misses = hits.count(0)
    if len(hits) - misses <= FEW:
        hit = hits.find(1)
        while hit >= 0:
            found.append(first + hit)
            hit = hits.find(1, hit + 1)
    elif misses > FEW:
        found.fromlist(list(compress(count(first), hits)))
    else:
        # first, first + 1, ... as int64 bytes, made by one big-int multiply-add that adds `first` to every 8-byte
        # lane at once (no lane carries into the next: line numbers stay far below 2**63).
        numbers = memoryview((_LANE_OFFSETS + first * _LANE_ONES).to_bytes(8 * CHUNK, sys.byteorder))
        start = 0
        miss = hits.find(0)
        while miss >= 0:
            found.frombytes(numbers[8 * start : 8 * miss])
            start = miss + 1
            miss = hits.find(0, start)
        found.frombytes(numbers[8 * start : 8 * len(hits)])
