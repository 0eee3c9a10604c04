"""The XNAT endpoints over real HTTP: shapes, auth rules, case sensitivity, URL decoding."""

from __future__ import annotations

from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import quote

import httpx
import pytest

from hub.standin.options import user_options
from hub.standin.server import DEFAULT_PREFERENCES, NOT_FOUND_OPTIONS, XnatStandin

ROLES = "/xapi/users/{}/roles"
OPTIONS = "/xapi/jupyterhub/users/{}/server/{}/user-options"
DEFAULT_OPTIONS = "/xapi/jupyterhub/users/{}/server/user-options"


@pytest.fixture
async def xnat(xnat_standin: XnatStandin):
    xnat_standin.add_user("alice", "alice-pw", ["Jupyter"])
    xnat_standin.add_user("Alice.Smith", "smith-pw", ["Jupyter", "Other"])
    xnat_standin.add_user("bob", "bob-pw", [])
    xnat_standin.add_user("admin", "admin-pw", ["Administrator"])
    xnat_standin.add_user("jupyterhub", "svc-pw", ["JupyterHub"])
    # No cookie jar: each request authenticates on its own (sessions are tested in test_sessions.py).
    no_cookies = CookieJar(DefaultCookiePolicy(allowed_domains=[]))
    async with httpx.AsyncClient(base_url=xnat_standin.url, cookies=no_cookies) as client:
        yield xnat_standin, client


