"""The hub API's latency while XNAT is down, slow or answering garbage, on a live stack, against the same hub with
XNAT healthy in the same run; and how long a login takes to be refused under each fault.

    .venv/bin/python -m bench.bench_faults [--requests 300] [--logins 1] [--conditions down,slow-10s,...]

Brings up the fault stack (tests/helpers/fault_stack.py: the demo under the names `xjh-flt*`, free ports), launches
one notebook the XNAT way, then for each condition keeps `--logins` login loops hammering /hub/login through the
real form while it times `--requests` sequential `GET /hub/api/users/alice` with the console's token. Prints p50,
p99 and max per condition, each p99 beside the healthy baseline as a ratio, and the slowest login refusal. Goal:
p99 < 100 ms under every fault; refusals within the hub's XNAT timeout (10 s). Takes the stack down at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time

import httpx

from tests.helpers.fault_stack import XNAT_TIMEOUT, FaultStack, fault_stack_up
from tests.helpers.live import xnat_launch

GOAL_P99 = 0.100
USER, PASSWORD = "alice", "alice-password"
CONDITIONS: dict[str, dict[str, object] | None] = {
    "healthy": None,
    "down": {"down": True},
    "slow-10s": {"latency": 10.0},
    "html": {"garbage": "html"},
    "truncated-json": {"garbage": "truncated-json"},
    "wrong-types": {"garbage": "wrong-types"},
    "http-503": {"status": 503},
}


def login_once(base: str) -> tuple[int, float]:
    with httpx.Client(base_url=base, timeout=60) as client:
        client.get("/hub/login")
        started = time.perf_counter()
        answer = client.post("/hub/login", data={"username": USER, "password": PASSWORD,
                                                  "_xsrf": client.cookies.get("_xsrf", "")})
        return answer.status_code, time.perf_counter() - started


class LoginLoad:
    """`count` threads logging in again and again until stopped; keeps each attempt's status and duration."""

    def __init__(self, base: str, count: int):
        self.base = base
        self.results: list[tuple[int, float]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(count)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.results.append(login_once(self.base))
            except httpx.HTTPError:
                self.results.append((0, 0.0))

    def __enter__(self) -> LoginLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


def api_latencies(stack: FaultStack, count: int) -> list[float]:
    token = stack.secret("console_token")
    seconds = []
    with httpx.Client(headers={"Authorization": f"token {token}"}, timeout=10) as client:
        for _ in range(count):
            started = time.perf_counter()
            answer = client.get(f"{stack.api_url}/users/{USER}")
            seconds.append(time.perf_counter() - started)
            answer.raise_for_status()
            time.sleep(0.02)
    return seconds


def p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="API requests timed per condition")
    parser.add_argument("--logins", type=int, default=1,
                        help="login loops (a user retrying) during each condition; 0 measures the fault alone")
    parser.add_argument("--conditions", default=",".join(CONDITIONS),
                        help=f"comma-separated subset of {', '.join(CONDITIONS)} (healthy is always measured first)")
    args = parser.parse_args()
    wanted = ["healthy", *[c for c in args.conditions.split(",") if c and c != "healthy"]]
    unknown = [c for c in wanted if c not in CONDITIONS]
    if unknown:
        parser.error(f"unknown condition(s): {', '.join(unknown)}")

    print("bringing up the fault stack (scripts/demo.sh up under xjh-flt names) ...", flush=True)
    with fault_stack_up() as stack:
        server, _body, _model = asyncio.run(xnat_launch(stack, USER))
        print(f"notebook {USER}/{server} running; {args.logins} login loops per condition, "
              f"{args.requests} API requests timed\n", flush=True)
        rows = []
        for name in wanted:
            fault = CONDITIONS[name]
            if fault:
                stack.fault(**fault)
            try:
                with LoginLoad(stack.hub_url, args.logins) as load:
                    latencies = api_latencies(stack, args.requests)
                    # a condition lasts at least one full login, so the slow fault's refusals are counted
                    deadline = time.monotonic() + XNAT_TIMEOUT + 5
                    while args.logins and len(load.results) < args.logins and time.monotonic() < deadline:
                        time.sleep(0.1)
            finally:
                stack.clear_faults()
            load_average = os.getloadavg()[0]  # the machine is shared: say how busy it was
            statuses = sorted({status for status, _ in load.results})
            slowest_login = max((s for _, s in load.results), default=float("nan"))
            rows.append((name, p(latencies, 50), p(latencies, 99), max(latencies), len(load.results), statuses,
                         slowest_login, load_average))
        asyncio.run(_stop_notebook(stack, server))

    baseline = rows[0][2]
    print(f"{'condition':<16}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'p99/healthy':>13}{'logins':>8}"
          f"  {'login status':<14}{'slowest login s':>16}{'load 1m':>9}")
    ok = True
    for name, p50, p99, top, logins, statuses, slowest, load_average in rows:
        ratio = p99 / baseline if baseline else float("nan")
        print(f"{name:<16}{p50 * 1000:>8.1f}{p99 * 1000:>8.1f}{top * 1000:>8.1f}{ratio:>12.2f}x{logins:>8}"
              f"  {','.join(map(str, statuses)) or '-':<14}{slowest:>16.2f}{load_average:>9.2f}")
        ok &= p99 < GOAL_P99
        if name != "healthy" and args.logins:
            ok &= statuses == [503] and slowest < XNAT_TIMEOUT + 3
    print(f"\ngoal: p99 < {GOAL_P99 * 1000:.0f} ms under every fault, every login refused (503) within "
          f"{XNAT_TIMEOUT:g} s + 3 s: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


async def _stop_notebook(stack: FaultStack, server: str) -> None:
    async with stack.plugin() as plugin:
        await plugin.stop_server(USER, server)
        await plugin.wait_gone(USER, server, timeout=60)


if __name__ == "__main__":
    sys.exit(main())
