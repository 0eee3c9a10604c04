"""The one table of the console's screens and `:` commands. The app's modes, the number keys, the `:` aliases,
the `?` help's command list, the palette's "Go to" commands and the command line's suggestions are all made
from it, so a screen is added, renamed or documented in one place (as posting and harlequin keep theirs).

Screens are named by import path and loaded when first shown, so this module imports no screen (the screens
import it for the suggestions).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.screen import Screen


@dataclass(frozen=True)
class ScreenEntry:
    mode: str  # the app mode, and the first `:` word
    key: str  # the number key that switches to it
    title: str  # what the palette and the help call it
    help: str
    aliases: tuple[str, ...] = ()  # more `:` words k9s users would try
    screen: str = ""  # "module:Class"
    usage: str = ""  # arguments after the `:` word, e.g. "[hub|USER[/SERVER]|SERVICE]"

    @property
    def words(self) -> tuple[str, ...]:
        return (self.mode, *self.aliases)

    def screen_class(self) -> type[Screen]:
        module, _, name = self.screen.partition(":")
        cls: type[Screen] = getattr(import_module(module), name)
        return cls


@dataclass(frozen=True)
class CommandEntry:
    """A `:` command that is not a screen of its own."""

    name: str  # what XnatConsoleApp.run_command_line dispatches on
    help: str
    aliases: tuple[str, ...] = ()
    usage: str = ""

    @property
    def words(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


SCREENS: tuple[ScreenEntry, ...] = (
    ScreenEntry("overview", "1", "Overview", "health, counts and recent Docker events",
                ("ov", "home", "status", "pulse"), "console.screens.overview:OverviewScreen"),
    ScreenEntry("servers", "2", "Servers", "one row per hub server, joined with its swarm service",
                ("server", "srv", "users", "user"), "console.screens.servers:ServersScreen"),
    ScreenEntry("services", "3", "Services", "stack and notebook services; Enter drills into tasks",
                ("service", "svc"), "console.screens.services:ServicesScreen"),
    ScreenEntry("nodes", "4", "Nodes", "swarm nodes", ("node", "no"), "console.screens.services:NodesScreen"),
    ScreenEntry("logs", "5", "Logs", "service logs", ("log",), "console.screens.logs:LogsScreen",
                "[hub|USER[/SERVER]|SERVICE]"),
    ScreenEntry("xnat", "6", "XNAT check", "XNAT connectivity check, step by step", ("check",),
                "console.screens.xnat:XnatScreen"),
    ScreenEntry("deploy", "7", "Deploy / Stop", "deploy the stack, or stop it (name typed to confirm)", ("stack",),
                "console.screens.deploy:DeployScreen"),
)  # fmt: skip

COMMANDS: tuple[CommandEntry, ...] = (
    CommandEntry("tasks", "the tasks of one service", ("task",), "SERVICE"),
    CommandEntry("stop", "stop the stack (name typed to confirm)"),
    CommandEntry("images", "pull notebook images onto every node that may run notebooks (none named: those "
                 "running now)", ("pull",), "[IMAGE...]"),
    CommandEntry("sort", "sort the table, - for descending", (), "[-]COLUMN"),
    CommandEntry("theme", "switch theme", (), "NAME"),
    CommandEntry("help", "this help", ("h", "?")),
    CommandEntry("quit", "quit (also q, or ctrl+q, on any screen)", ("q", "q!", "exit")),
)

DEFAULT_MODE = SCREENS[0].mode


def screen_for_word(word: str) -> ScreenEntry | None:
    """The screen a `:` word names, or None."""
    return next((entry for entry in SCREENS if word in entry.words), None)


def command_for_word(word: str) -> CommandEntry | None:
    return next((entry for entry in COMMANDS if word in entry.words), None)


def command_help() -> list[tuple[str, str]]:
    """The `?` help's command list: every word of each entry, then what it does."""
    rows = []
    entries: tuple[ScreenEntry | CommandEntry, ...] = (*SCREENS, *COMMANDS)
    for entry in entries:
        words = "  ".join(f":{w}" for w in entry.words if w not in ("q!", "?"))
        rows.append((f"{words} {entry.usage}".rstrip(), entry.help))
    return rows


def command_words() -> list[str]:
    """What the `:` line suggests: every screen's and command's name (with `logs hub`, the common case)."""
    words = [entry.mode for entry in SCREENS] + ["logs hub"] + [entry.name for entry in COMMANDS]
    return list(dict.fromkeys(words))
