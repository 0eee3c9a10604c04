"""One registry of screens and commands drives the `:` line; one formatting module writes a server row for the
TUI and the CLI alike."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from console import registry
from console.backend.fake import FakeBackend
from console.cli import cmd_servers
from console.config import ConsoleConfig
from console.formatting import SERVER_COLUMNS, age, server_cells, size
from console.screens.base import COMMAND_WORDS


async def test_every_word_of_the_registry_opens_its_screen(make_app, wait_for):
    app = make_app()
    async with app.run_test(size=(160, 45)) as pilot:
        for entry in registry.SCREENS:
            for word in entry.words:
                app.run_command_line("overview")
                await pilot.pause()
                app.run_command_line(word)
                await wait_for(pilot, lambda entry=entry: app.current_mode == entry.mode, f":{word}")


def test_the_command_line_suggests_what_the_registry_holds():
    assert registry.command_words() == COMMAND_WORDS
    assert {e.mode for e in registry.SCREENS} | {e.name for e in registry.COMMANDS} <= set(COMMAND_WORDS)
    helped = " ".join(words for words, _ in registry.command_help())
    assert all(f":{word}" in helped for entry in registry.SCREENS for word in entry.words)


def test_ages_and_sizes_are_written_one_way():
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert age(datetime(2026, 1, 1, 10, 48, tzinfo=UTC), now) == "1h12m"
    assert size(int(1.5 * 2**30)) == "1.5GiB"


async def test_the_cli_writes_a_server_row_as_the_tui_does(capsys):
    backend = FakeBackend()
    args = argparse.Namespace(all=False, no_stats=True, json=False)
    await cmd_servers(backend, ConsoleConfig(token="t"), args)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [word for _, title in SERVER_COLUMNS for word in title.split()]
    now = datetime.now(UTC)
    for row in await backend.hub_servers():
        line = next(line for line in lines[1:] if line.split()[:2] == [row.user, row.server or "(default)"])
        expected = [c.text for c in server_cells(row, now)]
        assert line.split() == [word for text in expected for word in text.split()], row.key
