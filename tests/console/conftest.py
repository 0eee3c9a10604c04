"""Fixtures for the console's tests: the in-memory FakeBackend and an app on it with fast, chained refreshes; and,
for every test here, a home of its own, so no test reads or writes the operator's console config, state, audit
log or recorded stack variables (a demo may be up on the same machine)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from console.app import XnatConsoleApp
from console.backend.fake import FakeBackend
from console.config import ConsoleConfig

# The operator's settings that would reach a test through the environment.
OPERATOR_VARIABLES = (
    "JH_CONSOLE_CONFIG", "JH_CONSOLE_TOKEN", "JH_CONSOLE_TOKEN_FILE", "JH_CONSOLE_READ_ONLY", "JH_CONSOLE_CA_BUNDLE",
    "JH_HUB_API_URL", "JH_XNAT_URL", "JH_XNAT_USERNAME", "JH_XNAT_PASSWORD", "JH_XNAT_PASSWORD_FILE",
    "JH_STACK_NAME", "JH_STACK_FILE", "DOCKER_CONTEXT",
)  # fmt: skip


@pytest.fixture(autouse=True)
def own_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("JH_STACK_ENV_FILE", str(home / "no-stack.env"))
    for name in OPERATOR_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return home



@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def make_app(fake: FakeBackend, tmp_path) -> Callable[..., XnatConsoleApp]:
    """An app on the fake, refreshing fast so recovery and event-driven refreshes show up in a test's time."""

    def make(backend: FakeBackend | None = None, **config) -> XnatConsoleApp:
        backend = backend or fake
        settings = {
            "refresh_interval": 0.2,
            "events_interval": 0.1,
            "xnat_interval": 0.3,
            "save_dir": str(tmp_path),
            **config,
        }
        return XnatConsoleApp(backend, ConsoleConfig(**settings), clock=backend.clock)

    return make


async def _wait_for(pilot, condition: Callable[[], object], what: str, timeout: float = 5.0) -> None:
    """Poll `condition` (the UI's state) until it holds, letting the app run in between."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for: {what}")
        await pilot.pause(0.05)


@pytest.fixture
def wait_for():
    return _wait_for
