"""Fixtures shared by every test area. Area-specific fixtures live in each subfolder's conftest.py."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import NamedTuple

import pytest

from hub.standin.server import SERVICE_ROLE, XnatStandin


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
