"""Fixtures for the secrets tests: the fault stack (tests/helpers/fault_stack.py), shared with tests/faults when
both run in one session, and a notebook launched on it the XNAT way."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.helpers.fault_stack import FaultStack, fault_stack_fixture
from tests.helpers.live import launched_notebook

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
    with launched_notebook(secrets_stack, USER) as (server, token):
        (service,) = secrets_stack.notebook_services(USER, server)
        yield Notebook(USER, server, service["Spec"]["Name"], token)
