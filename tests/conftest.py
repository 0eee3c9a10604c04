"""Fixtures shared by every test area, and the session's isolation from the operator's own files.

Area-specific fixtures live in each subfolder's conftest.py; fixtures that several areas or bench/ use live in
tests/helpers/ and are registered here as plugins, so a test asks for them by name and never imports them.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NamedTuple

import pytest

from hub.standin.server import SERVICE_ROLE, XnatStandin

pytest_plugins = (
    "tests.helpers.spawner",
    "tests.helpers.real_hub",
    "tests.helpers.console_backend",
    "tests.helpers.node2",
    "tests.helpers.secrets_stack",
    "tests.helpers.cluster",
)


def _isolate_from_the_operator() -> None:
    """HOME and the XDG directories of this session: a fresh directory, so that no test (and no console or
    `scripts/demo.sh` that a test starts) reads or writes the operator's console config, state, secrets or audit
    log, even with `scripts/demo.sh up` running beside the tests. Docker's own client config stays the
    operator's: it only says which engine to use."""
    home = Path(tempfile.mkdtemp(prefix="xjh-tests-home-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    os.environ.setdefault("DOCKER_CONFIG", str(Path.home() / ".docker"))
    os.environ["HOME"] = str(home)
    for name, sub in (("XDG_CONFIG_HOME", ".config"), ("XDG_STATE_HOME", ".local/state"),
                      ("XDG_DATA_HOME", ".local/share"), ("XDG_CACHE_HOME", ".cache")):
        os.environ[name] = str(home / sub)


_isolate_from_the_operator()


class Account(NamedTuple):
    name: str
    password: str


@pytest.fixture
async def xnat_standin() -> AsyncIterator[XnatStandin]:
    """A running XNAT stand-in on loopback with ephemeral ports (`.url`, `.control_url`); no users yet."""
    standin = XnatStandin()
    await standin.start(host="127.0.0.1", port=0, control_port=0)
    try:
        yield standin
    finally:
        await standin.stop()


@pytest.fixture
def xnat_service_account(xnat_standin: XnatStandin) -> Account:
    """The hub's XNAT service account (`jupyterhub`, role JupyterHub) with a fresh random password."""
    account = Account("jupyterhub", secrets.token_urlsafe(16))
    xnat_standin.add_user(account.name, account.password, [SERVICE_ROLE])
    return account
