"""The XNAT stand-in server: XNAT's endpoints on one port, a control API on another.

This module holds the stand-in's state and lifecycle (`XnatStandin`); the XNAT endpoints' handlers are in
`xnat_api.py`, the control API's in `control_api.py`. It is a little over 450 lines because `XnatStandin` is one
object (users, options, preferences, sessions, faults, the request log, two listeners) whose methods all guard the
same lock; splitting the class would spread that one invariant over several files. See the package docstring
(`hub.standin`) for the endpoints, the Python API and the control API.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fnmatch
import json
import secrets
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from .faults import Fault

ADMIN_ROLE = "Administrator"
SERVICE_ROLE = "JupyterHub"
SESSION_COOKIE = "JSESSIONID"
NOT_FOUND_OPTIONS = "User options not found."
MAX_LOGGED_REQUESTS = 10_000

# The plugin's preferences (tool id `jupyterhub`) with their defaults.
DEFAULT_PREFERENCES: dict[str, Any] = {
    "jupyterHubHostUrl": "",
    "jupyterHubApiUrl": "http://172.17.0.1/jupyterhub/hub/api",
    "jupyterHubToken": "secret-token",
    "startTimeout": 180,
    "stopTimeout": 60,
    "startPollingInterval": 8,
    "stopPollingInterval": 2,
    "pathTranslationArchivePrefix": "",
    "pathTranslationArchiveDockerPrefix": "",
    "pathTranslationWorkspacePrefix": "",
    "pathTranslationWorkspaceDockerPrefix": "",
    "workspacePath": "/data/xnat/workspaces",
    "inactivityTimeout": 60,
    "maxServerLifetime": 48,
    "maxNamedServers": 1,
    "allUsersCanStartJupyter": False,
}
# Only the admin and the JupyterHub service account may read these.
# One path segment (a user, server or preference name), passed to the handler.
PATH_SEGMENT = "([^/]+)"

PRIVILEGED_PREFERENCES = {"jupyterHubToken"}


class StandinUrls(NamedTuple):
    xnat: str
    control: str


@dataclass(eq=False)
class _ActiveFault:
    fault: Fault
    remaining: int | None = None

    def __post_init__(self) -> None:
        self.remaining = self.fault.times


@dataclass
class StandinUser:
    name: str
    password: str
    roles: tuple[str, ...]
    enabled: bool = True

    def to_json(self) -> dict[str, Any]:
        # Never the password.
        return {"roles": list(self.roles), "enabled": self.enabled}


def _url(host: str, port: int, scheme: str = "http") -> str:
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


class _TrackingHTTPServer(HTTPServer):
    """An HTTPServer that remembers its connections, so `down` can cut the keep-alive ones too."""

    open_streams: weakref.WeakSet[IOStream]

    def handle_stream(self, stream: IOStream, address: tuple[str, int]) -> None:
        self.open_streams.add(stream)
        super().handle_stream(stream, address)

    def cut(self) -> None:
        """Stop listening and drop every connection, now (synchronously)."""
        self.stop()
        for stream in list(self.open_streams):
            stream.close()


def _listen(
    app: Application, host: str, port: int, ssl_context: ssl.SSLContext | None = None
) -> tuple[_TrackingHTTPServer, int]:
    sockets = bind_sockets(port, address=host or None, family=socket.AF_UNSPEC)
    server = _TrackingHTTPServer(app, xheaders=False, ssl_options=ssl_context)
    server.open_streams = weakref.WeakSet()
    server.add_sockets(sockets)
    return server, sockets[0].getsockname()[1]


class XnatStandin:
    """A real HTTP server that answers the XNAT calls the hub makes, with the XNAT plugin's exact shapes."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.users: dict[str, StandinUser] = {}
        self.user_options_store: dict[tuple[str, str], Any] = {}
        self.preferences: dict[str, Any] = dict(DEFAULT_PREFERENCES)
        self._faults: list[_ActiveFault] = []
        self._sessions: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        self._down = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._xnat_server: _TrackingHTTPServer | None = None
        self._control_server: _TrackingHTTPServer | None = None
        self._wake: asyncio.Event | None = None
        self._in_flight = 0
        self._ssl_context: ssl.SSLContext | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.control_host = "127.0.0.1"
        self.control_port = 0
        # The handler modules import this one's constants, so they are imported here, not at the top.
        from .control_api import CONTROL_ROUTES
        from .xnat_api import XNAT_ROUTES, UnknownPathHandler

        self._xnat_app = Application(
            _routes(XNAT_ROUTES, self), default_handler_class=UnknownPathHandler,
            default_handler_args={"standin": self}, log_function=_quiet,
        )
        self._control_app = Application(_routes(CONTROL_ROUTES, self), log_function=_quiet)

    # -- lifecycle -------------------------------------------------------------------------------------------------

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, control_port: int = 0, *, control_host: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> StandinUrls:
        """Listen on `port` (XNAT) and `control_port` (control API); 0 picks a free port. Returns both URLs.

        With `ssl_context` (a server-side context holding the certificate; set `verify_mode` and a CA to demand
        client certificates) the XNAT port speaks HTTPS. The control port stays plain HTTP.
        """
        if self._xnat_server is not None:
            raise RuntimeError("the stand-in is already running")
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._ssl_context = ssl_context
        self.host, self.control_host = host, control_host if control_host is not None else host
        self._xnat_server, self.port = _listen(self._xnat_app, self.host, port, ssl_context)
        try:
            self._control_server, self.control_port = _listen(self._control_app, self.control_host, control_port)
        except OSError:
            self._xnat_server.cut()
            self._xnat_server = None
            raise
        self._down = False
        return self.urls

    async def stop(self) -> None:
        """Stop both ports, drop every connection and wait (briefly) for answers still in progress."""
        for server in (self._xnat_server, self._control_server):
            if server is not None:
                server.cut()
        self._xnat_server = self._control_server = None
        if self._wake is not None:
            self._wake.set()  # ends injected latency early
        deadline = time.monotonic() + 5
        while self._in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    @property
    def url(self) -> str:
        """Base URL of the XNAT side, e.g. `http://127.0.0.1:41234` (use as JH_XNAT_URL)."""
        return _url(self.host, self.port, "https" if self._ssl_context is not None else "http")

    @property
    def control_url(self) -> str:
        """Base URL of the control API (without `/_standin`)."""
        return _url(self.control_host, self.control_port)

    @property
    def urls(self) -> StandinUrls:
        return StandinUrls(self.url, self.control_url)

    @contextmanager
    def run_in_thread(
        self, host: str = "127.0.0.1", port: int = 0, control_port: int = 0, *, control_host: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> Iterator[XnatStandin]:
        """Run the stand-in on its own event loop in a thread, for synchronous tests or foreign event loops.

        The data and fault methods are safe to call from any thread while it runs.
        """
        loop = asyncio.new_event_loop()
        started: concurrent.futures.Future[StandinUrls] = concurrent.futures.Future()

        async def boot() -> None:
            try:
                started.set_result(await self.start(
                    host, port, control_port, control_host=control_host, ssl_context=ssl_context))
            except BaseException as e:  # handed to the caller's thread
                started.set_exception(e)

        def run() -> None:
            asyncio.set_event_loop(loop)
            booting = loop.create_task(boot())  # held here: the loop keeps only a weak reference to its tasks
            loop.run_forever()
            del booting

        thread = threading.Thread(target=run, name="xnat-standin", daemon=True)
        thread.start()
        try:
            started.result(15)
            yield self
        finally:
            if self._xnat_server is not None:
                asyncio.run_coroutine_threadsafe(self.stop(), loop).result(15)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(15)
            loop.close()
            self._loop = None

    # -- data --------------------------------------------------------------------------------------------------------

    def add_user(self, name: str, password: str, roles: Iterable[str] = (), *, enabled: bool = True) -> None:
        """Create or replace an XNAT account. Names are case-sensitive, as in XNAT."""
        if not isinstance(name, str) or not name:
            raise ValueError("a user needs a non-empty name")
        if not isinstance(password, str) or not password:
            raise ValueError(f"user {name!r} needs a non-empty password")
        try:
            password.encode("utf-8")
        except UnicodeEncodeError:
            # Basic auth could never send it, and comparing against it would fail every login with a 500
            raise ValueError(f"user {name!r} has a password that is not valid Unicode text") from None
        if isinstance(roles, str):
            raise ValueError("roles must be a list of role names, not a string")
        roles = tuple(roles)
        if not all(isinstance(r, str) for r in roles):
            raise ValueError("roles must be strings")
        if not isinstance(enabled, bool):
            raise ValueError("enabled must be true or false")
        with self._lock:
            self.users[name] = StandinUser(name, password, roles, enabled)

    def remove_user(self, name: str) -> bool:
        """Delete an account and end its sessions. True if it existed."""
        with self._lock:
            for sid in [s for s, user in self._sessions.items() if user == name]:
                del self._sessions[sid]
            return self.users.pop(name, None) is not None

    def set_user_options(self, user: str, server: str, options: Any) -> None:
        """Store what `GET .../users/{user}/server[/{server}]/user-options` returns ("" = default server).

        `options` is normally `hub.standin.options.user_options(...)`, but any JSON value is served as is.
        """
        if options is None:
            raise ValueError("user options cannot be null; use remove_user_options to forget them")
        json.dumps(options)  # refuse what cannot be served, now rather than at request time
        with self._lock:
            self.user_options_store[(user, server)] = options

    def remove_user_options(self, user: str, server: str) -> bool:
        with self._lock:
            return self.user_options_store.pop((user, server), None) is not None

    def set_preferences(self, preferences: Mapping[str, Any]) -> None:
        """Merge plugin preferences, e.g. `{"allUsersCanStartJupyter": True}`."""
        json.dumps(dict(preferences))
        with self._lock:
            self.preferences.update(preferences)

    # -- faults ------------------------------------------------------------------------------------------------------

    def set_fault(
        self,
        *,
        latency: float = 0.0,
        status: int | None = None,
        garbage: str | None = None,
        path: str | None = None,
        times: int | None = None,
        down: bool | None = None,
    ) -> None:
        """Inject a fault into XNAT answers.

        latency: seconds added before each answer (non-blocking). status: answer with this HTTP status instead.
        garbage: "html", "truncated-json" or "wrong-types" body (status 200 unless `status` is given).
        path: glob on the request path this fault applies to (None: all); a fault for the same path replaces the
        previous one. times: only for the next N matching requests.
        down: True stops listening on the XNAT port (connections refused, open ones cut); False listens again.
        """
        if down is not None and not isinstance(down, bool):
            raise ValueError(f"down must be true or false, got {down!r}")
        fault = None
        if latency or status is not None or garbage is not None:
            fault = Fault(latency=latency, status=status, garbage=garbage, path=path, times=times)
        elif down is None:
            raise ValueError("set_fault needs latency, status, garbage or down")
        if down is not None:
            self.set_down(down)
        if fault is not None:
            with self._lock:
                self._faults = [f for f in self._faults if f.fault.path != path] + [_ActiveFault(fault)]

    def clear_faults(self) -> None:
        """Remove every fault and bring the XNAT port back up."""
        with self._lock:
            self._faults = []
        if self._xnat_server is not None:
            self.set_down(False)

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return [f.fault for f in self._faults]

    @property
    def is_down(self) -> bool:
        return self._down

    @property
    def in_flight(self) -> int:
        """XNAT requests received and not yet answered (e.g. waiting out injected latency)."""
        return self._in_flight

    def set_down(self, down: bool) -> None:
        """Stop (True) or resume (False) listening on the XNAT port, keeping the port number."""
        if self._loop is None or self._xnat_server is None:
            raise RuntimeError("the stand-in is not running")
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._apply_down(down)
        else:
            async def apply() -> None:
                self._apply_down(down)

            asyncio.run_coroutine_threadsafe(apply(), self._loop).result(10)

    def _apply_down(self, down: bool) -> None:
        if down == self._down or self._xnat_server is None:
            return
        if down:
            self._xnat_server.cut()
        else:
            try:
                self._xnat_server, _ = _listen(self._xnat_app, self.host, self.port, self._ssl_context)
            except OSError as e:
                raise RuntimeError(f"cannot listen again on port {self.port}: {e.strerror or e}") from None
        self._down = down

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for active in reversed(self._faults):
                if active.fault.matches(path):
                    if active.remaining is not None:
                        active.remaining -= 1
                        if active.remaining == 0:
                            self._faults.remove(active)
                    return active.fault
        return None

    async def _pause(self, seconds: float) -> None:
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    # -- sessions and log ------------------------------------------------------------------------------------------

    @property
    def open_sessions(self) -> int:
        """How many JSESSIONs are open (created by an authenticated request and not yet DELETEd)."""
        with self._lock:
            return len(self._sessions)

    def sessions_by_user(self) -> dict[str, int]:
        with self._lock:
            counts: dict[str, int] = {}
            for user in self._sessions.values():
                counts[user] = counts.get(user, 0) + 1
            return counts

    def _open_session(self, user: str) -> str:
        sid = secrets.token_hex(16).upper()  # Tomcat's format: 32 upper-case hex digits
        with self._lock:
            self._sessions[sid] = user
        return sid

    def _session_user(self, sid: str) -> str | None:
        with self._lock:
            user = self._sessions.get(sid)
            return user if user is not None and user in self.users else None

    def _close_session(self, sid: str) -> bool:
        with self._lock:
            return self._sessions.pop(sid, None) is not None

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def requests_to(self, path_glob: str) -> list[dict[str, Any]]:
        """Logged requests whose raw path matches the glob."""
        with self._lock:
            return [r for r in self.requests if fnmatch.fnmatchcase(r["path"], path_glob)]

    def reset(self) -> None:
        """Forget users, options, sessions, faults and the log; preferences back to defaults; port back up."""
        with self._lock:
            self.users.clear()
            self.user_options_store.clear()
            self.preferences = dict(DEFAULT_PREFERENCES)
            self._sessions.clear()
            self.requests.clear()
        self.clear_faults()

    # -- helpers for handlers --------------------------------------------------------------------------------------

    def _has_role(self, name: str, *roles: str) -> bool:
        user = self.users.get(name)
        return user is not None and any(r in user.roles for r in roles)

    def _log(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(entry)
            if len(self.requests) > MAX_LOGGED_REQUESTS:  # a long-running demo must not grow without bound
                del self.requests[: len(self.requests) - MAX_LOGGED_REQUESTS]


def _quiet(handler: RequestHandler) -> None:
    """Tornado's access log is off: the stand-in keeps its own log, without credentials."""


def _routes(table: Iterable[tuple[str, type]], standin: XnatStandin) -> list[tuple[str, type, dict[str, Any]]]:
    """Tornado rules for `table`, every handler bound to `standin`."""
    args = {"standin": standin}
    return [(pattern, handler, args) for pattern, handler in table]
