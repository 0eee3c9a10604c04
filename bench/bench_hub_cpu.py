"""What one console costs the hub: the hub's CPU while a console shows its Servers screen at the default refresh
interval, on a hub with 2,000 users and 500 running servers, against the same hub with no console.

    .venv/bin/python -m bench.bench_hub_cpu [--users 2000] [--servers 500] [--window 60]

The hub is real JupyterHub (+ its configurable-http-proxy) as in bench_refresh.py; the console is the real app,
headless, on a LiveBackend with its default refresh interval, on the Servers screen (the one that asks the hub
the most: GET /users?state=active every tick, beside the health checks every screen makes). The engine is the
real one, read only; the 500 notebook services are faked as in bench_refresh.py. No stack, no Docker objects.

The hub's CPU is its process tree's user+system time from /proc, over a window with no console, a window with
the console, and another without (the baseline is the mean of the two quiet windows). Printed: the share of one
core the console adds. Goal (issue 13): at most 3% of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from pathlib import Path

from bench.bench_refresh import FakeNotebookSwarm, populated_hub
from console.app import XnatConsoleApp
from console.backend.live import LiveBackend
from console.config import ConsoleConfig

GOAL = 0.03
TICK = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """`pid` and its descendants, now."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / TICK


def quiet(pids: list[int], window: float) -> float:
    before = cpu_seconds(pids)
    time.sleep(window)  # the measurement window itself, not a wait for something
    return cpu_seconds(pids) - before


async def with_console(pids: list[int], window: float, backend: LiveBackend, config: ConsoleConfig) -> float:
    app = XnatConsoleApp(backend, config)
    async with app.run_test(headless=True, size=(160, 45)) as pilot:
        await pilot.press("2")  # the Servers screen
        await pilot.pause()
        before = cpu_seconds(pids)
        await asyncio.sleep(window)  # the measurement window: the console refreshes on its own timers
        used = cpu_seconds(pids) - before
        screen = type(app.screen).__name__
    if screen != "ServersScreen":
        raise SystemExit(f"the console was on {screen}, not the Servers screen")
    return used


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--servers", type=int, default=500)
    parser.add_argument("--window", type=float, default=60.0, help="seconds per window")
    args = parser.parse_args()

    with populated_hub(args.users, args.servers) as (hub, names):
        pids = tree(hub.process.pid)
        config = ConsoleConfig(hub_url=hub.api_url, token=hub.console_token, audit_log=str(hub.dir / "audit.log"))
        backend = LiveBackend(config, docker=FakeNotebookSwarm(names[: args.servers], timeout=10))
        print(f"hub process tree: {len(pids)} processes; windows of {args.window:.0f} s; "
              f"console refresh interval {config.refresh_interval:g} s", flush=True)
        idle_before = quiet(pids, args.window)
        console = asyncio.run(with_console(pids, args.window, backend, config))
        idle_after = quiet(pids, args.window)

    idle = (idle_before + idle_after) / 2
    share = (console - idle) / args.window
    print(f"{'hub CPU (share of one core)':<34}{'with console':>14}{'without':>10}{'added':>9}   goal")
    met = share <= GOAL
    print(f"{'':<34}{console / args.window:>14.2%}{idle / args.window:>10.2%}{share:>9.2%}   "
          f"<= {GOAL:.0%} {'met' if met else 'NOT MET'}")
    print(f"quiet windows: {idle_before:.2f} s and {idle_after:.2f} s of CPU; with the console {console:.2f} s")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
