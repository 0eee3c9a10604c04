"""The Textual app: screens as modes, the `:` command line, the palette, keys, health and Docker events.

`XnatConsoleApp(backend, config)` runs on any object implementing `console.backend.base.Backend` (the CLI passes
the live backend; tests and the demo pass `console.backend.fake.FakeBackend`) with a `ConsoleConfig`.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import ClassVar, cast

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.reactive import var
from textual.screen import Screen
from textual.worker import Worker

from console import registry
from console.backend.base import Backend
from console.backend.health import hub_health, hub_unreachable, xnat_health
from console.backend.models import (
    CheckStep,
    ComponentHealth,
    DockerEvent,
    Health,
    HubInfo,
)
from console.config import ConsoleConfig
from console.screens.base import (
    ConsoleScreen,
    RefreshChain,
    report_worker_error,
)
from xjh_contract import CHECK_SERVICE_PREFIX

# Screens other than the first one are imported where they are first used, not before the first frame.

# Health checks run `exec`s every few seconds: not news, and no reason to refresh anything. Nor are the console's
# own one-off XNAT check services (CHECK_SERVICE_PREFIX).
NOISE_ACTIONS = ("exec_create", "exec_start", "exec_die", "health_status")

class ScreensProvider(Provider):
    """The palette's "Go to" commands, one per screen of the registry."""

    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        app = cast("XnatConsoleApp", self.app)
        return [
            (f"Go to {entry.title}", entry.help, partial(app.goto, entry.mode))
            for entry in registry.SCREENS
            if entry.mode != app.current_mode
        ]

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)


