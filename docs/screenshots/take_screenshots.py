"""Screenshots (SVG) of every console screen for the README, taken from the running demo.

    scripts/demo.sh up                                   # the demo, with its console config
    .venv/bin/python docs/screenshots/take_screenshots.py
    .venv/bin/python docs/screenshots/take_screenshots.py --fake    # the in-memory demo instead

It drives the real app (the same `XnatConsoleApp` the `xnat-jh-console` command opens) headless at 160x45,
visits each screen, waits for its data, and saves `docs/screenshots/<screen>.svg`.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from console.app import XnatConsoleApp

HERE = Path(__file__).resolve().parent
SIZE = (160, 45)


async def until(pilot, condition: Callable[[], object], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting on {pilot.app.screen.__class__.__name__}")
        await pilot.pause(0.1)
    await pilot.pause(0.3)


def table_rows(app) -> int:
    tables = app.screen.query("#main-table")
    return tables.first().row_count if tables else 0


async def take(app: XnatConsoleApp, out: Path) -> list[Path]:
    saved: list[Path] = []

    def save(name: str) -> None:
        path = out / f"{name}.svg"
        path.write_text(app.export_screenshot(title=f"xnat-jh-console: {name}"))
        saved.append(path)

    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: all(c.health.value != "unknown" for c in app.components))
        await until(pilot, lambda: "–" not in str(app.screen.query_one("#stat-users").render()))
        save("overview")
        for key, name in (("2", "servers"), ("3", "services"), ("4", "nodes")):
            await pilot.press(key)
            await until(pilot, lambda: table_rows(app) > 0)
            save(name)
        await pilot.press("3", "enter")
        await until(pilot, lambda: table_rows(app) > 0)
        save("tasks")
        await pilot.press("escape", "2", "l")
        await until(pilot, lambda: len(cast(Any, app.screen.query_one("LogView")).buffer) > 0)
        save("logs")
        await pilot.press("6")
        await until(pilot, lambda: table_rows(app) > 0 and not cast(Any, app.screen).running, timeout=180)
        save("xnat-check")
        await pilot.press("7")
        await pilot.pause(0.5)
        save("deploy")
        await pilot.press("2", "question_mark")
        await pilot.pause(0.5)
        save("help")
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fake", action="store_true", help="the in-memory demo backend instead of the live demo")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    if args.fake:
        from console.backend.fake import FakeBackend

        backend = FakeBackend()
        app = XnatConsoleApp(backend, clock=backend.clock)
    else:
        from console.backend.live import LiveBackend
        from console.config import load_config

        config = load_config()
        app = XnatConsoleApp(LiveBackend(config), config)
    for path in asyncio.run(take(app, args.out)):
        print(path)


if __name__ == "__main__":
    main()
