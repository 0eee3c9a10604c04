"""The two-node tests' fixtures live in node2_fixtures.py, so other test areas can import them too."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from node2_fixtures import manager_api, node2, node2_network, node2_services, xnat  # noqa: F401
