"""XnatAuthenticator against the XNAT stand-in over real HTTP: every branch of the login."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from tornado import web

from hub.auth import VERDICT, WRONG_CREDENTIALS, XnatAuthenticator
from hub.standin.server import XnatStandin
from hub.xnat import XnatClient

pytestmark = pytest.mark.usefixtures("clean_env")

PASSWORD = "s3cret-Pa55word!"
ROLES_PATH = "/xapi/users/*/roles"
SWITCH_PATH = "/xapi/jupyterhub/preferences/allUsersCanStartJupyter"


async def login(authenticator: XnatAuthenticator, username: object, password: object = PASSWORD):
    return await authenticator.get_authenticated_user(None, {"username": username, "password": password})


async def refused(authenticator: XnatAuthenticator, username: object, password: object = PASSWORD) -> web.HTTPError:
    with pytest.raises(web.HTTPError) as info:
        await login(authenticator, username, password)
    return info.value


def shown(error: web.HTTPError) -> str:
    """What the login page shows for this error (BaseHandler.write_error reads `jupyterhub_message`)."""
    return error.jupyterhub_message  # type: ignore[attr-defined]


def problems(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def assert_one_clean_line(caplog: pytest.LogCaptureFixture, password: str = PASSWORD) -> str:
    """Exactly one warning-or-worse line; no record at any level holds the password."""
    lines = problems(caplog)
    assert len(lines) == 1, [r.getMessage() for r in lines]
    for record in caplog.records:
        assert password not in record.getMessage()
    return lines[0].getMessage()


# -- who gets in ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["Jupyter", "jupyter", "JUPYTER", "jUpYtEr"])
async def test_jupyter_role_admits_case_insensitively(authenticator, xnat_standin: XnatStandin, role):
    xnat_standin.add_user("Alice.Smith", PASSWORD, ["Administrator", role])
    model = await login(authenticator, "Alice.Smith")
    assert model["name"] == "Alice.Smith"
    assert model[VERDICT] is True
    # the role was enough: the site switch was not asked
    assert [r["path"] for r in xnat_standin.requests if r["method"] == "GET"] == ["/xapi/users/Alice.Smith/roles"]


@pytest.mark.parametrize("roles", [[], ["Jupyter-admin"], ["NotJupyter"], ["Administrator"], ["JupyterHub"]])
async def test_without_role_and_switch_off_refused_with_reason(authenticator, xnat_standin, caplog, roles):
    xnat_standin.add_user("Bob", PASSWORD, roles)
    error = await refused(authenticator, "Bob")
    assert error.status_code == 403
    assert shown(error) == "Your XNAT account does not have the Jupyter role. Ask your XNAT administrator for it."
    line = assert_one_clean_line(caplog)
    assert "'Bob'" in line and "allUsersCanStartJupyter is off" in line
    assert xnat_standin.requests_to(SWITCH_PATH), "the site switch must be asked before refusing"


async def test_site_switch_on_admits_without_role(authenticator, xnat_standin):
    xnat_standin.add_user("Carol", PASSWORD, [])
    xnat_standin.set_preferences({"allUsersCanStartJupyter": True})
    model = await login(authenticator, "Carol")
    assert model["name"] == "Carol" and model[VERDICT] is True


async def test_username_case_is_kept_from_login_to_xnat(authenticator, xnat_standin):
    xnat_standin.add_user("Alice.Smith", PASSWORD, ["Jupyter"])
    model = await login(authenticator, "Alice.Smith")
    assert model["name"] == "Alice.Smith"
    assert xnat_standin.requests_to("/xapi/users/Alice.Smith/roles")
    # XNAT names are case-sensitive: another case is another (unknown) account
    error = await refused(authenticator, "alice.smith")
    assert shown(error) == WRONG_CREDENTIALS


async def test_username_map_still_applies(authenticator, xnat_standin):
    xnat_standin.add_user("Alice.Smith", PASSWORD, ["Jupyter"])
    authenticator.username_map = {"Alice.Smith": "asmith"}
    assert (await login(authenticator, "Alice.Smith"))["name"] == "asmith"
    assert authenticator.normalize_username("Dave.Jones") == "Dave.Jones"


def test_check_allowed_without_authentication_does_not_crash(xnat_client):
    authenticator = XnatAuthenticator(xnat=xnat_client)
    assert authenticator.check_allowed("Alice.Smith", None) is False
    assert authenticator.check_allowed("Alice.Smith") is False
    authenticator.allowed_users = {"Alice.Smith"}
    assert authenticator.check_allowed("Alice.Smith", None) is True
    assert XnatAuthenticator(xnat=xnat_client, allow_all=True).check_allowed("x", None) is True


def test_xnat_approval_is_allow_config(xnat_client):
    """JupyterHub 5 warns "No allow config found" unless some allow config is on; XNAT's approval is ours."""
    assert XnatAuthenticator(xnat=xnat_client).any_allow_config is True
    assert XnatAuthenticator(xnat=xnat_client).allow_all is False


