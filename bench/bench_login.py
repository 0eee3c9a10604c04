"""100 concurrent logins against an XNAT that answers in 100 ms: ours vs. a blocking authenticator in the original's
style (synchronous HTTP calls inside an async `authenticate`), in the same run.

    .venv/bin/python -m bench.bench_login [--logins 100] [--latency 0.1]

XNAT is the stand-in, in its own process (as XNAT is its own server). Ours is timed after one warm-up round, as in
a running hub whose connections to XNAT are open; the blocking one opens a connection per call, as `requests` did.
Goal: ours ≤ 0.4 s for 100 logins.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
from jupyterhub.auth import Authenticator

from hub.auth import XnatAuthenticator
from hub.xnat import XnatClient
from tests.helpers.waiting import free_port

GOAL_SECONDS = 0.4


class BlockingXnatAuthenticator(Authenticator):
    """The original's login, for comparison: blocking calls, no timeout, no session cleanup."""

    xnat_url = ""

    async def authenticate(self, handler: Any, data: dict[str, str]) -> dict[str, Any] | None:
        username, password = data["username"], data["password"]
        with httpx.Client() as http:  # as `requests.get(...)` does: a new connection each time, blocking
            roles = http.get(f"{self.xnat_url}/xapi/users/{quote(username, safe='')}/roles", auth=(username, password))
            if roles.status_code != 200:
                return None
            if any(role.lower() == "jupyter" for role in roles.json()):
                return {"name": username, "allowed": True}
            switch = http.get(f"{self.xnat_url}/xapi/jupyterhub/preferences/allUsersCanStartJupyter",
                              auth=(username, password))
            if switch.status_code == 200 and switch.json().get("allUsersCanStartJupyter"):
                return {"name": username, "allowed": True}
        return None

    def check_allowed(self, username: str, authentication: dict[str, Any] | None = None) -> bool:
        return bool(authentication and authentication.get("allowed"))


async def timed_logins(authenticator: Authenticator, users: list[str], password: str) -> float:
    """Seconds for all logins, started at once, to finish; every one must succeed."""
    started = time.perf_counter()
    results = await asyncio.gather(*(
        authenticator.get_authenticated_user(None, {"username": user, "password": password}) for user in users
    ))
    elapsed = time.perf_counter() - started
    assert all(results), "every login must succeed"  # (the original style lowercases the names: not compared)
    return elapsed


@contextlib.contextmanager
def standin_process() -> Iterator[tuple[str, httpx.Client]]:
    """The stand-in in its own process, as XNAT is its own server: (XNAT URL, control API client)."""
    port, control_port = free_port(), free_port()
    process = subprocess.Popen([sys.executable, "-m", "hub.standin", "--port", str(port),
                                "--control-port", str(control_port)], stdout=subprocess.DEVNULL)
    control = httpx.Client(base_url=f"http://127.0.0.1:{control_port}/_standin")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                control.get("/").raise_for_status()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the stand-in did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", control
    finally:
        control.close()
        process.terminate()
        process.wait(10)


def open_sessions(control: httpx.Client) -> int:
    return control.get("/sessions").json()["open"]


async def main(logins: int, latency: float) -> int:
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    password = "bench-Pa55word"
    users = [f"User.{i:03d}" for i in range(logins)]
    with standin_process() as (xnat_url, control):
        for user in users:
            control.put(f"/users/{user}", json={"password": password, "roles": ["Jupyter"]}).raise_for_status()
        control.put("/faults", json={"latency": latency}).raise_for_status()

        client = XnatClient(url=xnat_url, timeout=30)
        ours = XnatAuthenticator(xnat=client)
        await timed_logins(ours, users, password)  # warm-up: a running hub has its connections to XNAT open
        await client.drain()
        ours_seconds = await timed_logins(ours, users, password)
        await client.aclose()  # waits for the DELETE /data/JSESSION calls
        ours_sessions = open_sessions(control)

        blocking = BlockingXnatAuthenticator()
        blocking.xnat_url = xnat_url
        blocking_seconds = await timed_logins(blocking, users, password)
        blocking_sessions = open_sessions(control) - ours_sessions

    rows = [
        ("authenticator", "logins", "wall time (s)", "XNAT sessions left open"),
        ("ours (async, shared client)", str(logins), f"{ours_seconds:.3f}", str(ours_sessions)),
        ("original style (blocking)", str(logins), f"{blocking_seconds:.3f}", str(blocking_sessions)),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    print(f"{logins} concurrent logins, XNAT (the stand-in, own process) answering in {latency * 1000:.0f} ms")
    for i, row in enumerate(rows):
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print(f"ratio blocking / ours: {blocking_seconds / ours_seconds:.1f}x")
    verdict = "met" if ours_seconds <= GOAL_SECONDS else "NOT met"
    print(f"goal ours <= {GOAL_SECONDS} s: {verdict}")
    return 0 if ours_seconds <= GOAL_SECONDS else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds XNAT takes to answer")
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.logins, args.latency)))
