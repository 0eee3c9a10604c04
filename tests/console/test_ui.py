"""Pilot tests of the console on the in-memory FakeBackend."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from console import registry
from console.app import ScreensProvider
from console.backend.fake import NOTEBOOK_IMAGE, FakeBackend
from console.backend.models import Health
from console.screens.base import TopBar
from console.screens.deploy import DeployScreen
from console.screens.dialogs import ConfirmScreen, HelpScreen, ProgressScreen, TypedConfirmScreen
from console.screens.images import ImagePullScreen
from console.screens.logs import LogsScreen
from console.screens.overview import OverviewScreen
from console.screens.servers import ServersScreen
from console.screens.services import NodesScreen, ServicesScreen, TasksScreen
from console.screens.xnat import XnatScreen
from console.widgets.log_view import LogView
from console.widgets.resource_table import ResourceTable

SIZE = (160, 45)


def messages(app) -> list[str]:
    return [n.message for n in app._notifications]


def table(app) -> ResourceTable:
    return app.screen.query_one("#main-table", ResourceTable)


def move_to(app, key: str) -> None:
    table(app).move_cursor(row=table(app).get_row_index(key))


def shown_keys(app) -> list[str]:
    t = table(app)
    return [str(t.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value) for row in range(t.row_count)]


async def command(pilot, text: str) -> None:
    await pilot.press("colon")
    await pilot.press(*text)
    await pilot.press("enter")
    await pilot.pause()


async def open_servers(pilot, wait_for) -> None:
    await pilot.press("2")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ServersScreen) and table(pilot.app).row_count == 5,
                   "the servers table")


async def open_services(pilot, wait_for) -> None:
    await pilot.press("3")
    await wait_for(pilot, lambda: table(pilot.app).row_count == 6, "the services")


# -- navigation ------------------------------------------------------------------------------------
async def test_command_line_aliases_and_back(make_app, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, OverviewScreen)
        await command(pilot, "svc")
        assert isinstance(app.screen, ServicesScreen)
        await command(pilot, "servers")
        assert isinstance(app.screen, ServersScreen)
        await command(pilot, "nodes")
        assert isinstance(app.screen, NodesScreen)
        await command(pilot, "xnat")
        assert isinstance(app.screen, XnatScreen)
        await command(pilot, "deploy")
        assert isinstance(app.screen, DeployScreen)
        await command(pilot, "logs alice/mri")
        assert isinstance(app.screen, LogsScreen)
        await wait_for(pilot, lambda: app.screen.service == "jupyter-alice--mri", "alice's mri server")
        await command(pilot, "overview")
        assert isinstance(app.screen, OverviewScreen)
        # Esc walks back along where we came from.
        await pilot.press("escape")
        assert isinstance(app.screen, LogsScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, DeployScreen)


async def test_quit_closes_the_backend(make_app, fake):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "q")
    assert app.return_code == 0
    assert fake.closed


async def test_unknown_command_is_a_notification_not_a_crash(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "frobnicate now")
        assert isinstance(app.screen, OverviewScreen)
        assert any("Unknown command ':frobnicate now'" in m for m in messages(app))
        await command(pilot, "sort nosuchcolumn")
        assert any("has no table" in m or "No column" in m for m in messages(app))


async def test_logs_command_resolves_user_hub_and_service_names(make_app, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "logs bob/analysis")
        await wait_for(pilot, lambda: app.screen.service == "jupyter-bob--analysis", "bob's named server")
        await command(pilot, "logs hub")
        await wait_for(pilot, lambda: app.screen.service == "xnat-jupyterhub_jupyterhub", "the hub")
        await command(pilot, "logs jupyter-carol")
        await wait_for(pilot, lambda: app.screen.service == "jupyter-carol", "a service by name")
        await command(pilot, "logs nobody")
        status = app.screen.query_one("#status-line")
        await wait_for(pilot, lambda: "✖ no service for 'nobody'" in str(status.render()), "the lookup error")
        assert app.is_running


async def test_palette_offers_the_screens_and_runs_them(make_app, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        titles = [title for title, _, _ in ScreensProvider(app.screen)._commands()]
        assert "Go to Servers" in titles and "Go to Overview" not in titles  # context-sensitive
        assert len(titles) == len(registry.SCREENS) - 1  # one per screen of the registry
        await pilot.press("ctrl+p")
        await pilot.press(*"Go to Nodes")
        def first_hit() -> str:
            lists = app.screen.query("CommandList")
            return str(lists.first().get_option_at_index(0).prompt) if lists and lists.first().option_count else ""

        await wait_for(pilot, lambda: "Go to Nodes" in first_hit(), "the palette to list the command")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, NodesScreen), "the nodes screen")


async def test_help_lists_the_active_bindings_of_the_screen(make_app, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_servers(pilot, wait_for)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        actions = {row[1] for row in app.screen.rows}
        assert {"Stop", "Restart", "Delete named", "Logs", "Mark", "Filter", "Command"} <= actions
        await pilot.press("escape")
        assert isinstance(app.screen, ServersScreen)


async def test_keys_are_remappable_from_the_config(make_app, wait_for):
    app = make_app(keys={"server_stop": "x", "not_an_action": "z"})
    async with app.run_test(size=SIZE) as pilot:
        assert any("Unknown actions in [keys]: not_an_action" in m for m in messages(app))
        await open_servers(pilot, wait_for)
        await pilot.press("s")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmScreen)


async def test_theme_comes_from_the_config(make_app):
    app = make_app(theme="nord")
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "nord"
        await command(pilot, "theme no-such-theme")
        assert app.theme == "nord"
        assert any("Unknown theme 'no-such-theme'" in m for m in messages(app))


# -- tables: filter, sort, drill-down, diff updates --------------------------------------------------
async def test_filter_matches_any_column_and_inverts(make_app, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_servers(pilot, wait_for)
        await pilot.press("slash", *"rejected")  # the TASK column
        assert shown_keys(app) == ["carol"]
        await pilot.press("enter")
        assert "filter /rejected" in str(app.screen.query_one("#status-line").render())
        await pilot.press("slash", "escape")
        assert len(shown_keys(app)) == 5
        await pilot.press("slash", *"!alice", "enter")
        assert shown_keys(app) == ["bob/analysis", "carol", "dave"]


async def test_sort_by_command_key_and_header(make_app, fake, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_servers(pilot, wait_for)
        assert shown_keys(app) == ["alice", "alice/mri", "bob/analysis", "carol", "dave"]
        await command(pilot, "sort -user")
        assert shown_keys(app)[0] == "dave"
        await command(pilot, "sort activity")  # oldest activity first: sorted by time, not by the text
        assert shown_keys(app)[0] == "dave" and shown_keys(app)[-1] == "bob/analysis"
        # A refresh that changes a sort cell moves the row; one that changes nothing leaves the order alone.
        dave = next(r for r in await fake.hub_servers() if r.key == "dave")
        fake.set_server(replace(dave, last_activity=fake.now))
        app.screen.refresh_chain.request()
        await wait_for(pilot, lambda: shown_keys(app)[-1] == "dave", "dave, now the most recent, last")
        await pilot.press("O")  # reverse
        assert shown_keys(app)[0] == "dave"
        await pilot.press("o")  # next column: XSITYPE
        assert table(app).sort_column == "xsi_type"
        assert shown_keys(app)[0] == "alice/mri"  # xnat:mrSessionData < xnat:projectData


async def test_services_drill_into_tasks_shows_dockers_error(make_app, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_services(pilot, wait_for)
        move_to(app, "jupyter-carol")
        await pilot.press("enter")
        assert isinstance(app.screen, TasksScreen)
        await wait_for(pilot, lambda: table(app).row_count == 2, "carol's two tasks")
        detail = str(app.screen.query_one("#task-detail").render())
        assert "bind source path does not exist" in detail
        await pilot.press("escape")
        assert isinstance(app.screen, ServicesScreen)


async def test_services_inspect_shows_the_backends_redacted_inspect(make_app, wait_for):
    from textual.widgets import TextArea

    from console.screens.dialogs import InspectScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_services(pilot, wait_for)
        move_to(app, "jupyter-carol")
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, InspectScreen), "the inspect dialog")
        text = app.screen.query_one("#inspect-text", TextArea).text
        assert '"Name": "jupyter-carol"' in text and "JUPYTERHUB_API_TOKEN=<redacted>" in text
        await pilot.press("escape")
        assert isinstance(app.screen, ServicesScreen)


async def test_refresh_updates_by_difference_and_keeps_the_cursor(make_app, fake, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_servers(pilot, wait_for)
        t = table(app)
        t.move_cursor(row=t.get_row_index("carol"))
        row_keys_before = {key.value: key for key in t.rows}
        alice = next(r for r in await fake.hub_servers() if r.key == "alice")
        fake.set_server(replace(alice, state="pending stop"))
        fake.set_server(replace(alice, server="zzz", service_name="jupyter-alice--zzz"))
        fake.add_event("service", "update", "jupyter-alice")
        await wait_for(pilot, lambda: t.row_count == 6, "the new server to appear")
        assert t.cursor_key == "carol"
        assert t.get_cell("alice", "state").text == "pending stop"
        # Existing rows were updated in place, not removed and re-added.
        assert all(key is row_keys_before[key.value] for key in t.rows if key.value in row_keys_before)


async def test_docker_events_trigger_a_refresh_before_the_interval(make_app, fake, wait_for):
    app = make_app(refresh_interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        await open_servers(pilot, wait_for)
        runs = app.screen.refresh_chain.runs
        fake.set_server(replace(next(iter(await fake.hub_servers())), user="erin"))
        fake.add_event("service", "create", "jupyter-erin")
        await wait_for(pilot, lambda: "erin" in shown_keys(app), "erin's server after the event")
        assert app.screen.refresh_chain.runs > runs


async def test_health_check_execs_are_not_news(make_app, fake, wait_for):
    app = make_app(refresh_interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        await open_servers(pilot, wait_for)
        await wait_for(pilot, lambda: len(app.recent_events) == 3, "the first events")
        runs = app.screen.refresh_chain.runs
        fake.add_event("container", "exec_start: /usr/local/bin/xnat-jupyterhub-healthcheck", "hub.1.x")
        fake.add_event("container", "die", "jupyter-dave.1.y")
        await wait_for(pilot, lambda: len(app.recent_events) == 4, "the real event")
        assert [e.action for e in app.recent_events][-1] == "die"
        await wait_for(pilot, lambda: app.screen.refresh_chain.runs == runs + 1, "one refresh, for the die")


# -- actions and safety ----------------------------------------------------------------------------
async def test_marks_and_bulk_stop_ask_first(make_app, fake, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_servers(pilot, wait_for)
        await pilot.press("space")  # alice, cursor moves to alice/mri
        await pilot.press("down", "space")  # bob/analysis
        assert table(app).marked == {"alice", "bob/analysis"}
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen)
        assert "alice" in app.screen.body and "bob/analysis" in app.screen.body
        await pilot.press("n")
        assert not fake.actions
        await pilot.press("s", "y")
        await wait_for(pilot, lambda: len(fake.actions) == 2, "both stops")
        assert [(a.action, a.target, a.ok) for a in fake.actions] == [
            ("stop", "alice", True), ("stop", "bob/analysis", True)
        ]
        await wait_for(pilot, lambda: shown_keys(app) == ["alice/mri", "carol", "dave"], "stopped servers to go")
        assert not table(app).marked
        assert any("stop: 2 of 2 done" in m for m in messages(app))
        await pilot.press("a")  # stopped servers too
        await wait_for(pilot, lambda: table(app).row_count == 5, "stopped servers shown")
        assert table(app).get_cell("alice", "state").text == "stopped"


async def test_delete_refuses_default_servers(make_app, fake, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_servers(pilot, wait_for)
        await pilot.press("d")  # cursor on alice's default server
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("Only named servers can be deleted" in m for m in messages(app))
        move_to(app, "alice/mri")
        await pilot.press("d", "y")
        await wait_for(pilot, lambda: "alice/mri" not in shown_keys(app), "the deleted row to go")
        assert fake.actions[-1].action == "delete" and fake.actions[-1].ok


async def test_restart_follows_progress_live(make_app, fake, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_servers(pilot, wait_for)
        move_to(app, "carol")
        await pilot.press("r", "y")
        assert isinstance(app.screen, ProgressScreen)
        progress = app.screen
        await wait_for(pilot, lambda: progress.finished, "the restart to finish")
        lines = progress.lines
        assert lines[0] == "stopping carol"
        assert "starting with the same user_options (xnat:projectData P003)" in lines
        assert lines[-1] == "Server ready at /jupyterhub/user/carol"
        assert "done" in str(progress.query_one("#progress-status").render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: table(app).get_cell("carol", "state").text == "ready", "carol ready")


async def test_read_only_refuses_every_change(fake, make_app, wait_for):
    backend = FakeBackend(read_only=True)
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        assert "READ-ONLY" in str(app.screen.query_one(TopBar).render())
        await open_servers(pilot, wait_for)
        for key in ("s", "r", "d"):
            await pilot.press(key)
            assert isinstance(app.screen, ServersScreen), f"{key} opened a dialog"
        await pilot.press("7", "D")
        await pilot.press("X")
        assert isinstance(app.screen, DeployScreen)
        refusals = [m for m in messages(app) if m.startswith("Read-only console: refused to")]
        assert len(refusals) == 5
        assert backend.actions == []  # nothing reached the backend


async def test_stop_stack_needs_the_name_typed_and_reports_what_was_removed(make_app, fake, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "stop")
        assert isinstance(app.screen, TypedConfirmScreen)
        await pilot.press(*"xnat", "enter")
        assert isinstance(app.screen, TypedConfirmScreen)
        assert "is not 'xnat-jupyterhub'" in str(app.screen.query_one("#typed-error").render())
        assert not fake.actions
        await pilot.press(*"-jupyterhub", "enter")
        assert isinstance(app.screen, DeployScreen)
        await wait_for(pilot, lambda: fake.actions and fake.actions[-1].action == "stop", "the stop")
        log = app.screen
        await wait_for(pilot, lambda: any("stopped:" in line for line in log.lines), "the report")
        assert "removed service xnat-jupyterhub_jupyterhub" in log.lines
        assert "removed network jupyterhub-network" in log.lines


async def test_deploy_streams_its_checks(make_app, fake, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("7", "D")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        log: Any = app.screen  # the deploy screen, with its log lines
        await wait_for(pilot, lambda: any("converged" in line for line in log.lines), "convergence")
        assert "docker stack deploy -c docker-stack.yml xnat-jupyterhub" in log.lines
        assert fake.actions[-1].action == "deploy"


def status_line(screen) -> str:
    return str(screen.query_one("#status-line").render())


async def test_a_failed_deploy_shows_as_failed(make_app, fake, wait_for):
    fake.deploy_failure = "Docker secrets missing: xnat_jupyterhub_console_token"
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("7", "D", "y")
        deploy = app.screen
        await wait_for(pilot, lambda: "deploy failed" in status_line(deploy), "the failure on the status line")
        assert any("deploy failed: Docker secrets missing" in line for line in deploy.lines)
        assert any(m.startswith("Deploy failed: Docker secrets missing") for m in messages(app))
        assert not any("deployed" in m for m in messages(app))


# -- faults ----------------------------------------------------------------------------------------
def health(app, name: str):
    return next(c for c in app.components if c.name == name)


async def test_dead_hub_shows_degraded_and_recovers_by_itself(make_app, fake, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_servers(pilot, wait_for)
        fake.fail("hub", "connection refused")
        await wait_for(pilot, lambda: health(app, "hub").health == Health.DOWN, "hub down")
        await wait_for(pilot, lambda: "✖ hub: connection refused" in str(app.screen.query_one("#status-line").render()),
                       "the servers screen to say so")
        assert table(app).row_count == 5  # the last data stays on screen
        assert "✖ hub: connection refused" in str(app.screen.query_one(TopBar).render())
        fake.heal("hub")
        await wait_for(pilot, lambda: health(app, "hub").health == Health.OK, "hub back")
        await wait_for(pilot, lambda: "✖" not in str(app.screen.query_one("#status-line").render()), "error cleared")
        assert app.is_running


async def test_unreachable_engine_and_xnat_show_and_clear(make_app, fake, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        fake.fail("engine", "Cannot connect to the Docker daemon")
        fake.fail("xnat", "connection timed out")
        await wait_for(pilot, lambda: health(app, "engine").health == Health.DOWN, "engine down")
        await wait_for(pilot, lambda: health(app, "xnat").health == Health.DOWN, "xnat down")
        assert health(app, "xnat").detail == "TCP 10.0.0.5:443: connection timed out"
        await wait_for(pilot, lambda: "✖ engine: Cannot connect" in str(app.screen.query_one("#status-line").render()),
                       "the services screen to say so")
        fake.heal("engine")
        fake.heal("xnat")
        await wait_for(pilot, lambda: health(app, "engine").health == Health.OK, "engine back")
        await wait_for(pilot, lambda: health(app, "xnat").health == Health.DEGRADED, "xnat reachable again")
        await wait_for(pilot, lambda: table(app).row_count == 6 and not app.screen.error, "services back")


async def test_xnat_check_shows_each_step_with_reason_and_hint(make_app, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await wait_for(pilot, lambda: table(app).row_count == 11 and not app.screen.running, "both checks")
        assert table(app).get_cell("7", "result").text == "✖ fail"
        assert table(app).get_cell("9", "step").text == "DNS xnat (hub network)"
        assert table(app).cursor_key == "7"  # lands on the first failure
        detail = str(app.screen.query_one("#step-detail").render())
        assert "rejects XNAT's token (403)" in detail and "hint: Set the token in XNAT" in detail
        assert "9 passed · 1 failed · 1 warnings" in str(app.screen.query_one("#status-line").render())


# -- logs ------------------------------------------------------------------------------------------
async def test_xnat_check_screen_finishes_with_its_hub_network_half(make_app, fake, wait_for):
    """The check's own one-off service comes and goes on the swarm; that is no reason to run the check again,
    so the screen ends at "done" with the hub-network rows shown, after one run."""
    app = make_app(xnat_interval=600)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        screen = app.screen
        assert isinstance(screen, XnatScreen)
        await wait_for(pilot, lambda: fake.hub_network_checks >= 1 and not screen.running, "the first run to end")
        events_at = max(e.time for e in fake.events())
        await wait_for(pilot, lambda: app._last_event is not None and app._last_event >= events_at,
                       "the app to see the check service's events")
        await wait_for(pilot, lambda: not screen.refresh_chain.running, "any run those events started")
        assert fake.hub_network_checks == 1
        # Nor is any other change on the swarm: the check does not read it.
        fake.add_event("service", "update", "jupyter-alice")
        changed_at = max(e.time for e in fake.events())
        await wait_for(pilot, lambda: app._last_event is not None and app._last_event >= changed_at, "the update")
        await wait_for(pilot, lambda: not screen.refresh_chain.running, "any run the update started")
        assert fake.hub_network_checks == 1
        assert "done" in str(screen.query_one("#status-line").render())
        assert any(step.name.endswith("(hub network)") for step in screen.steps)
        assert table(app).row_count == len(screen.steps)


@pytest.mark.parametrize("key", [entry.key for entry in registry.SCREENS])
async def test_q_quits_from_every_screen(make_app, fake, key):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(key)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running, f"q did not quit screen {key}"
    assert app.return_code == 0 and fake.closed


async def test_q_in_a_text_field_is_a_letter_and_ctrl_q_and_colon_q_still_quit(make_app, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", "slash", "q")
        assert app.is_running and app.screen.query_one("#filter-bar").value == "q"
        await pilot.press("escape", "colon", "q")
        assert app.is_running and app.screen.query_one("#command-line").value == "q"
        await pilot.press("enter")  # `:q`
        await pilot.pause()
        assert not app.is_running, ":q did not quit"
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert not app.is_running, "ctrl+q did not quit"


async def open_logs(pilot, wait_for, target="alice") -> LogView:
    await command(pilot, f"logs {target}")
    view = pilot.app.screen.query_one(LogView)
    await wait_for(pilot, lambda: len(view.buffer) == 30, "the backlog")
    return view


async def test_logs_search_highlights_and_jumps(make_app, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await open_logs(pilot, wait_for)
        await pilot.press("slash", *"request 1\\d", "enter")
        assert view.match_count == 10
        assert view.current_match is not None and view.match_position == 1
        assert view.buffer.text(view.current_match).endswith("request 10 GET /user/alice/api/status 200")
        await pilot.press("n", "n")
        assert view.match_position == 3
        await pilot.press("N")
        assert view.match_position == 2
        assert "search /request 1\\d 2/10" in str(app.screen.query_one("#status-line").render())
        await pilot.press("slash", *"(unclosed", "enter")
        assert any("bad regular expression" in m for m in messages(app))


async def test_logs_filter_is_separate_from_search(make_app, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await open_logs(pilot, wait_for)
        await pilot.press("ampersand", *"request 2", "enter")
        assert view.visible_count == 11  # 2, 20..29
        assert not view.search_text
        await pilot.press("slash", *"request 25", "enter")
        assert view.match_count == 1
        await pilot.press("ampersand")
        await pilot.press(*["backspace"] * len("request 2"), "enter")
        assert view.visible_count == 30


async def test_logs_follow_off_counts_new_lines(make_app, fake, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await open_logs(pilot, wait_for)
        await pilot.press("f")
        assert not view.follow
        for i in range(3):
            fake.emit_log("jupyter-alice", f"late line {i}")
        await wait_for(pilot, lambda: view.new_lines == 3, "three new lines counted")
        banner = app.screen.query_one("#new-lines")
        assert banner.display and "+3 new lines" in str(banner.render())
        await pilot.press("f")
        assert view.follow and view.new_lines == 0 and not banner.display
        assert view.scroll_y == view.max_scroll_y


async def test_logs_reconnect_by_themselves_without_repeating_lines(make_app, fake, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await open_logs(pilot, wait_for)
        status = app.screen.query_one("#status-line")
        fake.fail("engine", "Cannot connect to the Docker daemon")
        await wait_for(pilot, lambda: "✖ Cannot connect to the Docker daemon" in str(status.render()), "the break")
        fake.heal("engine")
        await wait_for(pilot, lambda: " · streaming · " in str(status.render()), "the stream back")
        fake.emit_log("jupyter-alice", "after the restart")
        await wait_for(pilot, lambda: view.buffer.total == 31, "the new line")
        assert view.buffer.text(30) == "after the restart"  # and the resent last second was not repeated


async def test_logs_memory_is_bounded_and_dropped_lines_are_counted(make_app, fake, wait_for):
    app = make_app(log_max_lines=4096)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_logs(pilot, wait_for)
        for i in range(3 * 4096):
            fake.emit_log("jupyter-alice", f"flood {i}")
        await wait_for(pilot, lambda: view.buffer.total == 30 + 3 * 4096, "the flood")
        assert len(view.buffer) <= 2 * 4096
        assert view.buffer.dropped == view.buffer.total - len(view.buffer) > 0
        status = str(app.screen.query_one("#status-line").render())
        assert f"dropped {view.buffer.dropped:,} oldest" in status


async def test_logs_toggles_since_tail_and_save(make_app, fake, wait_for, tmp_path):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await open_logs(pilot, wait_for)
        assert view.timestamps and view.shown_text(view.buffer.first).startswith("2026-11-27T11:30:00Z")
        await pilot.press("t")
        assert view.shown_text(view.buffer.first).startswith("1.abc123@manager-1 | ")
        await pilot.press("w")
        assert view.wrap
        await pilot.press("S")  # since: all -> 1m
        await wait_for(pilot, lambda: len(view.buffer) == 1, "the last minute only")  # 11:59 vs 12:00
        assert "since 1m" in str(app.screen.query_one("#status-line").render())
        await pilot.press("S")  # 5m
        await wait_for(pilot, lambda: len(view.buffer) == 5, "the last five minutes")
        await pilot.press("T")
        await pilot.press(*["backspace"] * 4, "2", "enter")
        await wait_for(pilot, lambda: len(view.buffer) == 2, "tail 2")
        await pilot.press("ctrl+s", "enter")
        saved = tmp_path / "jupyter-alice-20261127T120000.log"
        await wait_for(pilot, saved.exists, "the saved file")
        assert saved.read_text().splitlines() == [
            "1.abc123@manager-1 | [I 11:58:00] request 28 GET /user/alice/api/status 200",
            "1.abc123@manager-1 | [I 11:59:00] request 29 GET /user/alice/api/status 200",
        ]


async def test_overview_counts_come_from_the_backend_and_say_when_unknown(make_app, fake, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        def stat(name: str) -> str:
            return str(app.screen.query_one(f"#stat-{name}").render()).split("\n")[0]

        await wait_for(pilot, lambda: stat("users") == "7", "the users count")
        assert (stat("running"), stat("pending"), stat("failed"), stat("nodes"), stat("managers")) == (
            "3", "1", "1", "2", "1"
        )
        fake.fail("hub")
        await wait_for(pilot, lambda: stat("users") == "–", "unknown while the hub is down")
        assert stat("running") == "–" and stat("nodes") == "2"  # the engine still answers
        fake.heal("hub")
        await wait_for(pilot, lambda: stat("users") == "7", "back")


def test_docs_key_map_matches_the_bindings():
    from pathlib import Path

    from console.keymap import key_reference

    doc = (Path(__file__).parents[2] / "docs" / "console.md").read_text()
    block = doc.split("<!-- key-map:start -->\n", 1)[1].split("\n<!-- key-map:end -->", 1)[0]
    assert block == key_reference(), "regenerate the key map in docs/console.md from console.keymap.key_reference()"


# -- images before a class -------------------------------------------------------------------------

async def open_pull(pilot, wait_for) -> ImagePullScreen:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the pull's confirmation")
    await pilot.press("y")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ImagePullScreen) and pilot.app.screen.finished,
                   "the pull's end")
    return pilot.app.screen


def pull_cell(screen: ImagePullScreen, node: str, image: str) -> str:
    return str(screen.query_one("#pull-table", DataTable).get_cell(node, image))


async def test_p_on_nodes_pulls_the_launch_images_onto_every_notebook_node(make_app, fake, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await wait_for(pilot, lambda: isinstance(app.screen, NodesScreen) and table(app).row_count == 2, "nodes")
        await pilot.press("P")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        body = str(app.screen.query_one("#dialog-body").render())
        assert NOTEBOOK_IMAGE in body and "Nodes: manager-1, worker-1" in body
        assert not [a for a in fake.actions if a.action == "pull"]  # nothing pulled before the yes
        pull = await open_pull(pilot, wait_for)
        assert pull_cell(pull, "manager-1", NOTEBOOK_IMAGE) == "present"  # held already: left alone
        assert pull_cell(pull, "worker-1", NOTEBOOK_IMAGE) == "pulled"
        assert f"worker-1: {NOTEBOOK_IMAGE}: pulling" in pull.lines
        assert f"{NOTEBOOK_IMAGE}: on manager-1, worker-1" in pull.lines
        assert "done" in str(pull.query_one("#progress-status").render())
        assert fake.node_images["worker-1"] == {NOTEBOOK_IMAGE}
        assert fake.actions[-1].action == "pull" and fake.actions[-1].ok


async def test_images_command_names_images_and_a_failing_node_shows_as_failed(make_app, fake, wait_for):
    fake.pull_failures["worker-1"] = "manifest unknown"
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "images site/extra:2")
        assert app.current_mode == "nodes"  # the action lives on Nodes, as :stop goes to Deploy
        pull = await open_pull(pilot, wait_for)
        assert pull.plan.images == ("site/extra:2",)
        assert pull_cell(pull, "manager-1", "site/extra:2") == "pulled"
        assert pull_cell(pull, "worker-1", "site/extra:2") == "failed"
        assert "worker-1: site/extra:2: failed: manifest unknown" in pull.lines
        assert "site/extra:2: on manager-1" in pull.lines
        assert "failed" in str(pull.query_one("#progress-status").render())
        assert any(m.startswith("pull failed: worker-1: site/extra:2: failed") for m in messages(app))


async def test_pull_is_refused_read_only_and_says_when_nothing_runs(make_app, wait_for):
    read_only = FakeBackend(read_only=True)
    app = make_app(read_only)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "pull")
        assert not isinstance(app.screen, ConfirmScreen)
        assert any(m.startswith("Read-only console: refused to pull") for m in messages(app))
        assert read_only.actions == []
    idle = FakeBackend()
    for row in await idle.hub_servers():  # stopped: their services go, and with them the launch images
        await idle.stop_server(row.user, row.server)
    app = make_app(idle)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "images")
        await wait_for(pilot, lambda: any("no launch image to pull" in m for m in messages(app)), "the warning")
        assert not isinstance(app.screen, ConfirmScreen)


async def test_pull_with_a_dead_engine_is_a_notification(make_app, fake, wait_for):
    fake.fail("engine", "connection refused")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "images")
        await wait_for(pilot, lambda: any(m == "Pull images: connection refused" for m in messages(app)), "the error")
        assert not isinstance(app.screen, ConfirmScreen)


async def test_palette_offers_the_image_pull(make_app, wait_for):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"Pull notebook images")

        def first_hit() -> str:
            lists = app.screen.query("CommandList")
            return str(lists.first().get_option_at_index(0).prompt) if lists and lists.first().option_count else ""

        await wait_for(pilot, lambda: "Pull notebook images" in first_hit(), "the palette to list the action")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the pull's confirmation")