async def test_roles_returns_the_users_role_names(xnat):
    _, client = xnat
    response = await client.get(ROLES.format("Alice.Smith"), auth=("Alice.Smith", "smith-pw"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == ["Jupyter", "Other"]


async def test_roles_refuses_bad_and_missing_credentials_with_401(xnat):
    _, client = xnat
    wrong = await client.get(ROLES.format("alice"), auth=("alice", "nope"))
    missing = await client.get(ROLES.format("alice"))
    unknown = await client.get(ROLES.format("carol"), auth=("carol", "x"))
    assert [wrong.status_code, missing.status_code, unknown.status_code] == [401, 401, 401]
    assert wrong.headers["www-authenticate"] == 'Basic realm="XNAT"'


async def test_disabled_account_cannot_authenticate(xnat):
    standin, client = xnat
    standin.add_user("dora", "dora-pw", ["Jupyter"], enabled=False)
    assert (await client.get(ROLES.format("dora"), auth=("dora", "dora-pw"))).status_code == 401


async def test_roles_of_someone_else_is_403_unless_admin(xnat):
    _, client = xnat
    as_bob = await client.get(ROLES.format("alice"), auth=("bob", "bob-pw"))
    as_admin = await client.get(ROLES.format("alice"), auth=("admin", "admin-pw"))
    assert as_bob.status_code == 403
    assert as_admin.status_code == 200 and as_admin.json() == ["Jupyter"]
    assert (await client.get(ROLES.format("ghost"), auth=("admin", "admin-pw"))).status_code == 404


async def test_usernames_are_case_sensitive(xnat):
    _, client = xnat
    # alice.smith is not Alice.Smith: her password does not work under the lower-cased name.
    assert (await client.get(ROLES.format("alice.smith"), auth=("alice.smith", "smith-pw"))).status_code == 401
    # Authenticated as Alice.Smith, the lower-cased path names somebody else.
    assert (await client.get(ROLES.format("alice.smith"), auth=("Alice.Smith", "smith-pw"))).status_code == 403
    assert (await client.get(ROLES.format("ALICE"), auth=("alice", "alice-pw"))).status_code == 403


async def test_usernames_in_paths_are_url_decoded(xnat):
    standin, client = xnat
    standin.add_user("o'brien+x@site", "pw", ["Jupyter"])
    standin.add_user("zoë ünïcode", "pw2", ["Jupyter"])
    for name, password in (("o'brien+x@site", "pw"), ("zoë ünïcode", "pw2")):
        response = await client.get(ROLES.format(quote(name, safe="")), auth=(name, password))
        assert response.status_code == 200, name
    # `+` in a path is a plus, not a space.
    assert (await client.get(ROLES.format("o'brien x@site"), auth=("o'brien+x@site", "pw"))).status_code == 403


async def test_encoded_slash_in_path_is_refused_like_tomcat(xnat):
    _, client = xnat
    response = await client.get("/xapi/users/a%2Fb/roles", auth=("admin", "admin-pw"))
    assert response.status_code == 400


async def test_all_users_can_start_preference_for_any_authenticated_user(xnat):
    standin, client = xnat
    url = "/xapi/jupyterhub/preferences/allUsersCanStartJupyter"
    assert (await client.get(url, auth=("bob", "bob-pw"))).json() == {"allUsersCanStartJupyter": False}
    standin.set_preferences({"allUsersCanStartJupyter": True})
    assert (await client.get(url, auth=("bob", "bob-pw"))).json() == {"allUsersCanStartJupyter": True}
    assert (await client.get(url)).status_code == 401
    assert (await client.get(url, auth=("bob", "wrong"))).status_code == 401


async def test_unknown_preference_is_404_and_the_token_needs_privilege(xnat):
    _, client = xnat
    base = "/xapi/jupyterhub/preferences/"
    assert (await client.get(base + "noSuchPref", auth=("bob", "bob-pw"))).status_code == 404
    assert (await client.get(base + "jupyterHubToken", auth=("bob", "bob-pw"))).status_code == 403
    privileged = await client.get(base + "jupyterHubToken", auth=("jupyterhub", "svc-pw"))
    assert privileged.json() == {"jupyterHubToken": DEFAULT_PREFERENCES["jupyterHubToken"]}


async def test_preferences_map_is_full_only_for_privileged_callers(xnat):
    _, client = xnat
    url = "/xapi/jupyterhub/preferences"
    assert (await client.get(url, auth=("admin", "admin-pw"))).json() == DEFAULT_PREFERENCES
    assert (await client.get(url, auth=("jupyterhub", "svc-pw"))).json() == DEFAULT_PREFERENCES
    assert (await client.get(url, auth=("bob", "bob-pw"))).json() == {"allUsersCanStartJupyter": False}


async def test_user_options_named_and_default_server(xnat):
    standin, client = xnat
    named = user_options("Alice.Smith", "20240615T101530123Z", image="img:named")
    default = user_options("Alice.Smith", "", image="img:default")
    standin.set_user_options("Alice.Smith", "20240615T101530123Z", named)
    standin.set_user_options("Alice.Smith", "", default)
    svc = ("jupyterhub", "svc-pw")
    got_named = await client.get(OPTIONS.format("Alice.Smith", "20240615T101530123Z"), auth=svc)
    got_default = await client.get(DEFAULT_OPTIONS.format("Alice.Smith"), auth=svc)
    assert got_named.status_code == 200 and got_named.json() == named
    assert got_default.status_code == 200 and got_default.json() == default
    # An administrator may read them too.
    assert (await client.get(DEFAULT_OPTIONS.format("Alice.Smith"), auth=("admin", "admin-pw"))).json() == default


async def test_user_options_need_the_service_role(xnat):
    standin, client = xnat
    standin.set_user_options("alice", "s1", user_options("alice", "s1"))
    # Even the owner, holding only `Jupyter`, may not read them.
    assert (await client.get(OPTIONS.format("alice", "s1"), auth=("alice", "alice-pw"))).status_code == 403
    assert (await client.get(OPTIONS.format("alice", "s1"))).status_code == 401
    assert (await client.get(OPTIONS.format("alice", "s1"), auth=("jupyterhub", "bad"))).status_code == 401


async def test_user_options_missing_is_404_with_xnats_text(xnat):
    standin, client = xnat
    standin.set_user_options("Alice.Smith", "s1", user_options("Alice.Smith", "s1"))
    svc = ("jupyterhub", "svc-pw")
    for path in (OPTIONS.format("Alice.Smith", "other"), OPTIONS.format("alice.smith", "s1"),
                 DEFAULT_OPTIONS.format("Alice.Smith")):
        response = await client.get(path, auth=svc)
        assert (response.status_code, response.text) == (404, NOT_FOUND_OPTIONS), path


async def test_double_slash_default_server_path_is_not_found(xnat):
    standin, client = xnat
    standin.set_user_options("alice", "", user_options("alice", ""))
    response = await client.get("/xapi/jupyterhub/users/alice/server//user-options", auth=("jupyterhub", "svc-pw"))
    assert response.status_code == 404
    assert standin.requests[-1]["path"] == "/xapi/jupyterhub/users/alice/server//user-options"


async def test_request_log_has_method_path_user_but_no_secrets(xnat):
    standin, client = xnat
    await client.get(ROLES.format("alice") + "?token=abc", auth=("alice", "alice-pw"))
    await client.get(ROLES.format("alice"), auth=("alice", "wrong-pw"))
    first, second = standin.requests[-2:]
    assert first == {"method": "GET", "path": "/xapi/users/alice/roles", "user": "alice", "authenticated": True,
                     "status": 200, "seconds": first["seconds"]}
    assert (second["user"], second["authenticated"], second["status"]) == ("alice", False, 401)
    flat = repr(standin.requests)
    assert "alice-pw" not in flat and "wrong-pw" not in flat and "abc" not in flat
    assert standin.requests_to("/xapi/users/*/roles") == [first, second]


async def test_request_log_keeps_only_the_most_recent_entries(xnat, monkeypatch):
    standin, client = xnat
    monkeypatch.setattr("hub.standin.server.MAX_LOGGED_REQUESTS", 3)
    for name in ("a", "b", "c", "d", "e"):
        await client.get(ROLES.format(name))
    assert [r["path"] for r in standin.requests] == [ROLES.format(n) for n in ("c", "d", "e")]
