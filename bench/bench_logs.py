"""Log viewer figures: our LogBuffer against a naive unbounded list of lines (lazydocker keeps every line).

    .venv/bin/python -m bench.bench_logs [--lines 1000000]

Each contender runs in its own child process so RSS growth is its own. Printed: ingest lines/s, RSS growth at
the end, search time over everything held (a rare word, a common word, a regex), and our/baseline ratios.
Goals (issue 4): ingest >= 100k lines/s, RSS growth <= 50 MB at 1M lines, search over 1M lines <= 200 ms.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from console.backend.models import LogLine

TASKS = [f"jupyter-user{i:02d}--nb.1.{i:012x}@node{i % 2 + 1}" for i in range(8)]
T0 = datetime(2026, 11, 27, tzinfo=UTC).timestamp()


def make_lines(n: int):
    """Realistic single-user server lines; 1 in 100 holds "Traceback"."""
    for i in range(n):
        text = (
            f"[I 2026-11-27 10:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d} ServerApp] "
            f"{'Traceback (most recent call last)' if i % 100 == 7 else '200 GET /api/kernels'} ({i % 97}) {i}"
        )
        yield LogLine(
            task=TASKS[i % len(TASKS)],
            text=text,
            timestamp=datetime.fromtimestamp(T0 + i / 1000, UTC),
            stream="stdout",
        )


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run(kind: str, n: int) -> dict:
    source = make_lines(n)
    before = rss_bytes()
    if kind in ("ours", "ours-uncapped"):
        from console.backend.logbuffer import LogBuffer

        # "ours" runs with the default cap; "ours-uncapped" holds every line, for search over all of them.
        buf = LogBuffer() if kind == "ours" else LogBuffer(max_bytes=1 << 31)
        start = time.perf_counter()
        for line in source:
            buf.append(line)
        ingest = time.perf_counter() - start
        held, dropped = len(buf), buf.dropped

        def search(pattern: str, regex: bool) -> int:
            return len(buf.search(pattern, regex=regex))
    else:
        naive: list[LogLine] = []
        start = time.perf_counter()
        for line in source:
            naive.append(line)
        ingest = time.perf_counter() - start
        held, dropped = len(naive), 0

        def search(pattern: str, regex: bool) -> int:
            rx = re.compile(pattern if regex else re.escape(pattern))
            return sum(1 for line in naive if rx.search(line.text))

    growth = rss_bytes() - before
    timings = {}
    for label, pattern, regex in (
        ("rare", "Traceback", False),
        ("common", "kernels", False),
        ("regex", r"\(\d{2}\) \d+5$", True),
    ):
        best = None
        for _ in range(3):
            t = time.perf_counter()
            hits = search(pattern, regex)
            elapsed = time.perf_counter() - t
            best = elapsed if best is None else min(best, elapsed)
        timings[label] = {"seconds": best, "hits": hits}
    return {"ingest_lps": n / ingest, "rss_growth": growth, "held": held, "dropped": dropped, "search": timings}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--child", choices=["ours", "ours-uncapped", "naive"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run(args.child, args.lines)))
        return 0
    results = {}
    for kind in ("ours", "ours-uncapped", "naive"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, "--lines", str(args.lines)],
            capture_output=True,
            text=True,
            check=True,
        )
        results[kind] = json.loads(out.stdout)
    ours, full, naive = results["ours"], results["ours-uncapped"], results["naive"]
    mb = 1024 * 1024
    print(f"lines ingested: {args.lines:,}")
    print(f"ours, default cap (48 MB): held {ours['held']:,}, dropped {ours['dropped']:,} (shown to the user)")
    print(f"ours, uncapped: held {full['held']:,} (search rows below are over these, like the naive list)")

    def row(name: str, ours_value: float, base_value: float, fmt: str, goal: str) -> None:
        ratio = ours_value / base_value if base_value else float("nan")
        print(f"{name:<34}{ours_value:>14{fmt}}{base_value:>14{fmt}}{ratio:>12.2f}   {goal}")

    print(f"{'figure':<34}{'ours':>14}{'naive list':>14}{'ours/naive':>12}   goal")
    row("ingest (lines/s)", ours["ingest_lps"], naive["ingest_lps"], ",.0f", ">= 100,000")
    row("RSS growth (MB)", ours["rss_growth"] / mb, naive["rss_growth"] / mb, ".1f", "<= 50")
    for label in ("rare", "common", "regex"):
        o, b = full["search"][label], naive["search"][label]
        row(f"search {label} (ms, {o['hits']:,} hits)", o["seconds"] * 1000, b["seconds"] * 1000, ".1f", "<= 200")
    ok = (
        ours["ingest_lps"] >= 100_000
        and ours["rss_growth"] <= 50 * mb
        and all(full["search"][k]["seconds"] <= 0.2 for k in ("rare", "common", "regex"))
    )
    print("goals met" if ok else "GOALS NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
