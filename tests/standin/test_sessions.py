"""JSESSION lifecycle: Basic-authenticated requests open sessions as Tomcat does; DELETE ends them."""

from __future__ import annotations

import httpx
import pytest

from hub.standin.server import XnatStandin

ROLES = "/xapi/users/alice/roles"


@pytest.fixture
def alice(xnat_standin: XnatStandin) -> XnatStandin:
    xnat_standin.add_user("alice", "alice-pw", ["Jupyter"])
    xnat_standin.add_user("bob", "bob-pw", [])
    return xnat_standin


async def test_each_cookieless_basic_request_opens_a_session(alice):
    for _ in range(3):
        async with httpx.AsyncClient(base_url=alice.url) as client:  # a fresh cookie jar each time
            response = await client.get(ROLES, auth=("alice", "alice-pw"))
            assert "JSESSIONID" in response.cookies
    assert alice.open_sessions == 3
    assert alice.sessions_by_user() == {"alice": 3}


async def test_the_cookie_reuses_the_session_and_authenticates_alone(alice):
    async with httpx.AsyncClient(base_url=alice.url) as client:
        await client.get(ROLES, auth=("alice", "alice-pw"))
        again = await client.get(ROLES)  # cookie only
        assert again.status_code == 200 and "set-cookie" not in again.headers
    assert alice.open_sessions == 1


async def test_failed_authentication_opens_no_session(alice):
    async with httpx.AsyncClient(base_url=alice.url) as client:
        await client.get(ROLES, auth=("alice", "wrong"))
        await client.get(ROLES)
    assert alice.open_sessions == 0


async def test_delete_jsession_closes_the_session(alice):
    async with httpx.AsyncClient(base_url=alice.url) as client:
        sid = (await client.get(ROLES, auth=("alice", "alice-pw"))).cookies["JSESSIONID"]
        assert alice.open_sessions == 1
        response = await client.delete("/data/JSESSION")
        assert response.status_code == 200
        assert alice.open_sessions == 0
    # The session is gone: its id no longer authenticates.
    async with httpx.AsyncClient(base_url=alice.url, cookies={"JSESSIONID": sid}) as client:
        assert (await client.get(ROLES)).status_code == 401


async def test_stale_cookie_with_basic_opens_a_new_session(alice):
    async with httpx.AsyncClient(base_url=alice.url) as client:
        client.cookies.set("JSESSIONID", "0" * 32)
        response = await client.get(ROLES, auth=("alice", "alice-pw"))
        assert response.status_code == 200 and response.cookies["JSESSIONID"] != "0" * 32
    assert alice.open_sessions == 1


async def test_post_jsession_returns_the_session_id(alice):
    async with httpx.AsyncClient(base_url=alice.url) as client:
        created = await client.post("/data/JSESSION", auth=("alice", "alice-pw"))
        assert created.status_code == 200
        assert created.text == created.cookies["JSESSIONID"]
        assert len(created.text) == 32
        assert (await client.get("/data/JSESSION")).text == created.text
    assert alice.open_sessions == 1


async def test_delete_jsession_with_basic_only_nets_zero(alice):
    async with httpx.AsyncClient(base_url=alice.url) as client:
        assert (await client.delete("/data/JSESSION", auth=("alice", "alice-pw"))).status_code == 200
        assert (await client.delete("/data/JSESSION")).status_code == 401
    assert alice.open_sessions == 0


async def test_removing_a_user_ends_their_sessions(alice):
    async with httpx.AsyncClient(base_url=alice.url) as client:
        await client.get(ROLES, auth=("alice", "alice-pw"))
        await client.get("/xapi/jupyterhub/preferences", auth=("bob", "bob-pw"))
    alice.remove_user("alice")
    assert alice.sessions_by_user() == {"bob": 1}


async def test_a_shared_cookie_jar_lets_a_wrong_password_through_as_in_spring(alice):
    # Why the hub must not keep XNAT cookies between logins: the session of the same user wins over the password.
    async with httpx.AsyncClient(base_url=alice.url) as client:
        await client.get(ROLES, auth=("alice", "alice-pw"))
        assert (await client.get(ROLES, auth=("alice", "wrong"))).status_code == 200
    async with httpx.AsyncClient(base_url=alice.url) as fresh:
        assert (await fresh.get(ROLES, auth=("alice", "wrong"))).status_code == 401


async def test_basic_credentials_of_another_user_replace_the_session(alice):
    async with httpx.AsyncClient(base_url=alice.url) as client:
        await client.get(ROLES, auth=("alice", "alice-pw"))
        as_bob = await client.get("/xapi/users/bob/roles", auth=("bob", "bob-pw"))
        assert as_bob.status_code == 200
        assert (await client.get("/xapi/users/bob/roles", auth=("bob", "wrong"))).status_code == 200
        assert (await client.get(ROLES, auth=("alice", "wrong"))).status_code == 401
    assert alice.sessions_by_user() == {"bob": 1}
