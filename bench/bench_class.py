"""A class starting at once: 30 users each run XNAT's whole start flow within one second, then all stop at once.

    flock /tmp/xjh-engine.lock .venv/bin/python -m bench.bench_class [--users 30] [--prefix xjh-class]

On the demo under names of its own (tests.helpers.live.demo_stack; `--prefix`: stack, network, secrets, stand-in;
images from $XJH_HUB_IMAGE / $XJH_SINGLEUSER_IMAGE, else `<prefix>` tags, which scripts/demo.sh up builds or finds
cached), all removed on exit. Each user has an XNAT launch of its own (options stored in the stand-in, a notebook
service of the single-user image on the swarm).

- Starts: `XnatPlugin.launch` (GET /, /info, the user, POST, then GET every 8 s up to 180 s), the 30 spread over
  one second. Time to ready the plugin's way (when its 8 s poll sees `ready`) and the hub's way (the `ready`
  event of the spawn progress stream, read from the moment the start request was answered).
- The console's calls (hub health, /info, whoami, user count, active servers, proxy routes), one after another,
  for 20 s idle and then all through the burst: p50/p99 per phase, burst beside idle as a ratio.
- Stops: the plugin's stop flow (DELETE {"remove": true}, GET every 2 s up to 60 s) for all 30 at once, and the
  time until Docker lists no service of theirs.
- Nothing orphaned: after the starts every user has exactly one notebook service; after the stops none is left.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import docker

from console.backend.hub import HubClient, HubError
from hub.standin import options as xnat_options
from hub.standin.plugin import XnatPlugin
from tests.helpers.live import LiveStack, demo_stack
from xjh_contract import LABEL_USER

IDLE_SECONDS = 20.0
STREAM_TIMEOUT = 200.0  # past the plugin's 180 s


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Timeline:
    plugin_ready: dict[str, float] = field(default_factory=dict)
    hub_ready: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    console: dict[str, list[float]] = field(default_factory=lambda: {"idle": [], "burst": []})
    console_errors: dict[str, list[str]] = field(default_factory=lambda: {"idle": [], "burst": []})
    hub_errors: dict[str, str] = field(default_factory=dict)
    stream_breaks: dict[str, int] = field(default_factory=dict)


class TimedPlugin(XnatPlugin):
    """The plugin, telling the benchmark when its start request was answered (the plugin itself never reads the
    progress stream; the benchmark does, beside it)."""

    def __init__(self, *args, answered: dict[str, asyncio.Event], **kwargs):
        super().__init__(*args, **kwargs)
        self.answered = answered

    async def start_server(self, user: str, server: str, body: dict) -> int:
        status = await super().start_server(user, server, body)
        self.answered[user].set()
        return status


async def console_calls(console: HubClient, timeline: Timeline, phase: list[str], done: asyncio.Event) -> None:
    calls = (console.health, console.info, console.whoami, console.user_count, console.servers,
             console.proxy_route_count)
    while not done.is_set():
        for call in calls:
            started, now = time.perf_counter(), phase[0]
            try:
                await call()
            except HubError as e:  # a call that failed (10 s timeout) counts with the time it took
                timeline.console_errors[now].append(str(e))
            timeline.console[now].append(time.perf_counter() - started)


async def hub_way(console: HubClient, user: str, server: str, t0: float, answered: asyncio.Event,
                  timeline: Timeline) -> None:
    """Time to the progress stream's ready event, from this user's start (`t0`)."""
    await answered.wait()
    deadline = time.monotonic() + 200
    while user not in timeline.hub_ready and user not in timeline.hub_errors and time.monotonic() < deadline:
        try:
            async for event in console.progress(user, server):
                if event.ready:
                    timeline.hub_ready[user] = time.perf_counter() - t0
                if event.failed:
                    timeline.hub_errors[user] = f"spawn failed: {event.message}"
        except HubError as e:
            # a stalled hub sends no keepalive for 30 s: read the stream again, as the console does (a server
            # that got ready meanwhile answers with one ready event at once, so the figure is an upper bound)
            timeline.stream_breaks[user] = timeline.stream_breaks.get(user, 0) + 1
            if e.status is not None:  # "is not starting": the spawn ended while we were away
                timeline.hub_errors[user] = str(e)


async def one_launch(plugin: XnatPlugin, user: str, server: str, delay: float, t0: float,
                     timeline: Timeline) -> None:
    await asyncio.sleep(delay)
    started = time.perf_counter()
    try:
        # the plugin's client has no timeout: bound the whole flow a little past its 180 s, for a hub that hangs
        await asyncio.wait_for(plugin.launch(user, server, xnat_options.start_request_body(event_tracking_id=server)),
                               190)
    except Exception as e:
        timeline.failures[user] = f"{type(e).__name__}: {e}"
        return
    timeline.plugin_ready[user] = time.perf_counter() - started
    print(f"  {user} ready after {timeline.plugin_ready[user]:.1f} s (plugin's way)", flush=True)


def notebook_services(client: docker.DockerClient, users: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(users, 0)
    for service in client.services.list(filters={"label": LABEL_USER}):
        owner = service.attrs["Spec"].get("Labels", {}).get(LABEL_USER)
        if owner in counts:
            counts[owner] += 1
    return counts


async def run_class(stack: LiveStack, count: int, image: str) -> int:
    users = [f"class{i:02d}" for i in range(count)]
    now = datetime.now(UTC)
    servers = {u: xnat_options.event_tracking_id(now + timedelta(milliseconds=i)) for i, u in enumerate(users)}
    for user in users:
        stack.store_options(user, servers[user], image=image)
    client = docker.from_env(timeout=60)
    timeline = Timeline()
    answered = {u: asyncio.Event() for u in users}
    api = stack.settings.hub_api_url
    # The hub's way is read on a client of its own whose reads wait out a stalled hub (the console's 30 s would
    # break the stream, and a stream read again answers "ready" late: only an upper bound).
    async with TimedPlugin(api, stack.secret("xnat_service_token"), timeout=None, answered=answered) as plugin, \
            HubClient(api, stack.secret("console_token")) as console, \
            HubClient(api, stack.secret("console_token"), timeout=STREAM_TIMEOUT) as streams:
        for user in users:  # XNAT creates each user on its first launch; done beforehand so the burst is starts
            await plugin.ensure_user(user)
        phase, done = ["idle"], asyncio.Event()
        watcher = asyncio.create_task(console_calls(console, timeline, phase, done))
        print(f"idle: the console's calls for {IDLE_SECONDS:g} s; {load()}", flush=True)
        await asyncio.sleep(IDLE_SECONDS)
        print(f"burst: {count} launches within 1 s", flush=True)
        phase[0] = "burst"
        t0 = time.perf_counter()
        hub_tasks = [asyncio.create_task(hub_way(streams, u, servers[u], t0 + i / count, answered[u], timeline))
                     for i, u in enumerate(users)]
        await asyncio.gather(*(one_launch(plugin, u, servers[u], i / count, t0, timeline)
                               for i, u in enumerate(users)))
        burst_seconds = time.perf_counter() - t0
        loads = {"burst end": load()}
        done.set()
        await watcher
        await asyncio.wait(hub_tasks, timeout=30)
        after_start = notebook_services(client, users)

        print(f"stops: {count} at once", flush=True)
        stop_t0 = time.perf_counter()
        stop_results = await asyncio.gather(*(asyncio.wait_for(plugin.stop(u, servers[u]), 90) for u in users),
                                            return_exceptions=True)
        plugin_stopped = time.perf_counter() - stop_t0
        while any(notebook_services(client, users).values()) and time.perf_counter() - stop_t0 < 300:
            await asyncio.sleep(0.25)
        all_gone = time.perf_counter() - stop_t0
        loads["stops end"] = load()
        after_stop = notebook_services(client, users)
    client.close()

    plugin_times = list(timeline.plugin_ready.values())
    hub_times = list(timeline.hub_ready.values())
    idle, burst = timeline.console["idle"], timeline.console["burst"]
    stop_failures = [f"{u}: {r}" for u, r in zip(users, stop_results, strict=True) if isinstance(r, Exception)]
    print()
    print(f"a class of {count}: starts spread over 1 s, all done in {burst_seconds:.1f} s; "
          + "; ".join(f"{k}: {v}" for k, v in loads.items()))
    print(f"  ready within 180 s: {len(plugin_times)}/{count}; failures: {len(timeline.failures)}")
    for user, why in sorted(timeline.failures.items()):
        print(f"    {user}: {why[:200]}")
    print(f"  {'time to ready (s)':<34}{'p50':>8}{'p95':>8}{'max':>8}")
    for label, values in ((f"plugin's way (8 s polls), n={len(plugin_times)}", plugin_times),
                          (f"hub's way (spawn progress), n={len(hub_times)}", hub_times)):
        print(f"  {label:<34}{percentile(values, .5):>8.1f}{percentile(values, .95):>8.1f}"
              f"{max(values, default=float('nan')):>8.1f}")
    print(f"  ratio plugin/hub, p50: {percentile(plugin_times, .5) / percentile(hub_times, .5):.2f}")
    print(f"  {'console hub calls (ms)':<34}{'n':>8}{'p50':>8}{'p99':>8}")
    for label, values in (("idle", idle), ("burst", burst)):
        print(f"  {label:<34}{len(values):>8}{percentile(values, .5) * 1000:>8.0f}"
              f"{percentile(values, .99) * 1000:>8.0f}")
    print(f"  ratio burst/idle, p99: {percentile(burst, .99) / percentile(idle, .99):.2f}; failed calls: "
          f"idle {len(timeline.console_errors['idle'])}, burst {len(timeline.console_errors['burst'])}")
    print(f"  spawn progress that failed: {len(timeline.hub_errors)} {sorted(set(timeline.hub_errors.values()))[:2]}; "
          f"streams that went silent for 30 s and were read again: {sum(timeline.stream_breaks.values())} "
          f"(of {len(timeline.stream_breaks)} users)")
    duplicates = {u: n for u, n in after_start.items() if n != 1}
    print(f"  after the starts, users without exactly one service: {duplicates or 'none'}")
    print(f"stops: the plugin's stop flow for all {count} at once: {plugin_stopped:.1f} s; "
          f"every service gone after {all_gone:.1f} s; failures: {stop_failures or 'none'}")
    left = {u: n for u, n in after_stop.items() if n}
    print(f"  services left after the stops: {left or 'none'}")
    ok = (len(plugin_times) == count and not timeline.failures and not duplicates and not left and not stop_failures
          and max(plugin_times) <= 180)
    print("goals met" if ok else "GOALS NOT MET")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--prefix", default="xjh-class", help="name prefix of everything the benchmark creates")
    args = parser.parse_args()
    if args.users < 1:
        parser.error("--users must be at least 1")
    # Images of the benchmark's own tags, so that a rebuild for the demo or the tests cannot change them mid-run.
    hub_image = os.environ.setdefault("XJH_HUB_IMAGE", f"xnat-jupyterhub/hub:{args.prefix}")
    image = os.environ.setdefault("XJH_SINGLEUSER_IMAGE", f"xnat-jupyterhub/singleuser:{args.prefix}")
    os.environ["JH_IMAGE"] = hub_image
    print(f"scripts/demo.sh up as {args.prefix} (builds the images if needed) ...", flush=True)
    with demo_stack(args.prefix) as stack:
        return asyncio.run(run_class(stack, args.users, image))

if __name__ == "__main__":
    sys.exit(main())