async def test_allow_xnat_approved_off_falls_back_to_allowed_users(authenticator, xnat_standin):
    xnat_standin.add_user("Alice.Smith", PASSWORD, ["Jupyter"])
    xnat_standin.add_user("Eve", PASSWORD, [])
    authenticator.allow_xnat_approved = False
    authenticator.allowed_users = {"Eve"}
    assert (await login(authenticator, "Eve"))["name"] == "Eve"
    error = await refused(authenticator, "Alice.Smith")
    assert error.status_code == 403


# -- failures: refused, one log line, no password, bounded name ------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "message"),
    [
        ({"status": 403, "path": ROLES_PATH}, 403, "XNAT refused this login."),
        ({"status": 500, "path": ROLES_PATH}, 503, "XNAT failed (HTTP 500)."),
        ({"status": 502}, 503, "XNAT failed (HTTP 502)."),
        ({"status": 302, "path": ROLES_PATH}, 503, "XNAT gave an unexpected answer (HTTP 302)."),
        ({"garbage": "html", "path": ROLES_PATH}, 503, "XNAT sent an answer the hub cannot read."),
        ({"garbage": "truncated-json", "path": ROLES_PATH}, 503, "XNAT sent an answer the hub cannot read."),
        ({"garbage": "wrong-types", "path": ROLES_PATH}, 503, "XNAT sent an answer the hub cannot read."),
        ({"status": 500, "path": SWITCH_PATH}, 503, "XNAT failed (HTTP 500)."),
        ({"garbage": "html", "path": SWITCH_PATH}, 503, "XNAT sent an answer the hub cannot read."),
        ({"garbage": "wrong-types", "path": SWITCH_PATH}, 503, "XNAT sent an answer the hub cannot read."),
        ({"down": True}, 503, "XNAT is unreachable."),
    ],
)
async def test_xnat_failures_refuse_with_one_line(authenticator, xnat_standin, caplog, fault, status, message):
    xnat_standin.add_user("Bob", PASSWORD, ["Member"])  # no Jupyter role: the site switch is asked too
    xnat_standin.set_fault(**fault)
    error = await refused(authenticator, "Bob")
    assert error.status_code == status
    assert shown(error).startswith(message)
    line = assert_one_clean_line(caplog)
    assert line.startswith("XNAT login refused for 'Bob': ")


async def test_wrong_password_refused(authenticator, xnat_standin, caplog):
    xnat_standin.add_user("Bob", PASSWORD, ["Jupyter"])
    error = await refused(authenticator, "Bob", "not-" + PASSWORD)
    assert error.status_code == 403 and shown(error) == WRONG_CREDENTIALS
    line = assert_one_clean_line(caplog, "not-" + PASSWORD)
    assert "401" in line


async def test_slow_xnat_times_out_within_bound(make_client, xnat_standin, auth_log, caplog):
    xnat_standin.add_user("Bob", PASSWORD, ["Jupyter"])
    xnat_standin.set_fault(latency=30)
    authenticator = XnatAuthenticator(xnat=make_client(url=xnat_standin.url, timeout=0.5), log=auth_log)
    started = time.monotonic()
    error = await refused(authenticator, "Bob")
    assert time.monotonic() - started < 5, "the timeout must bound the login"
    assert shown(error).startswith("XNAT is unreachable")
    assert "no answer within 0.5 s" in assert_one_clean_line(caplog)


async def test_long_username_is_bounded_in_the_log(authenticator, xnat_standin, caplog):
    name = "A" * 200 + "Z" * 55  # 255 characters: acceptable, unknown to XNAT
    error = await refused(authenticator, name)
    assert shown(error) == WRONG_CREDENTIALS
    line = assert_one_clean_line(caplog)
    assert "A" * 65 not in line and "Z" not in line
    assert "(255 chars)" in line


ODD_USERNAMES = [
    "", "a/b", "/", "a\\b", "..", "a..b", ".", "a b", " Alice", "Alice ", "a\tb", "a\nb", "a\x00b", "a\x7fb",
    "a:b", "a?b", "a#b", "a%2Fb", "a;jsessionid=1", "a\u200bb", "a\u2028b", "a\u00a0b", "x" * 256, "x" * 10_000,
    None, 42,
]


