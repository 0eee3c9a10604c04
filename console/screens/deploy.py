"""Deploy / Stop: deploy streams its checks and progress; stop needs the stack's name typed."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import RichLog, Static
from textual.worker import WorkerState

from console.backend.models import ActionResult, Outcome
from console.screens.base import ConsoleScreen
from console.screens.dialogs import TypedConfirmScreen


class DeployScreen(ConsoleScreen):
    CRUMB = "deploy / stop"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("D", "deploy", "Deploy", id="stack_deploy"),
        Binding("X", "stop_stack", "Stop stack", id="stack_stop"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []  # what the log shows, for tests and for the record

    @property
    def busy(self) -> bool:
        """A deploy or stop is under way. Read from the worker itself: a flag the thread set would leave a
        window, between the confirm and the thread's start, where a second D or X got through."""
        return any(
            worker.node is self and worker.group == "stack"
            and worker.state in (WorkerState.PENDING, WorkerState.RUNNING)
            for worker in self.workers
        )

    def compose_body(self) -> ComposeResult:
        yield Static(id="deploy-intro")
        yield RichLog(id="deploy-log", wrap=True, markup=False, auto_scroll=True)
        yield Static("", id="status-line")

    def on_mount(self) -> None:
        app = self.console_app
        intro = Text.assemble(
            ("Stack ", "dim"), (app.stack_name, "bold"),
            ("\nD deploys: checks the stack file, secrets, network, images and variables, runs "
             "`docker stack deploy` and watches the services converge.", ""),
            ("\nX stops: stops every user server through the hub, removes orphaned notebook services, runs "
             "`docker stack rm` and waits for the network to go. You type the stack's name to confirm.", ""),
        )
        if app.read_only:
            intro.append("\nRead-only: deploy and stop are refused.", style="bold yellow")
        self.query_one("#deploy-intro", Static).update(intro)
        self._set_status("idle")
        self.query_one(RichLog).focus()

    def _set_status(self, text: str, style: str = "") -> None:
        self.query_one("#status-line", Static).update(Text(text, style=style))

    def _write(self, line: str) -> None:
        self.lines.append(line)
        self.query_one(RichLog).write(Text(line))

    def action_deploy(self) -> None:
        app = self.console_app
        if self.busy or app.refuse_if_read_only(f"deploy {app.stack_name}"):
            return
        app.confirm(
            f"Deploy {app.stack_name}?",
            "Runs the pre-flight checks, then `docker stack deploy` with the project's docker-stack.yml.",
            self._deploy,
            confirm_label="Deploy",
        )

    @work(thread=True, exclusive=True, group="stack", exit_on_error=False)
    def _deploy(self) -> None:
        call = self.app.call_from_thread
        call(self._set_status, "deploying…", "bold")
        call(self._write, f"── deploy {self.console_app.stack_name}")
        try:
            result = self.console_app.backend.deploy(progress=lambda line: call(self._write, line))
        except Exception as exc:  # the backend reports failures as results; this is the last guard
            result = ActionResult("deploy", self.console_app.stack_name, Outcome.FAILED, str(exc) or type(exc).__name__)
        call(self._report, result)

    def action_stop_stack(self) -> None:
        app = self.console_app
        if self.busy or app.refuse_if_read_only(f"stop {app.stack_name}"):
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._stop()

        app.push_screen(
            TypedConfirmScreen(
                f"Stop the stack {app.stack_name}?",
                "Stops every user server, removes orphaned notebook services, then the stack and its network.",
                app.stack_name,
            ),
            answered,
        )

    @work(thread=True, exclusive=True, group="stack", exit_on_error=False)
    def _stop(self) -> None:
        call = self.app.call_from_thread
        call(self._set_status, "stopping…", "bold")
        call(self._write, f"── stop {self.console_app.stack_name}")
        try:
            result = self.console_app.backend.stop_stack(progress=lambda line: call(self._write, line))
        except Exception as exc:  # the backend reports failures as results; this is the last guard
            result = ActionResult("stop", self.console_app.stack_name, Outcome.FAILED, str(exc) or type(exc).__name__)
        call(self._report, result)

    def _report(self, result: ActionResult) -> None:
        """Says what the result says: ok, failed or refused, never guessed from the progress lines."""
        for item in result.removed:
            self._write(f"removed {item}")
        done = {"deploy": "deployed", "stop": "stopped"}.get(result.action, result.action)
        if result.outcome is Outcome.OK:
            summary = f"{done}; removed {len(result.removed)}" if result.action == "stop" else done
            self._write(f"{done}: {result.detail or 'done'}")
            self._set_status(summary, "bold green")
            self.notify(f"{result.target} {summary}", title=result.action)
        else:
            verb = "refused" if result.outcome is Outcome.REFUSED else "failed"
            self._write(f"{result.action} {verb}: {result.detail}")
            self._set_status(f"{result.action} {verb}", "bold red")
            self.notify(f"{result.action.capitalize()} {verb}: {result.detail}", title=result.action,
                        severity="error", timeout=10)
        self.console_app.refresh_health()
