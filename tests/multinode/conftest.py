"""The multi-node tests: every test here is marked `multinode`; their cluster is tests/helpers/cluster.py's."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/multinode/" in str(item.fspath):
            item.add_marker(pytest.mark.multinode)