class XnatConsoleApp(App[None]):
    TITLE = "xnat-jh-console"
    CSS_PATH = Path(__file__).with_name("console.tcss")  # absolute: subclasses may live anywhere
    ENABLE_COMMAND_PALETTE = True
    # Factories, so a screen's module is imported (and the screen built) when its mode is first shown.
    MODES: ClassVar[dict[str, str | Callable[[], Screen]]] = {
        entry.mode: partial(lambda entry: entry.screen_class()(), entry) for entry in registry.SCREENS
    }
    DEFAULT_MODE = registry.DEFAULT_MODE
    COMMANDS = App.COMMANDS | {ScreensProvider}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("colon", "command_line", "Command", id="command_line"),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("slash", "filter", "Filter", id="filter", show=False),
        Binding("escape", "back", "Back", id="back", show=False),
        *(
            Binding(entry.key, f"goto('{entry.mode}')", entry.title, id=f"goto_{entry.mode}", show=False)
            for entry in registry.SCREENS
        ),
        # Not a priority binding: a focused text field (the `:` line, a filter, a search) takes its `q` first.
        Binding("q", "quit", "Quit", id="quit_q", show=False),
        Binding("ctrl+q", "quit", "Quit", id="quit", show=False, priority=True),
    ]

    components: var[tuple[ComponentHealth, ...]] = var(())
    recent_events: var[tuple[DockerEvent, ...]] = var(())

    def __init__(
        self,
        backend: Backend,
        config: ConsoleConfig | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__()
        self.backend = backend
        self.config = config = config or ConsoleConfig()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.read_only = config.read_only or backend.read_only
        self.refresh_interval = config.refresh_interval
        self.events_interval = config.events_interval
        self.xnat_interval = config.xnat_interval
        self.stack_name = config.stack
        self.log_max_lines = config.log_max_lines
        self.save_dir = Path(config.save_dir).expanduser() if config.save_dir else Path.cwd()
        self._health: dict[str, ComponentHealth] = {
            name: ComponentHealth(name, Health.UNKNOWN, "checking…") for name in ("engine", "swarm", "hub", "xnat")
        }
        self._history: list[str] = []
        self._last_event: datetime | None = None
        self._events_polled = False
        self._health_chains: list[RefreshChain] = []
        self._chains: list[RefreshChain] = []
        self.hub_info: HubInfo | None = None
        self.first_frame_drawn = False
        self._until_first_frame: list[Callable[[], object]] = []

    # -- start-up -------------------------------------------------------------------------------
    def on_mount(self) -> None:
        if self.config.theme:
            self.set_theme(self.config.theme)
        keys = dict(self.config.keys)
        if keys:
            from console.keymap import known_binding_ids

            unknown = sorted(set(keys) - set(known_binding_ids()))
            if unknown:
                self.notify(f"Unknown actions in [keys]: {', '.join(unknown)}", severity="warning", timeout=10)
            self.set_keymap({k: v for k, v in keys.items() if k not in unknown})
        self._publish_health()
        self._docker_health_chain = RefreshChain(
            self._refresh_docker_health, lambda: self.refresh_interval, self.set_timer
        )
        self._health_chains = [
            self._docker_health_chain,
            RefreshChain(self._refresh_hub_health, lambda: self.refresh_interval, self.set_timer),
            RefreshChain(self._refresh_xnat_health, lambda: self.xnat_interval, self.set_timer),
        ]
        self._chains = [
            *self._health_chains,
            RefreshChain(self._poll_events, lambda: self.events_interval, self.set_timer),
        ]
        self.after_first_frame(*(chain.request for chain in self._chains))

    def after_first_frame(self, *callbacks: Callable[[], object]) -> None:
        """Run `callbacks` once the first frame is drawn (at once after that). The first refreshes import the
        docker SDK and httpx, ~150 ms of work that would otherwise come before the screen appears."""
        if self.first_frame_drawn:
            for callback in callbacks:
                callback()
        else:
            self._until_first_frame.extend(callbacks)

    def on_ready(self) -> None:
        """Textual's Ready: the first screen's first frame has been drawn."""
        self.first_frame_drawn = True
        waiting, self._until_first_frame = self._until_first_frame, []
        for callback in waiting:
            callback()

    async def on_unmount(self) -> None:
        """Close the backend's clients (hub HTTP pool, Docker sockets, stats threads): nothing left behind."""
        # Exiting anyway: a failed close must not turn a clean exit into a traceback.
        with contextlib.suppress(Exception):
            await self.backend.aclose()

    def set_theme(self, name: str) -> bool:
        if name not in self.available_themes:
            self.notify(f"Unknown theme '{name}'. Themes: {', '.join(sorted(self.available_themes))}",
                        severity="warning")
            return False
        self.theme = name
        return True

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        for chain in self._chains:
            chain.worker_changed(event.worker)
        report_worker_error(self, event.worker)

    def refresh_health(self) -> None:
        for chain in self._health_chains:
            chain.request()

    # -- health: degraded states appear and clear by themselves ---------------------------------
    def _publish_health(self) -> None:
        self.components = tuple(self._health.values())

    def _set_health(self, components: Iterable[ComponentHealth]) -> None:
        for component in components:
            self._health[component.name] = component
        self._publish_health()

    @work(thread=True, exclusive=True, group="health-docker", exit_on_error=False)
    def _refresh_docker_health(self) -> None:
        try:
            components = self.backend.docker_health()
        except Exception as exc:  # the backend should not raise here; if it does, show it, don't die
            components = [ComponentHealth("engine", Health.DOWN, str(exc) or type(exc).__name__)]
        self.call_from_thread(self._set_health, components)

    @work(exclusive=True, group="health-hub", exit_on_error=False)
    async def _refresh_hub_health(self) -> None:
        try:
            info = await self.backend.hub_info()
        except Exception as exc:
            self._set_health([hub_unreachable(exc)])
            return
        self._set_health([hub_health(info)])
        self.hub_info = info

    @work(exclusive=True, group="health-xnat", exit_on_error=False)
    async def _refresh_xnat_health(self) -> None:
        steps: list[CheckStep] = []
        try:
            async for step in self.backend.xnat_check():
                steps.append(step)
        except Exception as exc:
            self._set_health([ComponentHealth("xnat", Health.DOWN, str(exc) or type(exc).__name__)])
            return
        self.record_xnat_check(steps)

    def record_xnat_check(self, steps: list[CheckStep]) -> None:
        """Summarise a check run (ours or the XNAT screen's) as XNAT's health, by the backend's one rule."""
        self._set_health([xnat_health(steps)])

    # -- Docker events: they trigger refreshes ---------------------------------------------------
    @work(thread=True, exclusive=True, group="docker-events", exit_on_error=False)
    def _poll_events(self) -> None:
        try:
            events = self.backend.events(since=self._last_event)
        except Exception:
            return  # the engine's health chain reports it
        self.call_from_thread(self._events_arrived, events)

    def _events_arrived(self, events: list[DockerEvent]) -> None:
        first_poll, self._events_polled = not self._events_polled, True
        if events:  # `since` moves on past the noise too
            self._last_event = max(event.time for event in events)
        events = [
            e for e in events if not e.action.startswith(NOISE_ACTIONS) and not e.actor.startswith(CHECK_SERVICE_PREFIX)
        ]
        if not events:
            if self._last_event is None:
                self._last_event = self.clock()  # from now on, ask only for news
            return
        self.recent_events = (self.recent_events + tuple(events))[-50:]
        if not first_poll:  # the first answer is history, not news
            self._docker_health_chain.request()
            screen = self.screen
            if isinstance(screen, ConsoleScreen):
                screen.docker_changed()

    # -- navigation -----------------------------------------------------------------------------
    def goto(self, mode: str) -> Screen:
        if mode != self.current_mode:
            self._history.append(self.current_mode)
            del self._history[:-20]
            self.switch_mode(mode)
        return self._screen_stacks[mode][0]

    def action_goto(self, mode: str) -> None:
        self.goto(mode)

    async def action_back(self) -> None:
        if len(self.screen_stack) > 1:
            self.pop_screen()
        elif self._history:
            self.switch_mode(self._history.pop())

    def action_command_line(self) -> None:
        screen = self.screen
        if isinstance(screen, ConsoleScreen):
            screen.open_command_line()

    def action_filter(self) -> None:
        screen = self.screen
        if isinstance(screen, ConsoleScreen):
            screen.action_filter()

    def action_help(self) -> None:
        from console.screens.dialogs import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        rows: list[tuple[str, str, str]] = []
        seen: set[tuple[str, str]] = set()
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            if (key, binding.action) in seen:
                continue
            seen.add((key, binding.action))
            rows.append((self.get_key_display(binding), binding.description or binding.action, binding.id or ""))
        # Ours (remappable, with an id) first; the widgets' own cursor keys after them.
        rows.sort(key=lambda row: not row[2])
        self.push_screen(HelpScreen(rows, registry.command_help()))

    # -- the `:` command line --------------------------------------------------------------------
    def run_command_line(self, text: str) -> None:
        try:
            words = shlex.split(text)
        except ValueError as exc:
            self.notify(f"Cannot parse '{text}': {exc}", severity="error")
            return
        if not words:
            return
        command, args = words[0].lower(), words[1:]
        entry = registry.command_for_word(command)
        screen_entry = registry.screen_for_word(command)
        name = entry.name if entry else ""
        if name == "quit":
            self.exit()
        elif name == "help":
            self.action_help()
        elif name == "theme":
            if args:
                self.set_theme(args[0])
            else:
                self.search_themes()
        elif name == "sort":
            screen = self.screen
            if not args:
                self.notify("Usage: :sort [-]COLUMN", severity="warning")
            elif isinstance(screen, ConsoleScreen):
                screen.sort_command(args[0])
        elif name == "stop":
            from console.screens.deploy import DeployScreen

            deploy = self.goto("deploy")
            if isinstance(deploy, DeployScreen):
                deploy.action_stop_stack()
        elif name == "images":
            from console.screens.services import NodesScreen

            cast(NodesScreen, self.goto("nodes")).image_pulls.start(args)
        elif name == "tasks":
            if not args:
                self.notify("Usage: :tasks SERVICE", severity="warning")
                return
            self.open_tasks(args[0])
        elif screen_entry is not None and screen_entry.mode == "logs":
            self.open_logs(args[0] if args else "hub")
        elif screen_entry is not None:
            self.goto(screen_entry.mode)
        else:
            self.notify(f"Unknown command ':{text}'. Press ? for the list.", severity="error")

    def open_logs(self, target: str) -> None:
        """`hub`, a service name, USER or USER/SERVER."""
        from console.screens.logs import LogsScreen

        logs = self.goto("logs")
        if isinstance(logs, LogsScreen):
            logs.show_target(target)

    def open_tasks(self, service: str) -> None:
        from console.screens.services import TasksScreen

        if self.current_mode != "services":
            self.goto("services")
        self.push_screen(TasksScreen(service))

    # -- safety ---------------------------------------------------------------------------------
    def refuse_if_read_only(self, what: str) -> bool:
        """True (and says so) when the console is read-only; every change asks this first."""
        if self.read_only:
            self.notify(f"Read-only console: refused to {what}.", title="read-only", severity="warning")
            return True
        return False

    def confirm(self, title: str, body: str, on_yes: Callable[[], object], confirm_label: str = "Yes") -> None:
        from console.screens.dialogs import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                on_yes()

        self.push_screen(ConfirmScreen(title, body, confirm_label), answered)

    # -- palette --------------------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Open hub logs", "follow the hub service's logs", lambda: self.open_logs("hub"))
        yield SystemCommand("Refresh now", "re-read everything on this screen", self._refresh_screen)
        yield SystemCommand("Show help", "keys generated from the active bindings", self.action_help)
        yield SystemCommand("Pull notebook images", "onto every node that may run notebooks (asks first)",
                            lambda: self.run_command_line("images"))
        if isinstance(screen, ConsoleScreen):
            yield from screen.palette_commands()

    def _refresh_screen(self) -> None:
        self.refresh_health()
        if isinstance(self.screen, ConsoleScreen):
            self.screen.action_refresh_now()


def run_demo(argv: list[str] | None = None) -> None:
    """`python -m console.app`: the console on the in-memory fake, for a look without a deployment."""
    import argparse

    from console.backend.fake import FakeBackend

    parser = argparse.ArgumentParser(prog="python -m console.app", description=run_demo.__doc__)
    parser.add_argument("--read-only", action="store_true")
    parser.add_argument("--theme", default="")
    args = parser.parse_args(argv)
    backend = FakeBackend(read_only=args.read_only, restart_step_delay=0.4)
    XnatConsoleApp(backend, ConsoleConfig(theme=args.theme or None), clock=backend.clock).run()


if __name__ == "__main__":
    run_demo()
