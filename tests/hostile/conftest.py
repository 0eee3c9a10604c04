"""Hostile-input tests reuse the hub helpers' generators and fixtures (tests/hub) rather than copying them."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))
