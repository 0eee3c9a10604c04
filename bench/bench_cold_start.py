"""Cold start of the console: from launching the process to its first frame (goal: at most 0.8 s).

Each run is a fresh interpreter (imports included), the console on the in-memory FakeBackend, headless; a
second variant also imports what the real command imports (the live backend: docker SDK, httpx, config)
without connecting anywhere, and is the one held to the goal. The baseline, measured in the same run,
alternating with ours, is a bare Textual `App` showing one Static: the ratio says what the console adds on
top of Textual itself.

    .venv/bin/python -m bench.bench_cold_start [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.8

# The child prints CLOCK_MONOTONIC (system-wide on Linux) when the first frame has been drawn; the App's
# Ready event comes after the first screen's first refresh.
CONSOLE = """
import time
from console.app import XnatConsoleApp
from console.backend.fake import FakeBackend

class Timed(XnatConsoleApp):
    def on_ready(self):
        print(time.monotonic(), flush=True)
        self.exit()

backend = FakeBackend()
Timed(backend, clock=backend.clock).run(headless=True, size=(160, 45))
"""

# What `xnat-jh-console` imports on top: the live backend (docker SDK, httpx, config), without connecting.
CONSOLE_WITH_LIVE_IMPORTS = "import console.backend.live, console.config\n" + CONSOLE

BASELINE = """
import time
from textual.app import App
from textual.widgets import Static

class Bare(App):
    def compose(self):
        yield Static("hello")

    def on_ready(self):
        print(time.monotonic(), flush=True)
        self.exit()

Bare().run(headless=True, size=(160, 45))
"""


def first_frame(source: str) -> float:
    start = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", source], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return float(out.split()[0]) - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    ours, live, base = [], [], []
    for source in (BASELINE, CONSOLE, CONSOLE_WITH_LIVE_IMPORTS):
        first_frame(source)  # warm the OS file cache for each, so no run pays for it alone
    for _ in range(args.runs):
        base.append(first_frame(BASELINE))
        ours.append(first_frame(CONSOLE))
        live.append(first_frame(CONSOLE_WITH_LIVE_IMPORTS))
    base_median = statistics.median(base)
    print(f"runs: {args.runs} each, alternating; median time from process launch to first frame")
    print(f"  bare Textual App + Static        : {base_median * 1000:6.0f} ms  (min {min(base) * 1000:.0f})")
    for label, times in (("console (fake backend)", ours), ("console + live backend imports", live)):
        median = statistics.median(times)
        print(f"  {label:<32} : {median * 1000:6.0f} ms  (min {min(times) * 1000:.0f})"
              f"  ratio {median / base_median:.2f}x")
    ours_median = statistics.median(live)
    verdict = "meets" if ours_median <= GOAL else "MISSES"
    print(f"  goal <= {GOAL * 1000:.0f} ms: {verdict}")
    return 0 if ours_median <= GOAL else 1


if __name__ == "__main__":
    raise SystemExit(main())
