"""LogBuffer: bounded memory with a drop count, absolute line numbers, search/filter. Speed is in
bench/bench_logs.py, not here."""

from __future__ import annotations

import re
import sys
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


def test_filter_and_invert():
    buf = LogBuffer()
    buf.extend(["alpha", "beta", "alphabet", "gamma"])
    assert list(buf.filter("alpha")) == [0, 2]
    assert list(buf.filter("alpha", invert=True)) == [1, 3]


def test_spans_for_highlighting():
    rx = LogBuffer.compile("ab", ignore_case=True)
    assert LogBuffer.spans(rx, "xxABxxab") == [(2, 4), (6, 8)]


def test_clear_forgets_without_counting_as_dropped():
    buf = LogBuffer()
    buf.extend(str(i) for i in range(CHUNK + 13))  # an iterator, across a sealed chunk
    buf.clear()
    assert len(buf) == 0 and buf.dropped == 0 and buf.first == CHUNK + 13
    assert list(buf.search("1")) == []
    buf.append("after")
    assert buf.text(CHUNK + 13) == "after" and list(buf.search("after")) == [CHUNK + 13]
    buf.extend(f"x{i}" for i in range(CHUNK))  # seals a chunk that starts where clear left off
    assert buf.text(CHUNK * 2 + 13) == f"x{CHUNK - 1}" and list(buf.search("x0")) == [CHUNK + 14]


def test_extend_in_batches_keeps_numbers_and_metadata_across_seals():
    buf = LogBuffer()
    when = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    lines = [
        LogLine(task="a.1.x@n1", text=f"t{i}", timestamp=when, stream="stderr" if i == 5000 else "stdout")
        for i in range(CHUNK * 3 + 1)
    ]
    for start in range(0, len(lines), 1000):  # batches that do not line up with chunks
        buf.extend(lines[start : start + 1000])
    assert buf.total == len(lines) and len(buf) == len(lines)
    assert [buf.line(n) for n in (0, 4999, 5000, CHUNK * 3)] == [lines[n] for n in (0, 4999, 5000, CHUNK * 3)]


def test_plain_strings_mixed_with_log_lines():
    buf = LogBuffer()
    for i in range(CHUNK + 2):
        buf.append(f"s{i}" if i % 2 else LogLine(task="t", text=f"l{i}", stream="stderr"))
    assert buf.line(1) == LogLine(task="", text="s1") and buf.line(2) == LogLine(task="t", text="l2", stream="stderr")
    assert buf.line(CHUNK + 1) == LogLine(task="", text=f"s{CHUNK + 1}")
    assert list(buf.search("s1")) == [i for i in range(CHUNK + 2) if i % 2 and str(i).startswith("1")]


def test_long_lines_and_newlines_are_cleaned_before_and_after_sealing():
    buf = LogBuffer()
    buf.append("a" * (MAX_LINE_CHARS + 5))
    buf.append("x\ny")
    assert buf.text(1) == "x y" and len(buf.text(0)) == MAX_LINE_CHARS + 1  # still pending
    assert list(buf.search("x y")) == [1]
    buf.extend("z" for _ in range(CHUNK))
    assert buf.text(1) == "x y" and len(buf.text(0)) == MAX_LINE_CHARS + 1  # sealed
    assert list(buf.search("x y")) == [1] and list(buf.search(r"^x$", regex=True)) == []


