"""Fixtures for the fault tests: `fault_stack`, the live stack of their own (tests/faults/stack.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from live_fault_stack import FaultStack, fault_stack_fixture


@pytest.fixture(scope="session")
def fault_stack() -> Iterator[FaultStack]:
    yield from fault_stack_fixture()
