"""A bounded log buffer for the log viewer: cheap ingest, a fixed memory cap, fast search.

New lines go to a pending list as they come (the LogLine objects the stream made anyway; appending is one list
operation). Every `CHUNK` lines the pending lines are packed into a sealed chunk: their texts joined by "\\n" into
one string, an array of line offsets, and small arrays of task, stream and timestamp. Packing is done column by
column with `map` over C-level getters, so no Python code runs per line; a sealed chunk costs about one byte per
character (~91 bytes a line here) instead of ~300 bytes a line for a list of LogLine objects.

Search runs over each chunk's single string: `str.find` for a literal (fast search with skips; an ASCII literal
ignoring case is found in a lowered copy, which keeps every offset), a hit's line found with bisect on the
offsets. A regex that can never match "\n" runs with `finditer` over the chunk, each match's line counted from C.
When most lines of a chunk match, the chunk is tested line by line from C instead (split, map, compress).

The cap is both a line count and a byte count; when either is passed, the oldest sealed chunks are dropped and
`dropped` grows, so the viewer can say how many lines are gone. Line numbers are absolute (the first line ever
appended is 0), so search results stay valid while old lines are dropped.
"""

from __future__ import annotations

import math
import re
import sys
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import accumulate, chain, compress, count, repeat, tee
from operator import add, attrgetter, contains

from console.backend.models import LogLine

CHUNK = 4096
MAX_LINE_CHARS = 10_000  # longer lines are cut (one 90k-char line froze lazydocker for 20 s)
# Past this many hits in a chunk, a Python step per hit costs more than testing each line from C.
DENSE_STEPS = CHUNK // 8
# Past this many matches in a chunk, the C pipeline per match (_lines_matching) costs more than testing each line.
DENSE_MATCHES = CHUNK // 4
PROBE_HITS = 16  # matches seen before guessing a chunk's density
# A pattern using these can match differently in the joined text than in one line alone (string anchors,
# lookarounds that would see the "\n" between lines), so it is tested line by line.
_PER_LINE_ONLY = ("\\A", "\\Z", "(?<", "(?=", "(?!")

_TEXT = attrgetter("text")
_TASK = attrgetter("task")
_STREAM = attrgetter("stream")
_TIME = attrgetter("timestamp")
_IS_STDERR = "stderr".__eq__
_MATCH_START = re.Match.start


def _clean(text: str) -> str:
    if len(text) > MAX_LINE_CHARS:
        text = text[:MAX_LINE_CHARS] + "…"
    return text.replace("\n", " ") if "\n" in text else text


def _as_line(raw: LogLine | str) -> LogLine:
    return LogLine(task="", text=raw) if isinstance(raw, str) else raw


def _literal(rx: re.Pattern[str]) -> tuple[str | None, bool]:
    """The plain text `rx` matches, if it is a literal (then str.find can do the work), and whether it ignores
    case (then only an ASCII literal, searched for lowered in lowered ASCII text, which keeps every offset)."""
    folded = bool(rx.flags & re.IGNORECASE)
    if rx.flags & re.VERBOSE or not isinstance(rx.pattern, str):
        return None, False
    text = re.sub(r"\\(.)", r"\1", rx.pattern, flags=re.DOTALL)
    if re.escape(text) != rx.pattern or "\n" in text or (folded and not text.isascii()):
        return None, False
    return (text.lower() if folded else text), folded


