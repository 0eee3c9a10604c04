"""Full-refresh figure: what the console fetches each tick, on a hub with 2,000 users and 500 running servers,
against the hub's own time for the one call it cannot avoid (GET /users?state=active), from the same run.

    .venv/bin/python -m bench.bench_refresh [--users 2000] [--servers 500] [--rounds 20]

Real parts: a real JupyterHub (+ configurable-http-proxy) on loopback with 2,000 real users created through its
REST API and 500 real running servers (each a hub server whose "notebook" is one shared http.server, so no 500
processes); the real Docker engine for health, nodes and events. From a fake: the 500 notebook swarm services,
their tasks and container stats (500 containers cannot run on this machine).

A full refresh = engine and swarm health, nodes, services, recent events, hub info (health, /info, scopes,
proxy routes), the user count, and every active server joined with its service, task and stats. As on every
console tick, /info, the scopes, the route count and the user count come from the backend's INFO_TTL (60 s)
cache once warm; the active servers are asked of the hub every time (no `hub_max_age`), which is the tick the
Servers screen pays when it does ask the hub. The baseline
is the obvious client: the same calls one after another, listing *every* user (all pages) and picking the
active servers out itself; it is printed for reference. Goal (issue 13): a full refresh (median) takes at most
1.15x the median of GET /users?state=active alone (the hub's floor), timed alternately with it.
No stack and no Docker objects are made: the hub is a throwaway process in a temp dir, the engine is only read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from console.backend.docker import DockerAccess
from console.backend.hub import server_row
from console.backend.live import LiveBackend
from console.backend.models import ContainerStats, ServiceInfo, TaskInfo
from console.backend.swarm_join import join_swarm
from console.config import ConsoleConfig
from tests.helpers.console_backend import LocalHub
from tests.helpers.waiting import wait_for


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class FakeNotebookSwarm(DockerAccess):
    """The real engine, plus 500 notebook services/tasks/stats that exist only here."""

    def __init__(self, users: list[str], **kwargs):
        super().__init__(**kwargs)
        now = datetime.now(UTC)
        self.fake_services = [
            ServiceInfo(
                f"svc{i:04d}",
                f"jupyter-{u}--nb",
                "xnat-jupyterhub/singleuser:dev",
                "replicated",
                1,
                1,
                now,
                notebook_user=u,
                notebook_server="nb",
                cpu_limit=2.0,
                mem_limit=4 << 30,
            )
            for i, u in enumerate(users)
        ]
        self.fake_tasks = [
            TaskInfo(f"task{i:04d}", s.id, 1, "node1", "node1", "running", "running", "started", "", now, f"c{i:04d}")
            for i, s in enumerate(self.fake_services)
        ]

    def services(self, *, all_services: bool = False):
        return super().services(all_services=all_services) + self.fake_services

    def tasks(self, service=None, *, desired_running=False):
        real = super().tasks(service, desired_running=desired_running) if service is None else []
        return real + [t for t in self.fake_tasks if service is None or t.service_id == service]

    def container_stats(self, task):
        if task.container_id.startswith("c"):
            return ContainerStats(cpu_percent=3.5, mem_bytes=300 << 20, mem_limit_bytes=4 << 30)
        return super().container_stats(task)


async def ours(backend: LiveBackend) -> int:
    since = datetime.now(UTC) - timedelta(minutes=15)
    results = await asyncio.gather(
        asyncio.to_thread(backend.docker_health),
        asyncio.to_thread(backend.nodes),
        asyncio.to_thread(backend.services),
        asyncio.to_thread(backend.events, since),
        backend.hub_info(),
        backend.user_count(),
        backend.hub_servers(),  # no max age: the hub is asked for the active servers every time
    )
    servers = results[-1]
    assert isinstance(servers, list)
    return len(servers)


async def baseline(backend: LiveBackend) -> int:
    """The obvious client: one call after another, every user listed, active servers picked out here."""
    since = datetime.now(UTC) - timedelta(minutes=15)
    backend.docker_health()
    backend.nodes()
    services = backend.services()
    backend.events(since)
    await backend.hub.health()
    await backend.hub.info()
    await backend.hub.whoami()
    await backend.hub.proxy_routes()
    users = await backend.hub.users(include_stopped_servers=True)
    count = len(users)
    rows = [
        server_row(u["name"], name, m)
        for u in users
        for name, m in (u.get("servers") or {}).items()
        if m.get("ready") or m.get("pending")
    ]
    tasks = backend.docker.tasks()
    rows = join_swarm(rows, services, tasks)
    running = {t.service_id: t for t in tasks if t.state == "running"}
    for row in rows:
        if row.service_id in running:
            backend.docker.container_stats(running[row.service_id])
    return len(rows) + 0 * count


def timed(fn: Callable[[], int], rounds: int) -> tuple[list[float], int]:
    out = []
    n = 0
    for _ in range(rounds):
        start = time.perf_counter()
        n = fn()
        out.append(time.perf_counter() - start)
    return out, n


GOAL = 1.15


@contextlib.contextmanager
def populated_hub(users: int, servers: int):
    """A real JupyterHub with `users` users, the first `servers` of them running a server; yields (hub, names)."""
    shared = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _QuietHandler)
    threading.Thread(target=shared.serve_forever, daemon=True).start()
    hub = LocalHub()
    print(f"starting a JupyterHub in {hub.dir} ...", flush=True)
    hub.start()
    try:
        names = [f"bench{i:05d}" for i in range(users)]
        t0 = time.perf_counter()
        with hub.admin() as admin:
            for i in range(0, len(names), 200):
                r = admin.post("users", json={"usernames": names[i : i + 200]})
                r.raise_for_status()
            for name in names[:servers]:
                deadline = time.monotonic() + 120
                while True:
                    r = admin.post(f"users/{name}/servers/nb", json={"shared_port": shared.server_port})
                    if r.status_code != 429 or time.monotonic() > deadline:  # the concurrent-spawn limit: retry
                        break
                    time.sleep(0.2)
                assert r.status_code in (201, 202), r.text

            def ready() -> bool:
                page = admin.get(
                    "users",
                    params={"state": "ready", "limit": 1},
                    headers={"Accept": "application/jupyterhub-pagination+json"},
                ).json()
                return page["_pagination"]["total"] >= servers

            wait_for(ready, 300, f"{servers} servers to be ready", interval=0.5)
        print(f"{users} users and {servers} running servers set up in {time.perf_counter() - t0:.1f} s", flush=True)
        yield hub, names
    finally:
        hub.stop()
        shared.shutdown()
        shared.server_close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--servers", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    if args.servers > args.users:
        parser.error("--servers cannot exceed --users")

    with populated_hub(args.users, args.servers) as (hub, names):
        # A patient client: on a loaded machine a 10 s timeout fails the run; the figures do not depend on it.
        config = ConsoleConfig(
            hub_url=hub.api_url, token=hub.console_token, audit_log=str(hub.dir / "audit.log"), timeout=120
        )
        docker = FakeNotebookSwarm(names[: args.servers], timeout=10)
        backend = LiveBackend(config, docker=docker)
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(ours(backend))  # warm: connections, node names
            loop.run_until_complete(baseline(backend))
            rss_before = rss_mb()
            ours_times, hub_times, base_times = [], [], []
            for _ in range(args.rounds):  # alternating, so a busy moment on this shared machine hits all three
                t, ours_rows = timed(lambda: loop.run_until_complete(ours(backend)), 1)
                ours_times += t
                # The hub's floor: listing the active users' servers, nothing else running.
                t, _ = timed(lambda: len(loop.run_until_complete(backend.hub.servers())), 1)
                hub_times += t
                t, base_rows = timed(lambda: loop.run_until_complete(baseline(backend)), 1)
                base_times += t
            rss = rss_mb()
            loop.run_until_complete(backend.aclose())
        finally:
            loop.close()

    def ms(times: list[float], q: float = 0.5) -> float:
        return (statistics.median(times) if q == 0.5 else sorted(times)[int(q * (len(times) - 1))]) * 1000

    o, h, b = ms(ours_times), ms(hub_times), ms(base_times)
    print(f"rows per refresh: ours {ours_rows}, obvious client {base_rows}; {args.rounds} alternating rounds")
    print(f"{'figure':<34}{'ours':>10}{'hub floor':>11}{'ratio':>8}   goal")
    ratio = o / h
    met = ratio <= GOAL
    verdict = "met" if met else "NOT MET"
    print(f"{'full refresh, median (ms)':<34}{o:>10.1f}{h:>11.1f}{ratio:>8.2f}   <= {GOAL}x {verdict}")
    print(f"{'full refresh, p95 (ms)':<34}{ms(ours_times, 0.95):>10.1f}{ms(hub_times, 0.95):>11.1f}")
    print(f"{'obvious client, median (ms)':<34}{b:>10.1f}{'':>11}{b / h:>8.2f}   (for reference: every user listed)")
    print(f"process RSS: {rss:.1f} MB (before the timed rounds: {rss_before:.1f})")
    print("hub floor = GET /users?state=active alone, what any full refresh must wait for")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
