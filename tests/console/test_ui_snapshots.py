"""Snapshot tests of every screen on the FakeBackend, at a fixed terminal size and a fixed clock.

Update after eyeballing the report: `pytest tests/console/test_ui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import pytest

from console.app import XnatConsoleApp
from console.backend.fake import FakeBackend
from console.config import ConsoleConfig
from console.screens.dialogs import ConfirmScreen, ProgressScreen
from console.screens.images import ImagePullScreen
from console.widgets.log_view import LogView
from console.widgets.resource_table import ResourceTable

SIZE = (160, 45)


def snapshot_app(backend: FakeBackend | None = None, **config) -> XnatConsoleApp:
    backend = backend or FakeBackend()
    # Slow timers: a snapshot is taken between refreshes, which change nothing on the fake anyway.
    settings = {"refresh_interval": 3600, "events_interval": 3600, "xnat_interval": 3600, **config}
    return XnatConsoleApp(backend, ConsoleConfig(**settings), clock=backend.clock)


async def settle(pilot, condition, what: str) -> None:
    """Wait for a screen's data, then for the app to go idle."""
    for _ in range(200):
        if condition():
            await pilot.pause()
            return
        await pilot.pause(0.05)
    raise AssertionError(f"snapshot never got: {what}")


def main_rows(pilot) -> int:
    tables = pilot.app.screen.query("#main-table")
    return tables.first(ResourceTable).row_count if tables else 0


def health_known(pilot) -> bool:
    return all(c.health.value != "unknown" for c in pilot.app.components)


def go(key: str, rows: int):
    async def run_before(pilot) -> None:
        await settle(pilot, lambda: health_known(pilot), "health")
        await pilot.press(key)
        await settle(pilot, lambda: main_rows(pilot) == rows, f"{rows} rows")

    return run_before


def test_overview(snap_compare):
    async def run_before(pilot) -> None:
        await settle(pilot, lambda: health_known(pilot) and pilot.app.recent_events, "health and events")
        await settle(pilot, lambda: "–" not in str(pilot.app.screen.query_one("#stat-users").render()), "counts")

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)


def test_servers(snap_compare):
    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=go("2", 5))


def test_servers_marked_and_filtered(snap_compare):
    async def run_before(pilot) -> None:
        await go("2", 5)(pilot)
        await pilot.press("space", "space", "slash", *"alice", "enter")
        await settle(pilot, lambda: main_rows(pilot) == 2, "the filter")

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)


def test_services(snap_compare):
    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=go("3", 6))


def test_tasks_with_dockers_error(snap_compare):
    async def run_before(pilot) -> None:
        await go("3", 6)(pilot)
        table = pilot.app.screen.query_one("#main-table", ResourceTable)
        table.move_cursor(row=table.get_row_index("jupyter-carol"))
        await pilot.press("enter")
        await settle(pilot, lambda: main_rows(pilot) == 2, "carol's tasks")

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)


def test_nodes(snap_compare):
    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=go("4", 2))


def test_logs_with_search(snap_compare):
    async def run_before(pilot) -> None:
        await settle(pilot, lambda: health_known(pilot), "health")
        await pilot.press("5")
        view = pilot.app.screen.query_one(LogView)
        await settle(pilot, lambda: len(view.buffer) == 30, "the backlog")
        await pilot.press("slash", *"request 2\\d", "enter", "n")

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)


def test_xnat_check(snap_compare):
    async def run_before(pilot) -> None:
        await go("6", 11)(pilot)
        await settle(pilot, lambda: not pilot.app.screen.running, "the check's end")

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)


def test_deploy_after_a_deploy(snap_compare):
    async def run_before(pilot) -> None:
        await settle(pilot, lambda: health_known(pilot), "health")
        await pilot.press("7", "D", "y")
        await settle(pilot, lambda: len(pilot.app.screen.lines) == 8, "the deploy's lines and its result")
        await settle(pilot, lambda: not pilot.app.screen.busy, "the deploy's end")

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)


def test_stop_stack_typed_confirmation(snap_compare):
    async def run_before(pilot) -> None:
        await settle(pilot, lambda: health_known(pilot), "health")
        await pilot.press("7", "X", *"xnat", "enter")

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)


def test_confirm_bulk_stop(snap_compare):
    async def run_before(pilot) -> None:
        await go("2", 5)(pilot)
        await pilot.press("space", "space", "s")

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)


def test_restart_progress(snap_compare):
    async def run_before(pilot) -> None:
        await go("2", 5)(pilot)
        await pilot.press("r", "y")
        await settle(pilot, lambda: isinstance(pilot.app.screen, ProgressScreen) and pilot.app.screen.finished,
                     "the restart's end")

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)


def test_help(snap_compare):
    async def run_before(pilot) -> None:
        await go("2", 5)(pilot)
        await pilot.press("question_mark")

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)


def test_degraded_hub_and_read_only(snap_compare):
    backend = FakeBackend(read_only=True)
    backend.fail("hub", "connection refused")

    async def run_before(pilot) -> None:
        await settle(pilot, lambda: health_known(pilot), "health")
        await pilot.press("2")
        await settle(pilot, lambda: pilot.app.screen.error, "the servers screen's error")
        await pilot.press("s")  # refused: read-only

    assert snap_compare(snapshot_app(backend), terminal_size=SIZE, run_before=run_before)


@pytest.mark.parametrize("theme", ["textual-light", "nord"])
def test_themes(snap_compare, theme):
    assert snap_compare(snapshot_app(theme=theme), terminal_size=SIZE, run_before=go("2", 5))


def test_image_pull_progress(snap_compare):
    backend = FakeBackend()
    backend.pull_failures["worker-1"] = "connection reset by peer"

    async def run_before(pilot) -> None:
        await go("4", 2)(pilot)
        await pilot.press("P")  # the launch image: held by manager-1, pulled (and failed) on worker-1
        await settle(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the pull's confirmation")
        await pilot.press("y")
        await settle(pilot, lambda: isinstance(pilot.app.screen, ImagePullScreen) and pilot.app.screen.finished,
                     "the pull's end")

    assert snap_compare(snapshot_app(backend), terminal_size=SIZE, run_before=run_before)
