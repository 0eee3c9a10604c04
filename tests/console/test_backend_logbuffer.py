"""LogBuffer: bounded memory with a drop count, absolute line numbers, search/filter, marks. Speed is in
bench/bench_logs.py, not here."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.backend.logbuffer import CHUNK, MAX_LINE_CHARS, LogBuffer
from console.backend.models import LogLine


def test_append_and_read_back_with_metadata():
    buf = LogBuffer()
    when = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    for i in range(CHUNK + 10):  # spans a sealed chunk and the open one
        buf.append(
            LogLine(
                task=f"svc.1.t{i % 3}@n1",
                text=f"line {i}",
                timestamp=when if i % 2 else None,
                stream="stderr" if i % 5 == 0 else "stdout",
            )
        )
    assert len(buf) == CHUNK + 10 and buf.total == CHUNK + 10 and buf.dropped == 0
    for n in (0, 1, CHUNK - 1, CHUNK, CHUNK + 9):
        line = buf.line(n)
        assert line.text == f"line {n}" and line.task == f"svc.1.t{n % 3}@n1"
        assert line.stream == ("stderr" if n % 5 == 0 else "stdout")
        assert line.timestamp == (when if n % 2 else None)
    assert [line.text for line in buf.lines(CHUNK - 1, CHUNK + 1)] == [f"line {CHUNK - 1}", f"line {CHUNK}"]


def test_line_cap_drops_oldest_chunks_and_counts_them():
    buf = LogBuffer(max_lines=CHUNK * 2)
    for i in range(CHUNK * 5 + 7):
        buf.append(f"line {i}")
    assert buf.dropped == CHUNK * 3 and len(buf) == CHUNK * 2 + 7
    assert buf.first == CHUNK * 3
    assert buf.text(buf.first) == f"line {CHUNK * 3}"  # absolute numbers survive the drop
    with pytest.raises(IndexError, match="not held"):
        buf.text(0)


def test_byte_cap_bounds_memory():
    buf = LogBuffer(max_bytes=1024 * 1024)
    for i in range(200_000):
        buf.append("x" * 90 + str(i))
    assert buf.nbytes <= 1024 * 1024 + CHUNK * 200  # the cap plus at most one open chunk of ~150-byte strs
    assert buf.dropped > 0 and len(buf) + buf.dropped == 200_000


def test_long_lines_are_cut_and_newlines_flattened():
    buf = LogBuffer()
    buf.append("a" * (MAX_LINE_CHARS * 3))
    buf.append("two\nlines")
    assert len(buf.text(0)) == MAX_LINE_CHARS + 1 and buf.text(0).endswith("…")
    assert buf.text(1) == "two lines"


def test_search_substring_regex_case_and_open_chunk():
    buf = LogBuffer()
    for i in range(CHUNK * 3):
        buf.append(f"{'ERROR' if i % 1000 == 3 else 'info'} request {i}")
    hits = list(buf.search("ERROR"))
    assert hits == [i for i in range(CHUNK * 3) if i % 1000 == 3]
    assert list(buf.search("error")) == []
    assert list(buf.search("error", ignore_case=True)) == hits
    assert list(buf.search(r"request 12\d$", regex=True)) == list(range(120, 130))
    assert list(buf.search("request 1.0")) == []  # a substring search is literal
    with pytest.raises(ValueError, match="bad regular expression"):
        buf.search("(", regex=True)


def test_dense_search_matches_the_sparse_answer():
    buf = LogBuffer()
    for i in range(CHUNK * 2 + 5):
        buf.append(f"GET /api/kernels {i}" if i % 7 else f"POST /api/sessions {i}")
    assert list(buf.search("kernels")) == [i for i in range(CHUNK * 2 + 5) if i % 7]


def test_filter_and_invert():
    buf = LogBuffer()
    buf.extend(["alpha", "beta", "alphabet", "gamma"])
    assert list(buf.filter("alpha")) == [0, 2]
    assert list(buf.filter("alpha", invert=True)) == [1, 3]


def test_spans_for_highlighting():
    rx = LogBuffer.compile("ab", ignore_case=True)
    assert LogBuffer.spans(rx, "xxABxxab") == [(2, 4), (6, 8)]


def test_new_lines_since_mark_and_clear():
    buf = LogBuffer()
    buf.extend(str(i) for i in range(10))
    buf.mark()
    assert buf.new_since_mark == 0
    buf.extend(["a", "b", "c"])
    assert buf.new_since_mark == 3
    buf.clear()
    assert len(buf) == 0 and buf.dropped == 0 and buf.first == 13
    buf.append("after")
    assert buf.text(13) == "after"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(alphabet="abc xyz\n", max_size=12), max_size=CHUNK + 50),
    st.text(alphabet="abcxyz", min_size=1, max_size=3),
)
def test_search_agrees_with_a_plain_scan(lines, needle):
    buf = LogBuffer()
    buf.extend(lines)
    flat = [line.replace("\n", " ") for line in lines]
    assert list(buf.search(needle)) == [i for i, t in enumerate(flat) if needle in t]
    rx = re.compile(re.escape(needle))
    assert list(buf.search(rx)) == [i for i, t in enumerate(flat) if rx.search(t)]
