"""The console's key map: every binding an operator may remap (a config's `[keys]` table), and the Markdown table
of them that docs/console.md holds (a test keeps the two in step). Read from the bindings themselves."""

from __future__ import annotations

from textual.binding import Binding
from textual.keys import key_to_character


def _shown_key(key: str) -> str:
    """`colon` -> `:`; keys without a character (ctrl+r, escape) stay as they are."""
    character = {"slash": "/", "ampersand": "&"}.get(key) or key_to_character(key)
    return character if character and character.isprintable() and character != " " else key


def _binding_sources() -> list[tuple[str, type]]:
    from console.app import XnatConsoleApp
    from console.screens import dialogs
    from console.screens.base import ConsoleScreen, TableScreen
    from console.screens.deploy import DeployScreen
    from console.screens.logs import LogsScreen
    from console.screens.servers import ServersScreen
    from console.screens.services import NodesScreen, ServicesScreen, TasksScreen
    from console.screens.xnat import XnatScreen
    from console.widgets.log_view import LogView
    from console.widgets.resource_table import ResourceTable

    return [
        ("everywhere", XnatConsoleApp),
        ("every screen", ConsoleScreen),
        ("every table", ResourceTable),
        ("servers", ServersScreen),
        ("services", ServicesScreen),
        ("tasks", TasksScreen),
        ("nodes", NodesScreen),
        ("logs", LogsScreen),
        ("xnat check", XnatScreen),
        ("deploy / stop", DeployScreen),
        ("tables with a filter", TableScreen),
        ("dialogs", dialogs.ConfirmScreen),
        ("dialogs", dialogs.TypedConfirmScreen),
        ("dialogs", dialogs.ProgressScreen),
        ("dialogs", dialogs.HelpScreen),
        ("dialogs", dialogs.PromptScreen),
        ("log view", LogView),
    ]


def known_binding_ids() -> set[str]:
    """Every binding id a config's [keys] table may remap."""
    return {
        binding.id
        for _, cls in _binding_sources()
        for binding in cls.__dict__.get("BINDINGS", [])
        if isinstance(binding, Binding) and binding.id
    }


def key_reference() -> str:
    """The key map as a Markdown table, generated from the bindings (docs/console.md holds a copy; a test
    keeps the two in step)."""
    lines = ["| Where | Key | Action | ID (for `[keys]`) |", "|---|---|---|---|"]
    for where, cls in _binding_sources():
        for binding in cls.__dict__.get("BINDINGS", []):
            if isinstance(binding, Binding) and binding.id:
                keys = ", ".join(f"`{_shown_key(k.strip())}`" for k in binding.key.split(","))
                lines.append(f"| {where} | {keys} | {binding.description} | `{binding.id}` |")
    return "\n".join(lines)
