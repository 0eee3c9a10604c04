"""Generated hostile usernames and passwords (very long, control characters, path-like, unicode, NUL, quoting
tricks) at login: always a refusal with a user-facing message, never an exception, one bounded log line per
attempt that never holds the password.

In process: 500 pairs through XnatAuthenticator.authenticate against the stand-in over HTTP (tests/hub/test_auth.py
has the hand-picked cases). Live: 30 pairs through the real /hub/login form of the fault stack's hub (tests/faults),
which answers each with the login page and a message, never a 500.
XNATJH_HYPOTHESIS_EXAMPLES=N runs N examples of each instead.
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tornado import web

from hub.auth import XnatAuthenticator
from hub.standin.server import XnatStandin
from hub.xnat import XnatClient
from tests.helpers.fault_stack import FaultStack, fault_stack_fixture

_OVERRIDE = os.environ.get("XNATJH_HYPOTHESIS_EXAMPLES")
LOG_LINE_LIMIT = 400

PIECES = st.sampled_from([
    "alice", "Alice.Smith", "..", ".", "/", "\\", "%2F", "%2e%2e", "?", "#", ";jsessionid=1", "\x00", "\n", "\r\n",
    "\t", "\x1b[31m", "\x7f", "\u200b", "\u2028", "\u202e", "é", "💥", "\ud800", " ", "'", '"', "<script>", "${jndi:x}",
    "admin", "root", "../../etc/passwd", "C:\\Windows", "*", "%", "&", "=",
])
HOSTILE = st.one_of(
    st.lists(PIECES, min_size=1, max_size=12).map("".join),
    st.text(min_size=0, max_size=80),
    st.text(min_size=256, max_size=4000),
    st.integers(1, 50_000).map(lambda n: "a" * n),
)


def examples(count: int) -> settings:
    return settings(max_examples=int(_OVERRIDE) if _OVERRIDE else count, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class LoginRig:
    def __init__(self, standin: XnatStandin, loop: asyncio.AbstractEventLoop, authenticator: XnatAuthenticator,
                 lines: Lines):
        self.standin, self.loop, self.authenticator, self.lines = standin, loop, authenticator, lines


@pytest.fixture(scope="module")
def login_rig() -> Iterator[LoginRig]:
    loop = asyncio.new_event_loop()
    log = logging.getLogger(f"test.hostile.logins.{secrets.token_hex(3)}")
    log.propagate = False
    lines = Lines()
    log.addHandler(lines)
    with XnatStandin().run_in_thread() as standin:
        standin.add_user("alice", "alice-password", ["Jupyter"])
        client = XnatClient(url=standin.url, timeout=5.0)
        try:
            yield LoginRig(standin, loop, XnatAuthenticator(xnat=client, log=log), lines)
        finally:
            loop.run_until_complete(client.aclose())
            loop.close()


@examples(500)
@given(HOSTILE, HOSTILE)
def test_hostile_credentials_are_refused_cleanly(login_rig: LoginRig, username: str, password: str) -> None:
    login_rig.lines.lines.clear()
    try:
        outcome: Any = login_rig.loop.run_until_complete(
            login_rig.authenticator.authenticate(None, {"username": username, "password": password})
        )
    except web.HTTPError as e:
        message = getattr(e, "jupyterhub_message", "")
        assert e.status_code in (403, 503) and message and "Traceback" not in message and len(message) < 300
        assert username not in message or len(username) < 40  # the page never echoes a long name in the message
    except BaseException as e:
        pytest.fail(f"login crashed ({e.__class__.__name__}: {str(e)[:200]}) for {username[:80]!r}")
    else:
        pytest.fail(f"a hostile login was let in: {outcome!r}")
    assert len(login_rig.lines.lines) == 1, login_rig.lines.lines
    line = login_rig.lines.lines[0]
    assert len(line) < LOG_LINE_LIMIT and "\n" not in line, line[:500]
    if len(password) >= 6 and password not in username:
        assert password not in line


def test_a_password_with_a_lone_surrogate_is_refused(login_rig: LoginRig) -> None:
    with pytest.raises(web.HTTPError):
        login_rig.loop.run_until_complete(
            login_rig.authenticator.authenticate(None, {"username": "alice", "password": "pass\ud800word"})
        )


# -- through the live hub's login form -----------------------------------------------------------------------------



@pytest.fixture(scope="module")
def live_hub() -> Iterator[FaultStack]:
    yield from fault_stack_fixture()


# A lone surrogate cannot be sent in a form: it has no UTF-8 encoding (tornado refuses such a body with a 400).
SENDABLE = HOSTILE.filter(lambda s: "\ud800" not in s)


@pytest.mark.e2e
@pytest.mark.docker
@pytest.mark.timeout(900)
@examples(30)
@given(SENDABLE.filter(lambda s: "\x00" not in s), SENDABLE)
def test_hostile_credentials_at_the_live_login_form(live_hub: FaultStack, username: str, password: str) -> None:
    with httpx.Client(base_url=live_hub.hub_url, timeout=30) as client:
        client.get("/hub/login")
        answer = client.post("/hub/login", data={"username": username, "password": password,
                                                  "_xsrf": client.cookies.get("_xsrf", "")})
        assert answer.status_code == 403, (answer.status_code, answer.text[-500:])
        assert 'name="password"' in answer.text  # the login page, with its message
        assert "jupyterhub-hub-login" not in client.cookies
        if len(password) >= 6 and password not in username:
            assert password not in html.unescape(answer.text)
