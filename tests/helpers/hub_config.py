"""hub/jupyterhub_config.py as the config tests load it: its path and a plain machine's environment."""

from __future__ import annotations

import os
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / "hub" / "jupyterhub_config.py"


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A plain machine's environment: PATH and HOME, plus only the hub variables given."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    env.update(JH_XNAT_URL="http://127.0.0.1:9", JH_DATA_DIR=str(tmp_path / "data"))
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}
