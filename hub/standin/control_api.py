"""The stand-in's control API (`/_standin/...` on its own port): users, stored launch options, preferences,
faults, the request log and sessions, set and read by tests and `scripts/demo.sh`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tornado.web import Finish, RequestHandler

from .server import PATH_SEGMENT

if TYPE_CHECKING:
    from .server import XnatStandin


class _ControlHandler(RequestHandler):
    standin: XnatStandin

    def initialize(self, standin: XnatStandin) -> None:
        self.standin = standin

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish({"error": self._reason})

    def reply(self, data: Any = None, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps({"ok": True} if data is None else data))

    def refuse(self, message: str, status: int = 400) -> None:
        self.set_status(status)
        self.finish(json.dumps({"error": message}))
        raise Finish()

    def body(self) -> Any:
        try:
            return json.loads(self.request.body or b"null")
        except (ValueError, UnicodeDecodeError) as e:
            self.refuse(f"body is not JSON: {e}")

    def run(self, action: Any, *args: Any, **kwargs: Any) -> Any:
        """Call a stand-in method, turning its ValueError into a 400 with the message."""
        try:
            return action(*args, **kwargs)
        except (ValueError, TypeError) as e:
            self.refuse(str(e))


class _ControlStatusHandler(_ControlHandler):
    def get(self) -> None:
        s = self.standin
        self.reply({"xnat_url": s.url, "down": s.is_down, "users": len(s.users), "open_sessions": s.open_sessions})


class _ControlUsersHandler(_ControlHandler):
    def get(self) -> None:
        self.reply({name: user.to_json() for name, user in self.standin.users.items()})


class _ControlUserHandler(_ControlHandler):
    def put(self, name: str) -> None:
        body = self.body()
        if not isinstance(body, dict):
            self.refuse('body must be {"password": ..., "roles": [...]}')
        unknown = set(body) - {"password", "roles", "enabled"}
        if unknown:
            self.refuse(f"unknown user fields: {', '.join(sorted(unknown))}")
        self.run(self.standin.add_user, name, body.get("password"), body.get("roles", []),
                 enabled=body.get("enabled", True))
        self.reply()

    def delete(self, name: str) -> None:
        if not self.standin.remove_user(name):
            self.refuse(f"no user {name!r}", 404)
        self.reply()


class _ControlOptionsHandler(_ControlHandler):
    def get(self, user: str, server: str = "") -> None:
        options = self.standin.user_options_store.get((user, server))
        if options is None:
            self.refuse("no user options stored", 404)
        self.reply(options)

    def put(self, user: str, server: str = "") -> None:
        options = self.body()
        if options is None:
            self.refuse("body must be the user-options JSON document")
        self.run(self.standin.set_user_options, user, server, options)
        self.reply()

    def delete(self, user: str, server: str = "") -> None:
        if not self.standin.remove_user_options(user, server):
            self.refuse("no user options stored", 404)
        self.reply()


class _ControlPreferencesHandler(_ControlHandler):
    def get(self) -> None:
        self.reply(self.standin.preferences)

    def put(self) -> None:
        body = self.body()
        if not isinstance(body, dict):
            self.refuse("body must be a JSON object of preferences")
        self.standin.set_preferences(body)
        self.reply()


class _ControlFaultsHandler(_ControlHandler):
    def get(self) -> None:
        self.reply({"down": self.standin.is_down, "faults": [f.to_json() for f in self.standin.faults]})

    def put(self) -> None:
        body = self.body()
        if not isinstance(body, dict):
            self.refuse("a fault must be a JSON object")
        unknown = set(body) - {"latency", "status", "garbage", "path", "times", "down"}
        if unknown:
            self.refuse(f"unknown fault fields: {', '.join(sorted(unknown))}")
        self.run(self.standin.set_fault, **body)
        self.reply()

    def delete(self) -> None:
        self.standin.clear_faults()
        self.reply()


class _ControlRequestsHandler(_ControlHandler):
    def get(self) -> None:
        with self.standin._lock:
            self.reply(list(self.standin.requests))

    def delete(self) -> None:
        self.standin.clear_requests()
        self.reply()


class _ControlSessionsHandler(_ControlHandler):
    def get(self) -> None:
        self.reply({"open": self.standin.open_sessions, "by_user": self.standin.sessions_by_user()})


class _ControlResetHandler(_ControlHandler):
    def post(self) -> None:
        self.standin.reset()
        self.reply()


CONTROL_ROUTES: tuple[tuple[str, type[_ControlHandler]], ...] = (
    (r"/_standin/?", _ControlStatusHandler),
    (r"/_standin/users", _ControlUsersHandler),
    (rf"/_standin/users/{PATH_SEGMENT}", _ControlUserHandler),
    (rf"/_standin/user-options/{PATH_SEGMENT}", _ControlOptionsHandler),
    (rf"/_standin/user-options/{PATH_SEGMENT}/{PATH_SEGMENT}", _ControlOptionsHandler),
    (r"/_standin/preferences", _ControlPreferencesHandler),
    (r"/_standin/faults", _ControlFaultsHandler),
    (r"/_standin/requests", _ControlRequestsHandler),
    (r"/_standin/sessions", _ControlSessionsHandler),
    (r"/_standin/reset", _ControlResetHandler),
)
