"""Log viewer figures: our LogBuffer against a plain list of LogLine objects, from one run, as ratios.

    .venv/bin/python -m bench.bench_logs [--lines 1000000] [--rounds 3]

The baseline is what a log viewer does without a buffer of its own (lazydocker keeps every line): a list the
stream's LogLine objects are appended to, searched with a list comprehension (`needle in line.text` for a word,
`rx.search(line.text)` for a regex). Both take lines the way the console does, in batches (`extend`), as the
stream makes them; making the lines is the same code for both and is timed in a third run on its own, so the
store's own cost per line is printed too.

- ingest and memory: each contender in a fresh child process (its RSS growth is its own), alternating, best of
  --rounds. Ours runs with its default cap (48 MB), the list holds everything: the memory ratio is what the
  console holds at most against what the list grows to.
- search: one child holds both, every line in each (ours uncapped), and times them alternately on the same
  lines, best of 5; the hits must be the same.

Goals (issue 13): memory <= 0.2x the list's; search (rare word, common word, regex) <= 1.0x the list's time;
ingest >= 1.0x the list's lines/s.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

from console.backend.models import LogLine

TASKS = [f"jupyter-user{i:02d}--nb.1.{i:012x}@node{i % 2 + 1}" for i in range(8)]
T0 = datetime(2026, 11, 27, tzinfo=UTC).timestamp()
ROOT = Path(__file__).resolve().parent.parent
BATCH = 200  # lines per extend; the logs screen hands over what arrived every 0.1 s
SEARCHES = (  # label, pattern, regex
    ("rare", "Traceback", False),
    ("common", "kernels", False),
    ("regex", r"\(\d{2}\) \d+5$", True),
)
EXTRA = (("rare, ignore case", "traceback", True),)  # what the console's / does; printed, not a goal


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


def batches(n: int):
    source = make_lines(n)
    while batch := list(islice(source, BATCH)):
        yield batch


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def ingest(kind: str, n: int) -> dict:
    before = rss_bytes()
    held, dropped = 0, 0
    start = time.perf_counter()
    if kind == "ours":
        from console.backend.logbuffer import LogBuffer

        buf = LogBuffer()
        for batch in batches(n):
            buf.extend(batch)
        elapsed = time.perf_counter() - start
        held, dropped = len(buf), buf.dropped
    elif kind == "list":
        lines: list[LogLine] = []
        for batch in batches(n):
            lines.extend(batch)
        elapsed = time.perf_counter() - start
        held = len(lines)
    else:  # "source": only making the lines, the floor both share
        for _batch in batches(n):
            pass
        elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "rss_growth": rss_bytes() - before, "held": held, "dropped": dropped}


def search(n: int) -> dict:
    from console.backend.logbuffer import LogBuffer

    buf = LogBuffer(max_lines=n + 8192, max_bytes=1 << 40)  # holds every line, like the list
    lines: list[LogLine] = []
    for batch in batches(n):
        buf.extend(batch)
        lines.extend(batch)
    assert len(buf) == len(lines) == n

    def plain(pattern: str, regex: bool, ignore_case: bool) -> list[int]:
        if regex or ignore_case:
            rx = re.compile(pattern if regex else re.escape(pattern), re.IGNORECASE if ignore_case else 0)
            return [i for i, line in enumerate(lines) if rx.search(line.text)]
        return [i for i, line in enumerate(lines) if pattern in line.text]

    results = {}
    for label, pattern, regex in SEARCHES + EXTRA:
        ignore_case = label.endswith("ignore case")
        best = {"ours": float("inf"), "list": float("inf")}
        for _ in range(5):
            t = time.perf_counter()
            ours = buf.search(pattern, regex=regex, ignore_case=ignore_case)
            best["ours"] = min(best["ours"], time.perf_counter() - t)
            t = time.perf_counter()
            base = plain(pattern, regex, ignore_case)
            best["list"] = min(best["list"], time.perf_counter() - t)
        if list(ours) != base:
            raise SystemExit(f"search {label!r}: ours found {len(ours)} lines, the list {len(base)}")
        results[label] = {**best, "hits": len(base)}
    return results


def child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.bench_logs", *args], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="ingest runs of each contender (best is kept)")
    parser.add_argument("--child", choices=["ours", "list", "source", "search"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "search":
        print(json.dumps(search(args.lines)))
        return 0
    if args.child:
        print(json.dumps(ingest(args.child, args.lines)))
        return 0

    runs: dict[str, list[dict]] = {"ours": [], "list": [], "source": []}
    for _ in range(args.rounds):
        for kind in runs:
            runs[kind].append(child(["--child", kind, "--lines", str(args.lines)]))
    best = {kind: min(results, key=lambda r: r["seconds"]) for kind, results in runs.items()}
    growth = {kind: min(r["rss_growth"] for r in results) for kind, results in runs.items()}
    found = child(["--child", "search", "--lines", str(args.lines)])

    n, mb = args.lines, 1024 * 1024
    ours, plain, source = best["ours"], best["list"], best["source"]
    print(f"lines: {n:,} in batches of {BATCH}; ingest best of {args.rounds} alternating runs; search best of 5")
    print(f"ours (default cap 48 MB) holds {ours['held']:,}, dropped {ours['dropped']:,} (shown to the user); "
          f"the list holds {plain['held']:,}")
    print(f"{'figure':<36}{'ours':>12}{'plain list':>12}{'ratio':>8}  goal")
    verdicts = []

    def row(name: str, ours_value: float, base_value: float, fmt: str, goal: str, met: bool | None) -> None:
        ratio = ours_value / base_value if base_value else float("nan")
        verdict = "" if met is None else ("met" if met else "NOT MET")
        if met is not None:
            verdicts.append(met)
        print(f"{name:<36}{ours_value:>12{fmt}}{base_value:>12{fmt}}{ratio:>8.2f}  {goal} {verdict}")

    ours_lps, base_lps = n / ours["seconds"], n / plain["seconds"]
    row("ingest (lines/s)", ours_lps, base_lps, ",.0f", ">= 1.0x", ours_lps >= base_lps)
    memory_ratio = growth["ours"] / growth["list"]
    row("RSS growth (MB)", growth["ours"] / mb, growth["list"] / mb, ".1f", "<= 0.2x", memory_ratio <= 0.2)
    for label, _, _ in SEARCHES + EXTRA:
        r = found[label]
        goal = ("<= 1.0x", r["ours"] <= r["list"]) if label in {s[0] for s in SEARCHES} else ("(not a goal)", None)
        row(f"search {label} (ms, {r['hits']:,} hits)", r["ours"] * 1000, r["list"] * 1000, ".1f", *goal)
    per_line = {kind: (best[kind]["seconds"] - source["seconds"]) / n * 1e9 for kind in ("ours", "list")}
    print(f"making the lines alone: {n / source['seconds']:,.0f} lines/s; storing on top of that: "
          f"ours {per_line['ours']:.0f} ns/line, the list {per_line['list']:.0f} ns/line")
    print(f"memory per held line: ours {growth['ours'] / max(ours['held'], 1):.0f} B, "
          f"the list {growth['list'] / max(plain['held'], 1):.0f} B")
    ok = all(verdicts)
    print("all goals met" if ok else "GOALS NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
