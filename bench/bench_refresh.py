"""Full-refresh figure: what the console fetches each tick, on a hub with 2,000 users and 500 running servers.

    .venv/bin/python -m bench.bench_refresh [--users 2000] [--servers 500] [--rounds 20]

Real parts: a real JupyterHub (+ configurable-http-proxy) on loopback with 2,000 real users created through its
REST API and 500 real running servers (each a hub server whose "notebook" is one shared http.server, so no 500
processes); the real Docker engine for health, nodes and events. From a fake: the 500 notebook swarm services,
their tasks and container stats (500 containers cannot run on this machine).

A full refresh = engine and swarm health, nodes, services, recent events, hub info (health, /info, scopes,
proxy routes), the user count, and every active server joined with its service, task and stats. The baseline
is the obvious client: the same calls one after another, listing *every* user (all pages) and picking the
active servers out itself. Goals (issue 4): <= 150 ms per full refresh, RSS <= 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from console.backend.docker import DockerAccess
from console.backend.hub import server_row
from console.backend.live import LiveBackend, join_swarm
from console.backend.models import ContainerStats, ServiceInfo, TaskInfo
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
        backend.hub.user_count(),
        backend.hub_servers(),
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--servers", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    if args.servers > args.users:
        parser.error("--servers cannot exceed --users")

    shared = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _QuietHandler)
    threading.Thread(target=shared.serve_forever, daemon=True).start()
    hub = LocalHub()
    print(f"starting a JupyterHub in {hub.dir} ...", flush=True)
    hub.start()
    try:
        names = [f"bench{i:05d}" for i in range(args.users)]
        t0 = time.perf_counter()
        with hub.admin() as admin:
            for i in range(0, len(names), 200):
                r = admin.post("users", json={"usernames": names[i : i + 200]})
                r.raise_for_status()
            for name in names[: args.servers]:
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
                return page["_pagination"]["total"] >= args.servers

            wait_for(ready, 300, f"{args.servers} servers to be ready", interval=0.5)
        print(
            f"{args.users} users and {args.servers} running servers set up in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )

        config = ConsoleConfig(hub_url=hub.api_url, token=hub.console_token, audit_log=str(hub.dir / "audit.log"))
        docker = FakeNotebookSwarm(names[: args.servers], timeout=10)
        backend = LiveBackend(config, docker=docker)
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(ours(backend))  # warm: connections, node names
            loop.run_until_complete(baseline(backend))
            rss_before = rss_mb()
            ours_times, ours_rows = timed(lambda: loop.run_until_complete(ours(backend)), args.rounds)
            base_times, base_rows = timed(lambda: loop.run_until_complete(baseline(backend)), args.rounds)
            # The hub's own share: listing the active users' servers, nothing else running.
            hub_times, _ = timed(lambda: len(loop.run_until_complete(backend.hub.servers())), args.rounds)
            rss = rss_mb()
            loop.run_until_complete(backend.aclose())
        finally:
            loop.close()
    finally:
        hub.stop()
        shared.shutdown()
        shared.server_close()

    o, b = statistics.median(ours_times) * 1000, statistics.median(base_times) * 1000
    o95 = sorted(ours_times)[int(0.95 * (len(ours_times) - 1))] * 1000
    b95 = sorted(base_times)[int(0.95 * (len(base_times) - 1))] * 1000
    print(f"rows per refresh: ours {ours_rows}, baseline {base_rows}")
    print(f"{'figure':<30}{'ours':>10}{'baseline':>10}{'ours/base':>11}   goal")
    print(f"{'full refresh, median (ms)':<30}{o:>10.1f}{b:>10.1f}{o / b:>11.2f}   <= 150")
    print(f"{'full refresh, p95 (ms)':<30}{o95:>10.1f}{b95:>10.1f}{o95 / b95:>11.2f}")
    h = statistics.median(hub_times) * 1000
    print(
        f"{'  of which the hub lists the':<30}{h:>10.1f}   (GET /users?state=active alone: hub-bound, single-threaded)"
    )
    print(f"{'  active servers (ms)':<30}")
    print(
        f"{'process RSS (MB)':<30}{rss:>10.1f}{'':>10}{'':>11}   <= 150   (before the timed rounds: {rss_before:.1f})"
    )
    ok = o <= 150 and rss <= 150
    print("goals met" if ok else "GOALS NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
