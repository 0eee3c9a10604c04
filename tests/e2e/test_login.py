"""Logging in through the hub's real /hub/login form (XSRF cookie + form), with the project's authenticator asking
the XNAT stand-in, over the stack's overlay network, exactly as it would ask XNAT."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers.live import E2E_TIMEOUT, LiveStack, login

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(E2E_TIMEOUT)]


def test_login_page_is_xnats(live_stack: LiveStack):
    page = httpx.get(f"{live_stack.hub_url}/hub/login", timeout=30)
    assert page.status_code == 200
    assert "Sign in with your XNAT username and password." in page.text


def test_login_success_lands_logged_in(live_stack: LiveStack):
    with login(live_stack.hub_url, "alice", "alice-password") as (answer, client):
        assert answer.status_code == 302, answer.text[:300]
        assert "jupyterhub-hub-login" in client.cookies
        home = client.get("/hub/home")
        assert home.status_code == 200
        assert "alice" in home.text


def test_wrong_password_gets_login_page_with_message(live_stack: LiveStack):
    with login(live_stack.hub_url, "alice", "not-her-password") as (answer, client):
        assert answer.status_code == 403
        assert "Invalid username or password." in answer.text
        assert 'name="password"' in answer.text  # the login page again
        assert "jupyterhub-hub-login" not in client.cookies


def test_user_without_jupyter_role_gets_message(live_stack: LiveStack):
    with login(live_stack.hub_url, "bob", "bob-password") as (answer, client):
        assert answer.status_code == 403
        assert "does not have the Jupyter role" in answer.text
        assert 'name="password"' in answer.text
        assert "jupyterhub-hub-login" not in client.cookies


async def test_mixed_case_user_keeps_its_case(live_stack: LiveStack):
    with login(live_stack.hub_url, "Alice.Smith", "smith-password") as (answer, client):
        assert answer.status_code == 302, answer.text[:300]
        assert "Alice.Smith" in client.get("/hub/home").text
    async with live_stack.plugin() as plugin:
        assert (await plugin.get_user("Alice.Smith")) is not None
        assert (await plugin.get_user("alice.smith")) is None
