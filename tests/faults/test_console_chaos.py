"""Console chaos run: the interactive console on the live backend while its engine, its hub and XNAT fail and come
back in a random order. The console never exits; every fault shows on screen (the top bar's "✖ part") and clears
by itself once the part is back.

The engine is the isolated swarm's manager (scripts/node2.sh; the shared engine is never stopped), the hub and XNAT
are the fault stack's (tests/helpers/fault_stack.py). Faults: the engine stopped and started; the hub container
killed (swarm starts a new one); XNAT refusing connections, then back.

Default run: each fault once (about two minutes). `-m slow`: 10 minutes of faults in a random order;
XJH_CHAOS_SECONDS and XJH_CHAOS_SEED change the length and the order (the seed is printed).
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from console.app import XnatConsoleApp
from console.backend.live import LiveBackend
from console.backend.models import Health
from console.config import load_config
from console.screens.base import TopBar
from tests.helpers.fault_stack import FaultStack
from tests.helpers.node2 import Node2

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(1200)]

REFRESH = 2.0
XNAT_INTERVAL = 5.0


class Chaos:
    def __init__(self, stack: FaultStack, node2: Node2, app: XnatConsoleApp):
        self.stack, self.node2, self.app = stack, node2, app
        self.baseline: dict[str, Health | None] = {}
        self.log: list[str] = []

    def health(self, name: str) -> Health | None:
        return next((c.health for c in self.app.components if c.name == name), None)

    def on_screen(self, name: str) -> bool:
        return f"✖ {name}" in str(self.app.screen.query_one(TopBar).render())

    async def until(self, condition: Callable[[], bool], timeout: float, what: str) -> float:
        started = time.monotonic()
        while not condition():
            assert self.app.is_running, "the console exited"
            assert time.monotonic() - started < timeout, f"timed out after {timeout:g} s waiting for {what}"
            await asyncio.sleep(0.1)
        return time.monotonic() - started

    # faults: (inject, heal, the component that must show it, how soon it must show)
    def engine_fault(self) -> tuple[Callable[[], Any], Callable[[], Any], str, float]:
        return (lambda: self.node2.run("stop", "mgr"), lambda: self.node2.run("up"), "engine", REFRESH + 10)

    def hub_fault(self) -> tuple[Callable[[], Any], Callable[[], Any], str, float]:
        def kill() -> None:
            subprocess.run(["docker", "kill", self.stack.hub_container()], check=True, capture_output=True)

        return (kill, lambda: None, "hub", REFRESH + 10)  # swarm starts a new hub container by itself

    def xnat_fault(self) -> tuple[Callable[[], Any], Callable[[], Any], str, float]:
        return (lambda: self.stack.fault(down=True), self.stack.clear_faults, "xnat", XNAT_INTERVAL + 15)

    async def one(self, kind: str) -> None:
        inject, heal, part, soon = getattr(self, f"{kind}_fault")()
        # timed from the moment the fault begins (the injection runs alongside: stopping an engine takes a while)
        injecting = asyncio.ensure_future(asyncio.to_thread(inject))
        shown = await self.until(lambda: self.health(part) == Health.DOWN and self.on_screen(part), soon,
                                 f"{part} to show down")
        await injecting
        healing = asyncio.ensure_future(asyncio.to_thread(heal))
        cleared = await self.until(lambda: self.health(part) == self.baseline[part] and not self.on_screen(part),
                                   180, f"{part} to clear")
        await healing
        self.log.append(f"{kind}: on screen {shown:.1f} s after the fault began, cleared {cleared:.1f} s after "
                        "the repair began")


@pytest.fixture
def chaos(fault_stack: FaultStack, node2: Node2, tmp_path: Path) -> Chaos:
    config = load_config(str(Path(fault_stack.env["XDG_CONFIG_HOME"]) / "xnat-jh-console" / "config.toml"),
                         env={"XDG_STATE_HOME": str(tmp_path)}, overrides={"docker_host": node2.manager})
    app = XnatConsoleApp(LiveBackend(config), replace(config, refresh_interval=REFRESH, events_interval=1.0,
                                                      xnat_interval=XNAT_INTERVAL, save_dir=str(tmp_path)))
    return Chaos(fault_stack, node2, app)


async def run_chaos(chaos: Chaos, kinds: list[str]) -> None:
    app = chaos.app
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.press("1")
            await chaos.until(lambda: all(chaos.health(p) is not None for p in ("engine", "hub", "xnat")), 60,
                              "every part's first health")
            chaos.baseline = {p: chaos.health(p) for p in ("engine", "hub", "xnat")}
            assert all(h != Health.DOWN for h in chaos.baseline.values()), chaos.baseline
            for kind in kinds:
                await chaos.one(kind)
            assert app.is_running
    finally:
        try:  # never hide the failure that got us here behind a second one
            chaos.stack.clear_faults()
            chaos.node2.run("up")
        except Exception as e:
            from tests.helpers.fault_stack import STANDIN

            state = subprocess.run(["docker", "ps", "-a", "--filter", f"name={STANDIN}", "--format",
                                    "{{.Names}} {{.Status}}"], capture_output=True, text=True).stdout
            logs = subprocess.run(["docker", "logs", "--tail", "20", STANDIN], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True).stdout
            print(f"cleanup after the chaos run failed: {e!r}\nstand-in: {state}\n{logs}")
        await app.backend.aclose()
    print("\n".join(chaos.log))


@pytest.mark.parametrize("minutes", [0, pytest.param(10, marks=pytest.mark.slow)])
async def test_console_chaos(chaos: Chaos, minutes: int) -> None:
    if not minutes:
        kinds = ["engine", "hub", "xnat"]
    else:
        seconds = float(os.environ.get("XJH_CHAOS_SECONDS", minutes * 60))
        seed = int(os.environ.get("XJH_CHAOS_SEED", random.randrange(1 << 30)))
        print(f"chaos seed {seed}, {seconds:g} s")
        rng = random.Random(seed)
        deadline = time.monotonic() + seconds
        kinds = []

        class Until(list):  # faults are drawn until the time is up
            def __iter__(self):
                while time.monotonic() < deadline:
                    kind = rng.choice(["engine", "hub", "xnat"])
                    kinds.append(kind)
                    yield kind

        await run_chaos(chaos, Until())
        print(f"{len(kinds)} faults: " + ", ".join(f"{k} {kinds.count(k)}" for k in ("engine", "hub", "xnat")))
        assert set(kinds) == {"engine", "hub", "xnat"}
        return
    await run_chaos(chaos, kinds)
