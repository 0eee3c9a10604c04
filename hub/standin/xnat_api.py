"""The stand-in's XNAT side: a tornado handler per endpoint that the plugin and the hub call, each behind what
every XNAT answer shares (`_XnatHandler`: faults, Basic or session authentication, the request log)."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from typing import TYPE_CHECKING, Any, NoReturn, cast

from tornado.http1connection import HTTP1Connection
from tornado.web import Finish, RequestHandler

from .faults import Fault, garbage_body
from .server import (
    ADMIN_ROLE,
    NOT_FOUND_OPTIONS,
    PATH_SEGMENT,
    PRIVILEGED_PREFERENCES,
    SERVICE_ROLE,
    SESSION_COOKIE,
)

if TYPE_CHECKING:
    from .server import XnatStandin


class _XnatHandler(RequestHandler):
    """Common behaviour of every XNAT answer: faults, Basic/session authentication, the request log."""

    standin: XnatStandin

    def initialize(self, standin: XnatStandin) -> None:
        self.standin = standin
        self.fault: Fault | None = None
        self.caller: str | None = None
        self.presented: str | None = None
        self.session_id: str | None = None
        self._counted = False
        self._started = time.monotonic()

    def set_default_headers(self) -> None:
        self.clear_header("Server")

    async def prepare(self) -> None:
        self.standin._in_flight += 1
        self._counted = True
        if self.standin.is_down:  # raced the cut: act like the socket is gone
            cast(HTTP1Connection, self.request.connection).stream.close()  # tornado serves HTTP/1 here
            raise Finish()
        lowered = self.request.path.lower()
        if "%2f" in lowered or "%5c" in lowered:
            # Tomcat refuses encoded slashes in paths by default.
            self.answer(400, "Bad Request")
            raise Finish()
        self.fault = self.standin._take_fault(self.request.path)
        if self.fault is not None:
            if self.fault.latency:
                await self.standin._pause(self.fault.latency)
            if self.fault.status is not None and self.fault.garbage is None:
                self.answer(self.fault.status, f"Injected fault: HTTP {self.fault.status}")
                raise Finish()

    def finish(self, chunk: Any = None) -> Any:
        # Logged before the answer leaves, so a client in another thread finds its request in the log.
        if not self._finished:
            self._record()
        return super().finish(chunk)

    def on_finish(self) -> None:
        if self._counted:
            self.standin._in_flight -= 1

    def _record(self) -> None:
        self.standin._log({
            "method": self.request.method,
            "path": self.request.path,
            "user": self.caller or self.presented,
            "authenticated": self.caller is not None,
            "status": self.get_status(),
            "seconds": round(time.monotonic() - self._started, 4),
        })

    # Tornado's HTML error page would not look like XNAT; keep errors short and plain.
    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/plain;charset=UTF-8")
        self.finish(self._reason)

    def answer(self, status: int, body: Any) -> None:
        """Finish with JSON (or text, for a str), unless a garbage fault replaces the body."""
        if self.fault is not None and self.fault.garbage is not None:
            status = self.fault.status or 200
            content_type, text = garbage_body(self.fault.garbage, body)
        elif isinstance(body, str):
            content_type, text = "text/plain;charset=UTF-8", body
        else:
            content_type, text = "application/json;charset=UTF-8", json.dumps(body)
        self.set_status(status)
        self.set_header("Content-Type", content_type)
        self.finish(text)

    def fail(self, status: int, text: str) -> NoReturn:
        if status == 401:
            self.set_header("WWW-Authenticate", 'Basic realm="XNAT"')
        self.answer(status, text)
        raise Finish()

    def _basic_credentials(self) -> tuple[str, str] | None:
        header = self.request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        name, sep, password = decoded.partition(":")
        return (name, password) if sep else None

    def authenticate(self) -> str | None:
        """The caller, from Basic credentials and/or a live JSESSIONID cookie, as Spring Security decides.

        A live session whose user is the Basic username is reused without checking the password (Spring's
        BasicAuthenticationFilter skips re-authentication), so a client that shares one cookie jar between users
        lets a wrong password through. Basic credentials for another user replace the session (session fixation
        protection: the old one ends). Otherwise successful Basic authentication opens a session, as Tomcat does.
        """
        sid = self.get_cookie(SESSION_COOKIE)
        session_user = self.standin._session_user(sid) if sid else None
        credentials = self._basic_credentials()
        if credentials is None or credentials[0] == session_user:
            if session_user is not None:
                self.session_id = sid
                self.presented = session_user
            return session_user
        name, password = credentials
        self.presented = name
        user = self.standin.users.get(name)
        if user is None or not user.enabled:
            return None
        if not secrets.compare_digest(user.password.encode(), password.encode()):
            return None
        if session_user is not None and sid:
            self.standin._close_session(sid)
        self.session_id = self.standin._open_session(name)
        self.set_cookie(SESSION_COOKIE, self.session_id, path="/", httponly=True)
        return name

    def require_user(self) -> str:
        self.caller = self.authenticate()
        if self.caller is None:
            self.fail(401, "Unauthorized")
        return self.caller

    def require_service_account(self) -> str:
        caller = self.require_user()
        if not self.standin._has_role(caller, SERVICE_ROLE, ADMIN_ROLE):
            self.fail(403, "Forbidden")
        return caller


class _RolesHandler(_XnatHandler):
    def get(self, username: str) -> None:
        caller = self.require_user()
        if caller != username and not self.standin._has_role(caller, ADMIN_ROLE):
            self.fail(403, "Forbidden")
        user = self.standin.users.get(username)
        if user is None:
            self.fail(404, f"Couldn't find user {username}")
        self.answer(200, list(user.roles))


class _PreferencesHandler(_XnatHandler):
    def get(self) -> None:
        caller = self.require_user()
        prefs = dict(self.standin.preferences)
        if not self.standin._has_role(caller, SERVICE_ROLE, ADMIN_ROLE):
            prefs = {"allUsersCanStartJupyter": prefs.get("allUsersCanStartJupyter", False)}
        self.answer(200, prefs)


class _PreferenceHandler(_XnatHandler):
    def get(self, name: str) -> None:
        caller = self.require_user()
        if name not in self.standin.preferences:
            self.fail(404, f"No preference named {name}")
        if name in PRIVILEGED_PREFERENCES and not self.standin._has_role(caller, SERVICE_ROLE, ADMIN_ROLE):
            self.fail(403, "Forbidden")
        self.answer(200, {name: self.standin.preferences[name]})


class _UserOptionsHandler(_XnatHandler):
    def get(self, username: str, servername: str = "") -> None:
        self.require_service_account()
        options = self.standin.user_options_store.get((username, servername))
        if options is None:
            self.fail(404, NOT_FOUND_OPTIONS)
        self.answer(200, options)


class _SessionHandler(_XnatHandler):
    def get(self) -> None:
        self.require_user()
        self.answer(200, self.session_id)

    post = get

    def delete(self) -> None:
        self.require_user()
        assert self.session_id is not None
        self.standin._close_session(self.session_id)
        self.clear_cookie(SESSION_COOKIE, path="/")
        self.answer(200, "")


class UnknownPathHandler(_XnatHandler):
    """Every other path (including `.../server//user-options`): 404, but logged and subject to faults."""

    async def prepare(self) -> None:
        await super().prepare()
        self.answer(404, "Not Found")


XNAT_ROUTES: tuple[tuple[str, type[_XnatHandler]], ...] = (
    (rf"/xapi/users/{PATH_SEGMENT}/roles", _RolesHandler),
    (r"/xapi/jupyterhub/preferences", _PreferencesHandler),
    (rf"/xapi/jupyterhub/preferences/{PATH_SEGMENT}", _PreferenceHandler),
    (rf"/xapi/jupyterhub/users/{PATH_SEGMENT}/server/user-options", _UserOptionsHandler),
    (rf"/xapi/jupyterhub/users/{PATH_SEGMENT}/server/{PATH_SEGMENT}/user-options", _UserOptionsHandler),
    (r"/data/JSESSION", _SessionHandler),
)