def test_a_regex_never_matches_across_lines():
    buf = LogBuffer()
    buf.extend(["foo", "bar", "foo bar"] * (CHUNK // 3 + 1))
    expect = [i for i in range(len(buf)) if i % 3 == 2]
    assert list(buf.search(r"foo\s+bar", regex=True)) == expect
    assert list(buf.search(r"foo[^x]bar", regex=True)) == expect
    assert list(buf.search(r"\Afoo", regex=True)) == [i for i in range(len(buf)) if i % 3 != 1]
    assert list(buf.search(r"bar\Z", regex=True)) == [i for i in range(len(buf)) if i % 3]
    assert list(buf.search(r"foo(?!\s)", regex=True)) == [i for i in range(len(buf)) if i % 3 == 0]
    assert list(buf.search(re.compile("^bar$"))) == [i for i in range(len(buf)) if i % 3 == 1]  # no MULTILINE
    sparse = LogBuffer()  # few hits: found in the joined text, then each checked on its own line
    sparse.extend(["foo", "bar"] + ["filler"] * CHUNK + ["foo bar"])
    assert list(sparse.search(r"foo\s+bar", regex=True)) == [CHUNK + 2]


def test_a_line_matching_twice_is_found_once():
    buf = LogBuffer()
    buf.extend(["-"] * CHUNK + ["q"] + ["-"] * CHUNK)
    assert list(buf.search(r"\b", regex=True)) == [CHUNK]  # \b matches before and after "q"


def test_dense_and_sparse_hits_agree_with_a_plain_scan():
    texts = [f"{'GET' if i % 9 else 'POST'} /api/kernels {i}" for i in range(CHUNK * 3 + 7)]
    buf = LogBuffer()
    buf.extend(texts)
    for pattern, regex in (("kernels", False), ("POST", False), (r"\d7$", True), (r"^G.T", True), ("s 1", False),
                           (r"kernels 40\d\d$", True)):
        rx = re.compile(pattern if regex else re.escape(pattern))
        assert list(buf.search(pattern, regex=regex)) == [i for i, t in enumerate(texts) if rx.search(t)], pattern
    assert list(buf.search("post", ignore_case=True)) == [i for i in range(len(texts)) if i % 9 == 0]


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
    spanning = re.compile(re.escape(needle) + r"\s*[ax]")  # could match across lines in the joined text
    assert list(buf.search(spanning)) == [i for i, t in enumerate(flat) if spanning.search(t)]


PIECES = ["a", "b", r"\s", ".", "[^a]", r"\S", "x*", "$", "^", r"\b", "(a|b)", r"\d", r"\W", "[a-c]", "y?", "(?s:.)",
          r"\Ay", r"z\Z", "(?=a)", "[^\\n]", "(?:ab)+"]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.text(alphabet="abc xyz\n", max_size=10), min_size=1, max_size=60),
    st.integers(min_value=0, max_value=CHUNK * 2),
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=3),
)
def test_any_regex_agrees_with_a_plain_scan(sample, filler, pieces):
    """Each way a regex is searched (joined text, line by line, checked hits) finds what testing lines alone does."""
    lines = sample * (CHUNK // len(sample) + 1) + ["filler"] * filler  # sealed chunks, dense and sparse ones
    buf = LogBuffer()
    buf.extend(lines)
    rx = LogBuffer.compile("".join(pieces), regex=True)
    flat = [line.replace("\n", " ") for line in lines]
    assert list(buf.search(rx)) == [i for i, t in enumerate(flat) if rx.search(t)]


@pytest.mark.parametrize("misses", [[], [0], [CHUNK - 1], [0, 1, 2000, CHUNK - 1], list(range(0, CHUNK, 40))])
def test_hits_of_a_nearly_all_matching_chunk_are_cut_from_its_run_of_numbers(misses):
    """Few misses in a chunk (the run cut around each miss), misses at its edges, and more than a few (one by one)."""
    texts = ["miss" if i % CHUNK in misses else f"hit {i}" for i in range(CHUNK * 2 + 5)]
    buf = LogBuffer()
    buf.extend(texts)
    assert list(buf.search("hit")) == [i for i, t in enumerate(texts) if "hit" in t]
    assert list(buf.search("miss")) == [i for i, t in enumerate(texts) if t == "miss"]


def test_a_chunks_size_is_what_its_strings_measure():
    ascii_buf, other_buf = LogBuffer(), LogBuffer()
    ascii_buf.extend(f"line {i}" for i in range(CHUNK))
    other_buf.extend(f"línea {i} ✓" for i in range(CHUNK))
    for buf in (ascii_buf, other_buf):
        chunk = buf._sealed[0]
        measured = sys.getsizeof(chunk.texts) + sum(map(sys.getsizeof, chunk.texts)) + chunk.tasks.itemsize * CHUNK
        assert chunk.size == measured + (8 * CHUNK if chunk.times is not None else 0)
