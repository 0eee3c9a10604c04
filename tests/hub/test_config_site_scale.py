"""The site-scale knobs of hub/jupyterhub_config.py (docs/hub-config.md, "XNAT's plugin at site scale"), loaded
exactly as JupyterHub loads the file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers.hub_config import CONFIG, base_env

LOADER = """
import json, sys
from jupyterhub.app import JupyterHub
app = JupyterHub()
app.load_config_file(sys.argv[1])
print(json.dumps({"api_page_max_limit": app.api_page_max_limit, "api_page_default_limit": app.api_page_default_limit,
                  "concurrent_spawn_limit": app.concurrent_spawn_limit,
                  "token_expires_in_max_seconds": app.token_expires_in_max_seconds}))
"""


def load(tmp_path, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", LOADER, str(CONFIG)], env=base_env(tmp_path, **settings),
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)


def test_defaults_fit_a_site_and_a_class(tmp_path):
    result = load(tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "api_page_max_limit": 10000,  # XNAT's unpaginated GET /users: every user, not JupyterHub's 200
        "api_page_default_limit": 50,  # paginated clients keep their pages
        "concurrent_spawn_limit": 100,  # above a class; a 429 is a failed launch for XNAT
        "token_expires_in_max_seconds": 0,  # XNAT asks for 2-day tokens
    }


def test_knobs_are_read_from_the_environment(tmp_path):
    result = load(tmp_path, JH_API_PAGE_MAX_LIMIT="50000", JH_CONCURRENT_SPAWN_LIMIT="0")
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["api_page_max_limit"] == 50000 and values["concurrent_spawn_limit"] == 0


@pytest.mark.parametrize("settings, message", [
    ({"JH_API_PAGE_MAX_LIMIT": "199"}, "JH_API_PAGE_MAX_LIMIT must be a whole number of at least 200, got 199"),
    ({"JH_API_PAGE_MAX_LIMIT": "lots"}, "JH_API_PAGE_MAX_LIMIT must be a whole number, got 'lots'"),
    ({"JH_CONCURRENT_SPAWN_LIMIT": "-1"}, "JH_CONCURRENT_SPAWN_LIMIT must be a whole number of at least 0, got -1"),
])
def test_bad_values_stop_the_hub_with_one_clear_line(tmp_path, settings, message):
    result = load(tmp_path, **settings)
    assert result.returncode == 1
    assert f"[E jupyterhub_config] {message}" in result.stderr
    assert "Traceback" not in result.stderr
