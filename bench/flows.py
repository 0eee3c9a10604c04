"""XNAT's launch and stop as the benchmarks time them, and their small statistics. The stack they run on is the
tests' own harness, `tests.helpers.live.demo_stack`: the demo under names of its own."""

from __future__ import annotations

import asyncio
import statistics
import time

from hub.standin import options as xnat_options
from hub.standin.plugin import HubError, XnatPlugin


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def launch_and_wait(plugin: XnatPlugin, user: str, server: str, interval: float = 0.05) -> float:
    """XNAT's launch from the start request to `ready: true`, in seconds (the user exists already)."""
    started = time.perf_counter()
    await plugin.start_server(user, server, xnat_options.start_request_body(event_tracking_id=server))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            model = await plugin.get_server(user, server)
        except HubError as e:
            # The proxy closes idle keep-alive connections; a poll that meets one is simply repeated.
            if e.status is not None:
                raise
            continue
        if model and model.get("ready"):
            return time.perf_counter() - started
        await asyncio.sleep(interval)
    raise TimeoutError(f"{user}/{server} was not ready within 180 s")


async def stop_and_wait(plugin: XnatPlugin, user: str, server: str) -> None:
    await plugin.stop_server(user, server)
    await plugin.wait_gone(user, server, timeout=120, interval=0.1)
