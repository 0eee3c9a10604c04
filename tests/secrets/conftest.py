"""The secrets tests' fixtures live in secrets_fixtures.py (importable by name, unlike a conftest)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from secrets_fixtures import notebook, secrets_stack  # noqa: F401