@pytest.mark.parametrize("username", ODD_USERNAMES, ids=[repr(u)[:30] for u in ODD_USERNAMES])
async def test_odd_usernames_refused_before_any_request(authenticator, xnat_standin, caplog, username):
    error = await refused(authenticator, username)
    assert error.status_code == 403
    assert xnat_standin.requests == [], "no request may reach XNAT"
    line = assert_one_clean_line(caplog)
    assert len(line) < 300, "the name in the log must be bounded"


async def test_empty_password_refused_before_any_request(authenticator, xnat_standin, caplog):
    xnat_standin.add_user("Bob", PASSWORD, ["Jupyter"])
    error = await refused(authenticator, "Bob", "")
    assert shown(error) == WRONG_CREDENTIALS
    assert xnat_standin.requests == []
    assert_one_clean_line(caplog)


# -- sessions ---------------------------------------------------------------------------------------------------------


async def test_no_xnat_session_left_open(authenticator, xnat_client: XnatClient, xnat_standin):
    xnat_standin.add_user("Alice.Smith", PASSWORD, ["Jupyter"])
    xnat_standin.add_user("Bob", PASSWORD, [])
    for _ in range(3):
        await login(authenticator, "Alice.Smith")
        with pytest.raises(web.HTTPError):
            await login(authenticator, "Bob")  # roles + switch: two requests, one session
    await xnat_client.drain()
    assert xnat_standin.open_sessions == 0
    assert len(xnat_standin.requests_to("/data/JSESSION")) == 6, "one session per login, each ended"
    switch_calls = xnat_standin.requests_to(SWITCH_PATH)
    assert len(switch_calls) == 3


async def test_sessions_never_cross_users(authenticator, xnat_standin):
    """The client is shared: Alice's XNAT session must not ride along on Bob's login."""
    xnat_standin.add_user("Alice.Smith", PASSWORD, ["Jupyter"])
    xnat_standin.add_user("Bob", "bobs-" + PASSWORD, ["Jupyter"])
    xnat_standin.set_fault(latency=1.0, path="/data/JSESSION")  # Alice's session stays open during Bob's login
    await login(authenticator, "Alice.Smith")
    assert (await login(authenticator, "Bob", "bobs-" + PASSWORD))["name"] == "Bob"
    bob_roles = xnat_standin.requests_to("/xapi/users/Bob/roles")
    assert [(r["user"], r["status"]) for r in bob_roles] == [("Bob", 200)]
    error = await refused(authenticator, "Bob", PASSWORD)  # Alice's password, Bob's name
    assert shown(error) == WRONG_CREDENTIALS
    assert list(authenticator.xnat.http.cookies.jar) == [], "the shared client must keep no cookie"


# -- the event loop stays free ---------------------------------------------------------------------------------------


async def test_slow_xnat_does_not_freeze_the_event_loop(make_client, auth_log):
    """While a login waits 2 s for XNAT, other coroutines keep running (the original blocked here)."""
    with XnatStandin().run_in_thread() as standin:
        standin.add_user("Alice.Smith", PASSWORD, ["Jupyter"])
        standin.set_fault(latency=2.0, path=ROLES_PATH)
        authenticator = XnatAuthenticator(xnat=make_client(url=standin.url, timeout=10), log=auth_log)
        worst_lag = 0.0
        ticks = 0

        async def ticker() -> None:
            nonlocal worst_lag, ticks
            while True:
                before = time.monotonic()
                await asyncio.sleep(0.01)
                worst_lag = max(worst_lag, time.monotonic() - before - 0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        started = time.monotonic()
        model = await login(authenticator, "Alice.Smith")
        waited = time.monotonic() - started
        ticking.cancel()
        assert model["name"] == "Alice.Smith"
        assert waited >= 1.9, "the login must really have waited on XNAT"
        assert worst_lag < 1.0, f"the event loop stalled for {worst_lag:.2f} s"  # blocking stalls 2 s
        assert ticks > 20


def test_help_documents_the_xnat_connection():
    """`jupyterhub --help-all` reaches XnatClient's options through the authenticator (the only entry point)."""
    text = XnatAuthenticator.class_get_help()
    for option in ("--XnatAuthenticator.jupyter_role=", "--XnatClient.url=", "--XnatClient.tls_ca_cert=",
                   "--XnatClient.timeout="):
        assert option in text
    assert "$JH_XNAT_URL" in text and "$JH_TLS_VERIFY" in text
