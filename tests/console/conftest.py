"""Fixtures for the console's UI tests: the in-memory FakeBackend and an app on it with fast, chained refreshes."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from console.app import XnatConsoleApp
from console.backend.fake import FakeBackend


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
        return XnatConsoleApp(backend, settings, clock=backend.clock)

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
