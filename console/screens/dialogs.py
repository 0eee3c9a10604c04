"""Modal dialogs: confirmation, typed confirmation, help, progress, a path prompt, and a service's inspect."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, RichLog, Static, TextArea

from console.backend.models import ActionResult


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no for every change. `y` confirms, `n` or Esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm_yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm_no"),
    ]

    def __init__(self, title: str, body: str, confirm_label: str = "Yes") -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="confirm"):
            yield Label(self.title_text, id="dialog-title")
            yield Static(self.body, id="dialog-body", markup=False)
            with Horizontal(id="dialog-buttons"):
                yield Button(Text(f"{self.confirm_label} (y)"), variant="error", id="yes")
                yield Button(Text("Cancel (n)"), variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class TypedConfirmScreen(ModalScreen[bool]):
    """The stack's name must be typed to confirm (stopping the stack removes everything)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="typed_cancel")]

    def __init__(self, title: str, body: str, expected: str) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.expected = expected

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="confirm"):
            yield Label(self.title_text, id="dialog-title")
            yield Static(self.body, id="dialog-body", markup=False)
            yield Label(Text.assemble("Type ", (self.expected, "bold"), " to confirm, Esc to cancel:"))
            yield Input(placeholder=self.expected, id="typed-name")
            yield Static("", id="typed-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() == self.expected:
            self.dismiss(True)
        else:
            self.query_one("#typed-error", Static).update(
                Text(f"'{event.value}' is not '{self.expected}'.", style="bold red")
            )

    def action_cancel(self) -> None:
        self.dismiss(False)


class PromptScreen(ModalScreen[str | None]):
    """One line of input (a file path, a tail count)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="prompt_cancel")]

    def __init__(self, title: str, value: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield Input(value=self.value, id="prompt-input")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ProgressScreen(ModalScreen[None]):
    """Live progress of a long change (restart following the spawn event stream, an image pull)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter", "close", "Close", id="progress_close")]

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title_text = title
        self.lines: list[str] = []  # kept here too: lines may arrive before the dialog is mounted
        self.result: ActionResult | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="progress"):
            yield Label(self.title_text, id="dialog-title")
            yield from self.compose_above_log()
            yield RichLog(id="progress-log", wrap=True, markup=False, auto_scroll=True)
            yield Static("running…", id="progress-status")

    def compose_above_log(self) -> ComposeResult:
        """What a kind of progress shows above its lines (an image pull: a table of nodes)."""
        yield from ()

    def on_mount(self) -> None:
        log = self.query_one(RichLog)
        for line in self.lines:
            log.write(Text(line))
        if self.result is not None:
            self._show_result()

    def add_line(self, line: str) -> None:
        self.lines.append(line)
        if self.is_mounted:
            self.query_one(RichLog).write(Text(line))

    @property
    def finished(self) -> bool:
        return self.result is not None

    def finish(self, result: ActionResult) -> None:
        self.result = result
        if self.is_mounted:
            self._show_result()

    def _show_result(self) -> None:
        result = self.result
        assert result is not None
        style = "bold green" if result.ok else "bold red"
        verdict = "done" if result.ok else "failed"
        status = Text.assemble((f"{verdict}: ", style), result.detail, "   (Esc or Enter closes)")
        self.query_one("#progress-status", Static).update(status)

    def action_close(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    """`?`: the keys active on the screen underneath, generated from its bindings, plus the command line."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "close", "Close", id="help_close")]

    def __init__(self, rows: list[tuple[str, str, str]], commands: list[tuple[str, str]]) -> None:
        super().__init__()
        self.rows = rows
        self.commands = commands

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="help"):
            yield Label("Keys on this screen (remap by ID in the config's [keys] table)", id="dialog-title",
                        markup=False)
            yield DataTable(id="help-keys", cursor_type="row", zebra_stripes=True)
            yield Label("Command line (:)", id="help-commands-title")
            yield DataTable(id="help-commands", cursor_type="row")

    def on_mount(self) -> None:
        keys = self.query_one("#help-keys", DataTable)
        keys.add_columns("KEY", "ACTION", "ID")
        keys.add_rows([tuple(Text(cell) for cell in row) for row in self.rows])
        commands = self.query_one("#help-commands", DataTable)
        commands.add_columns("COMMAND", "WHAT")
        commands.add_rows([tuple(Text(cell) for cell in row) for row in self.commands])
        keys.focus()

    def action_close(self) -> None:
        self.dismiss(None)


class InspectScreen(ModalScreen[None]):
    """`docker service inspect` of one service, as the backend gives it: env values holding secrets redacted."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "close", "Close", id="inspect_close")]

    def __init__(self, service: str, inspect_json: str) -> None:
        super().__init__()
        self.service = service
        self.inspect_json = inspect_json

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="inspect"):
            yield Label(f"inspect {self.service} (secrets redacted; Esc closes)", id="dialog-title", markup=False)
            yield TextArea(self.inspect_json, read_only=True, show_line_numbers=True, id="inspect-text")

    def on_mount(self) -> None:
        self.query_one("#inspect-text", TextArea).focus()

    def action_close(self) -> None:
        self.dismiss(None)
