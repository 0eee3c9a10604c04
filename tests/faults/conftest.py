"""Fixtures for the fault tests: `fault_stack`, the live stack of their own (tests/helpers/fault_stack.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.fault_stack import FaultStack, fault_stack_fixture


@pytest.fixture(scope="session")
def fault_stack() -> Iterator[FaultStack]:
    yield from fault_stack_fixture()
