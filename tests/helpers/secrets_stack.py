"""Fixtures for the secrets tests: the fault stack (tests/helpers/fault_stack.py), shared with tests/faults when
both run in one session, and a notebook launched on it the XNAT way."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.helpers.fault_stack import FaultStack, fault_stack_fixture
from tests.helpers.live import xnat_launch

USER = "Alice.Smith"  # the demo cast's mixed-case XNAT user


@dataclass
class Notebook:
    user: str
    server: str
    service: str
    token: str  # XNAT's token for it, scoped access:servers!user=USER


@pytest.fixture(scope="session")
def secrets_stack() -> Iterator[FaultStack]:
    yield from fault_stack_fixture()


@pytest.fixture(scope="module")
def notebook(secrets_stack: FaultStack) -> Iterator[Notebook]:
    async def launch() -> Notebook:
        server, _body, _model = await xnat_launch(secrets_stack, USER)
        async with secrets_stack.plugin() as plugin:
            token = await plugin.create_token(USER)
        (service,) = secrets_stack.notebook_services(USER, server)
        return Notebook(USER, server, service["Spec"]["Name"], token)

    running = asyncio.run(launch())
    yield running

    async def stop() -> None:
        async with secrets_stack.plugin() as plugin:
            await plugin.stop_server(USER, running.server)
            await plugin.wait_gone(USER, running.server, timeout=60)

    asyncio.run(stop())