class _Chunk:
    __slots__ = ("first", "size", "starts", "streams", "tasks", "text", "times")

    def __init__(self, first: int, text: str, starts: array[int], tasks: array[int], streams: bytes | None,
                 times: array[float] | None, size: int):
        self.first = first  # absolute number of its first line
        self.text = text  # its CHUNK lines joined by "\n"
        self.starts = starts  # offset of each line's start in text, plus len(text)+1 at the end
        self.tasks = tasks  # index into LogBuffer.task_names
        self.streams: bytes | None = streams  # 1 for stderr; None when every line is stdout
        self.times: array[float] | None = times  # epoch seconds, NaN where unknown; None when no line had one
        self.size = size  # bytes this chunk holds

    def line_text(self, i: int) -> str:
        return self.text[self.starts[i] : self.starts[i + 1] - 1]


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
        text = "\n".join(texts)
        if text.count("\n") != len(texts) - 1 or max(map(len, texts)) > MAX_LINE_CHARS:
            texts = list(map(_clean, texts))
            text = "\n".join(texts)
        starts = array("I", [0])
        starts.extend(map(add, accumulate(map(len, texts)), count(1)))

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

        size = sys.getsizeof(text) + starts.itemsize * len(starts) + task_array.itemsize * len(texts)
        size += len(stream_bytes) if stream_bytes is not None else 0
        size += 8 * len(times) if times is not None else 0
        return _Chunk(first, text, starts, task_array, stream_bytes, times, size)

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
        return _clean(_as_line(self._pending[i]).text) if chunk is None else chunk.line_text(i)

    def line(self, n: int) -> LogLine:
        chunk, i = self._locate(n)
        if chunk is None:
            raw = _as_line(self._pending[i])
            return LogLine(task=raw.task, text=_clean(raw.text), timestamp=raw.timestamp, stream=raw.stream)
        when = chunk.times[i] if chunk.times is not None else math.nan
        return LogLine(
            task=self.task_names[chunk.tasks[i]],
            text=chunk.line_text(i),
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
        flags = re.MULTILINE | (re.IGNORECASE if ignore_case else 0)
        try:
            return re.compile(pattern if regex else re.escape(pattern), flags)
        except re.error as e:
            raise ValueError(f"bad regular expression: {e}") from None

    def search(self, pattern: str | re.Pattern[str], *, regex: bool = False, ignore_case: bool = False) -> array[int]:
        """Absolute numbers of held lines matching, in order (a compact array, fine for n/N jumps)."""
        rx = pattern if isinstance(pattern, re.Pattern) else self.compile(pattern, regex=regex, ignore_case=ignore_case)
        if not rx.flags & re.MULTILINE:  # same meaning on one line; in the joined text ^ and $ need it
            rx = re.compile(rx.pattern, rx.flags | re.MULTILINE)
        needle, folded = _literal(rx)
        per_line = needle is None and any(token in rx.pattern for token in _PER_LINE_ONLY)
        to_line_end = None if needle is not None or per_line else _to_line_end(rx)
        found: list[int] = []
        for chunk in list(self._sealed):
            if needle is not None and (not folded or chunk.text.isascii()):
                # Folding ASCII text with lower() keeps every offset, so the lowered copy maps back to lines.
                _find_literal(chunk, chunk.text.lower() if folded else chunk.text, needle, found)
            elif per_line:
                _find_each_line(chunk, rx, found)
            elif to_line_end is None:
                _find_regex(chunk, rx, found)
            elif _dense(chunk, to_line_end):
                _find_each_line(chunk, rx, found)
            else:
                found.extend(_lines_matching(chunk, to_line_end, dedupe=True))
        pending_first = self.total - len(self._pending)
        texts = [_clean(_as_line(raw).text) for raw in self._pending]
        found.extend(compress(count(pending_first), map(rx.search, texts)))
        return array("q", found)

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


def _find_each_line(chunk: _Chunk, rx: re.Pattern[str], found: list[int]) -> None:
    found.extend(compress(range(chunk.first, chunk.first + CHUNK), map(rx.search, chunk.text.split("\n"))))


def _find_literal(chunk: _Chunk, text: str, needle: str, found: list[int]) -> None:
    """str.find from hit to hit, a step of Python each; when the first hits come thick, test each line from C
    instead (split, map, compress)."""
    starts, first, find = chunk.starts, chunk.first, text.find
    pos = find(needle)
    hits = 0
    while pos >= 0:
        i = bisect_right(starts, pos) - 1
        found.append(first + i)
        hits += 1
        if hits == PROBE_HITS and pos * DENSE_STEPS < PROBE_HITS * len(text):
            del found[-hits:]
            lines = text.split("\n")
            found.extend(compress(range(first, first + CHUNK), map(contains, lines, repeat(needle))))
            return
        pos = find(needle, starts[i + 1])


def _dense(chunk: _Chunk, to_line_end: re.Pattern[str]) -> bool:
    """Whether the first PROBE_HITS matches come at a pace of more than DENSE_MATCHES in the chunk."""
    search, text = to_line_end.search, chunk.text
    pos = 0
    for _ in range(PROBE_HITS):
        m = search(text, pos)
        if m is None:
            return False
        pos = m.end() + 1
    return pos * DENSE_MATCHES < PROBE_HITS * len(text)


def _lines_matching(chunk: _Chunk, to_line_end: re.Pattern[str], *, dedupe: bool) -> Iterable[int]:
    """Numbers of the lines `to_line_end` matches in, from C alone: finditer yields at most one match per line (the
    pattern runs on to the line's end), and a match's line is its predecessor's plus the newlines between them."""
    text = chunk.text
    now, before = tee(map(_MATCH_START, to_line_end.finditer(text)))
    lines = accumulate(map(text.count, repeat("\n"), chain((0,), before), now), initial=chunk.first)
    next(lines)  # the initial value, not a match
    return dict.fromkeys(lines) if dedupe else lines  # an empty match at a line's end repeats that line


def _find_regex(chunk: _Chunk, rx: re.Pattern[str], found: list[int]) -> None:
    """For a regex that may match "\\n": each hit in the joined text is checked on its own line."""
    text, starts, first, search = chunk.text, chunk.starts, chunk.first, rx.search
    end = len(text)
    hits: list[int] = []
    pos = 0
    while pos <= end:
        m = search(text, pos)
        if m is None:
            break
        at = m.start()
        i = bisect_right(starts, at) - 1
        if len(hits) == PROBE_HITS and at * DENSE_STEPS < PROBE_HITS * end:
            _find_each_line(chunk, rx, found)  # on this pace the chunk has more than DENSE_STEPS hits
            return
        line_end = starts[i + 1] - 1
        # A match running past its line's end may hold only because of the next line: check the line alone.
        if m.end() <= line_end or search(text, starts[i], line_end):
            hits.append(first + i)
        pos = line_end + 1
    found.extend(hits)


def _to_line_end(rx: re.Pattern[str]) -> re.Pattern[str] | None:
    """`rx` run on to the end of its line, if `rx` can never match "\\n" (so never spans two lines)."""
    if not _stays_on_one_line(rx.pattern, rx.flags):
        return None
    try:
        return re.compile(f"(?:{rx.pattern}).*", rx.flags & ~re.DOTALL)
    except re.error:  # e.g. global inline flags, which must come first
        return None


# Escapes that never match "\n": digits, word characters, non-space, and (outside a class) word boundaries.
_ONE_LINE_ESCAPES = frozenset("dwSbB")
_ONE_LINE_CLASS_ESCAPES = frozenset("dwS")


def _stays_on_one_line(pattern: str, flags: int) -> bool:
    """Whether the pattern can never match "\\n", read from its text alone (conservative: False for anything
    that might, e.g. `\\s`, `\\n`, `\\x0a`, a negated class, DOTALL or inline flags). A False only means the
    slower search that checks each hit on its own line."""
    if flags & (re.DOTALL | re.VERBOSE) or any(ord(c) <= 10 for c in pattern):  # a raw control char may start a range
        return False
    i, end, in_class = 0, len(pattern), False
    while i < end:
        c = pattern[i]
        if c == "\\":
            escaped = pattern[i + 1 : i + 2]
            safe = _ONE_LINE_CLASS_ESCAPES if in_class else _ONE_LINE_ESCAPES
            if not escaped or (escaped.isalnum() and escaped not in safe):
                return False
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "^":  # a negated class matches "\n" unless it names it
                return False
            if pattern[i + 1 : i + 2] == "]":  # a "]" first in a class is a literal
                i += 1
        elif pattern.startswith("(?", i):
            letters = i + 2
            while letters < end and pattern[letters].isalpha():
                letters += 1
            if set(pattern[i + 2 : letters]) & set("sx"):  # (?s) or (?x) change what the rest means
                return False
        i += 1
    return True
