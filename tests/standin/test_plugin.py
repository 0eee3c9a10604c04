"""XnatPlugin's requests, checked against a tiny recording tornado app.

This only pins the wire format (paths, headers, bodies) and the client's waiting logic. The same calls against a
real hub run from our config are in tests/hub/test_plugin_hub.py, and end to end in tests/e2e.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from hub.standin.options import start_request_body
from hub.standin.plugin import HubError, HubTimeout, XnatPlugin

TOKEN = "svc-token-123"


class RecordingHub:
    """A hub API at /hub/api that records every request and keeps just enough state to answer."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.ready_after = 2  # GETs of a pending server before it reports ready
        self.polls = 0
        self.fail_create_with: int | None = None


class _Handler(RequestHandler):
    def initialize(self, hub: RecordingHub) -> None:
        self.hub = hub

    def prepare(self) -> None:
        body = json.loads(self.request.body) if self.request.body else None
        self.hub.calls.append({"method": self.request.method, "path": self.request.path,
                               "auth": self.request.headers.get("Authorization"), "body": body})

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def check_token(self) -> bool:
        if self.request.headers.get("Authorization") != f"token {TOKEN}":
            self.reply({"status": 403, "message": "bad token"}, 403)
            return False
        return True


class _Root(_Handler):
    def get(self) -> None:
        self.reply({"version": "5.5.1"})


class _Info(_Handler):
    def get(self) -> None:
        if self.check_token():
            self.reply({"version": "5.5.1", "spawner": {"class": "x"}})


class _Users(_Handler):
    def get(self) -> None:
        if self.check_token():
            self.reply(list(self.hub.users.values()))


class _User(_Handler):
    def get(self, name: str) -> None:
        if not self.check_token():
            return
        user = self.hub.users.get(name)
        if user is None:
            return self.reply({"status": 404, "message": "Not found"}, 404)
        for server in user["servers"].values():
            self.hub.polls += 1
            server["ready"] = self.hub.polls > self.hub.ready_after
            server["pending"] = None if server["ready"] else "spawn"
        self.reply(user)

    def post(self, name: str) -> None:
        if not self.check_token():
            return
        if self.hub.fail_create_with:
            return self.reply({"status": self.hub.fail_create_with, "message": "nope"}, self.hub.fail_create_with)
        if name in self.hub.users:
            return self.reply({"status": 409, "message": "exists"}, 409)
        self.hub.users[name] = {"name": name, "servers": {}}
        self.reply(self.hub.users[name], 201)


class _Server(_Handler):
    def post(self, name: str, server: str = "") -> None:
        if self.check_token():
            self.hub.users[name]["servers"][server] = {"name": server, "ready": False, "pending": "spawn",
                                                      "user_options": json.loads(self.request.body)}
            self.reply(None, 202)

    def delete(self, name: str, server: str = "") -> None:
        if not self.check_token():
            return
        if self.hub.users.get(name, {}).get("servers", {}).pop(server, None) is None:
            return self.reply({"status": 404, "message": "no such server"}, 404)
        self.set_status(204)
        self.finish()


class _Tokens(_Handler):
    def post(self, name: str) -> None:
        if self.check_token():
            self.reply({"token": "user-token-xyz", "id": "a1", "user": name}, 201)


@pytest.fixture
async def hub() -> AsyncIterator[tuple[RecordingHub, str]]:
    state = RecordingHub()
    args = {"hub": state}
    app = Application([
        (r"/hub/api/", _Root, args),
        (r"/hub/api/info", _Info, args),
        (r"/hub/api/users", _Users, args),
        (r"/hub/api/users/([^/]+)", _User, args),
        (r"/hub/api/users/(.+)/server", _Server, args),
        (r"/hub/api/users/(.+)/servers/([^/]+)", _Server, args),
        (r"/hub/api/users/([^/]+)/tokens", _Tokens, args),
    ], log_function=lambda handler: None)
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(app)
    server.add_sockets(sockets)
    try:
        yield state, f"http://127.0.0.1:{sockets[0].getsockname()[1]}/hub/api"
    finally:
        server.stop()
        await server.close_all_connections()


@pytest.fixture
async def plugin(hub) -> AsyncIterator[XnatPlugin]:
    client = XnatPlugin(hub[1], TOKEN, timeout=5)
    try:
        yield client
    finally:
        await client.aclose()


async def test_version_is_unauthenticated_and_info_sends_the_token(hub, plugin):
    state, _ = hub
    assert await plugin.version() == "5.5.1"
    assert (await plugin.info())["version"] == "5.5.1"
    assert [(c["path"], c["auth"]) for c in state.calls] == [("/hub/api/", None), ("/hub/api/info", f"token {TOKEN}")]
    assert TOKEN not in repr(plugin)


async def test_launch_as_xnat_does(hub, plugin):
    state, _ = hub
    name, server = "Alice.Smith", "20240615T101530123Z"
    assert await plugin.get_user(name) is None
    assert (await plugin.ensure_user(name))["name"] == name
    body = start_request_body(event_tracking_id=server)
    assert await plugin.start_server(name, server, body) == 202
    model = await plugin.wait_ready(name, server, timeout=5, interval=0.01)
    assert model["ready"] is True and model["user_options"] == body
    assert await plugin.create_token(name) == "user-token-xyz"
    assert await plugin.stop_server(name, server) == 204
    await plugin.wait_gone(name, server, timeout=5, interval=0.01)
    calls = [(c["method"], c["path"]) for c in state.calls]
    assert calls[:4] == [("GET", "/hub/api/users/Alice.Smith"), ("GET", "/hub/api/users/Alice.Smith"),
                         ("POST", "/hub/api/users/Alice.Smith"), ("GET", "/hub/api/users/Alice.Smith")]
    assert ("POST", f"/hub/api/users/Alice.Smith/servers/{server}") in calls
    token_call = next(c for c in state.calls if c["path"].endswith("/tokens"))
    assert token_call["body"]["scopes"] == ["access:servers!user=Alice.Smith"]
    assert token_call["body"]["expires_in"] == 172800 and token_call["body"]["note"] == "XNAT"
    assert token_call["body"]["token"] is None and "roles" not in token_call["body"]
    delete = next(c for c in state.calls if c["method"] == "DELETE")
    assert delete["body"] == {"remove": True}
    assert all(c["auth"] == f"token {TOKEN}" for c in state.calls)


async def test_default_server_path_and_names_not_escaped(hub, plugin):
    """The plugin concatenates names into the URL as they are: a space is percent-encoded by the HTTP client
    (as Spring's URI template handler does), a slash is not escaped at all."""
    state, _ = hub
    await plugin.ensure_user("a b")
    await plugin.start_server("a b", "", start_request_body())
    await plugin.stop_server("a b", "")
    paths = [c["path"] for c in state.calls]
    assert "/hub/api/users/a%20b/server" in paths
    assert state.calls[-1]["method"] == "DELETE" and state.calls[-1]["body"] == {"remove": True}
    await plugin.stop_server("a/b", "s")  # the plugin's path: /users/a/b/servers/s, unescaped
    assert state.calls[-1]["path"] == "/hub/api/users/a/b/servers/s"


async def test_start_refuses_a_missing_user_or_an_existing_server(hub, plugin):
    state, _ = hub
    with pytest.raises(HubError, match="not found") as missing:
        await plugin.start_server("nobody", "s1", start_request_body())
    assert missing.value.status == 404
    await plugin.ensure_user("alice")
    await plugin.start_server("alice", "s1", start_request_body())
    with pytest.raises(HubError, match="already running") as exists:
        await plugin.start_server("alice", "s1", start_request_body())
    assert exists.value.status == 409
    assert sum(c["method"] == "POST" and "/servers/" in c["path"] for c in state.calls) == 1


async def test_stop_ignores_404(hub, plugin):
    await plugin.ensure_user("alice")
    assert await plugin.stop_server("alice", "never-started") == 404


async def test_wait_ready_times_out_with_the_pending_state(hub, plugin):
    state, _ = hub
    state.ready_after = 10**6
    await plugin.ensure_user("alice")
    await plugin.start_server("alice", "s1", start_request_body())
    with pytest.raises(HubTimeout, match=r"not ready after 0.2s \(pending: spawn\)"):
        await plugin.wait_ready("alice", "s1", timeout=0.2, interval=0.02)


async def test_wait_ready_fails_fast_when_the_server_is_gone(hub, plugin):
    await plugin.ensure_user("alice")
    with pytest.raises(HubError, match="is gone"):
        await plugin.wait_ready("alice", "s1", timeout=5, interval=0.01)


async def test_hub_errors_carry_status_and_message(hub, plugin):
    state, url = hub
    state.fail_create_with = 403
    with pytest.raises(HubError, match="HTTP 403: nope") as refused:
        await plugin.ensure_user("alice")
    assert refused.value.status == 403
    async with XnatPlugin(url, "wrong-token") as bad:
        with pytest.raises(HubError, match="bad token"):
            await bad.info()


async def test_unreachable_hub_is_a_hub_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        async with XnatPlugin(f"http://127.0.0.1:{port}/hub/api", TOKEN, timeout=2) as plugin:
            with pytest.raises(HubError, match="ConnectError") as error:
                await plugin.version()
    assert error.value.status is None


# -- parsing as the plugin's models parse -------------------------------------------------------------------------

from datetime import UTC, datetime, timedelta  # noqa: E402

from hub.standin.culler import Culler  # noqa: E402
from hub.standin.plugin import HubParseError, check_user, parse_timestamp  # noqa: E402


@pytest.mark.parametrize("stamp, expected", [
    ("2024-06-15T10:15:30Z", datetime(2024, 6, 15, 10, 15, 30, tzinfo=UTC)),
    ("2024-06-15T10:15:30.123456Z", datetime(2024, 6, 15, 10, 15, 30, 123456, tzinfo=UTC)),
    ("2024-06-15T10:15:30+02", datetime(2024, 6, 15, 8, 15, 30, tzinfo=UTC)),
    ("2024-06-15T10:15:30.000001-0130", datetime(2024, 6, 15, 11, 45, 30, 1, tzinfo=UTC)),
    (None, None),
])
def test_timestamps_the_plugin_accepts(stamp, expected):
    assert parse_timestamp(stamp) == expected


@pytest.mark.parametrize("stamp", [
    "2024-06-15T10:15:30.123Z", "2024-06-15T10:15:30.123456789Z", "2024-06-15T10:15:30+00:00",
    "2024-06-15T10:15:30", "2024-06-15 10:15:30Z", "2024-13-15T10:15:30Z", "", 1718446530,
])
def test_timestamps_the_plugin_refuses(stamp):
    with pytest.raises(HubParseError):
        parse_timestamp(stamp)


def _server(**fields):
    return {"name": "s", "ready": True, "started": "2024-06-15T10:15:30.123456Z",
            "last_activity": "2024-06-15T10:15:30.123456Z", "user_options": {"a": 1, "b": None}, **fields}


@pytest.mark.parametrize("model, problem", [
    ({"name": "u", "servers": {"s": _server(ready=None)}}, "ready: null"),
    ({"name": "u", "servers": {"s": _server(user_options={"x": {"y": 1}})}}, "not flat: x"),
    ({"name": "u", "servers": {"s": _server(user_options={"x": [1]})}}, "not flat: x"),
    ({"name": "u", "servers": {"s": _server(started="2024-06-15T10:15:30.123Z")}}, "does not match"),
    ({"name": "u", "created": "2024-06-15T10:15:30+00:00", "servers": {}}, "does not match"),
    ({"name": "u"}, "no servers map"),
])
def test_user_models_the_plugin_cannot_parse(model, problem):
    with pytest.raises(HubParseError, match=problem):
        check_user(model)


async def test_a_user_list_with_one_bad_user_fails_whole(hub, plugin):
    state, _ = hub
    state.users = {"good": {"name": "good", "servers": {}},
                   "bad": {"name": "bad", "servers": {"s": _server(user_options={"n": {}})}}}
    with pytest.raises(HubParseError, match="not flat"):
        await plugin.list_users()
    assert state.calls[-1]["path"] == "/hub/api/users" and state.calls[-1]["auth"] == f"token {TOKEN}"


# -- the cullers' rules --------------------------------------------------------------------------------------------

NOW = datetime(2024, 6, 15, 12, 0, 0, tzinfo=UTC)


def _at(delta: timedelta) -> str:
    return (NOW - delta).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize("idle, age, reason", [
    (timedelta(minutes=60, seconds=59), timedelta(hours=1), None),  # 60 whole minutes: not more than 60
    (timedelta(minutes=61), timedelta(hours=1), "idle"),
    (timedelta(0), timedelta(hours=47, minutes=59), None),
    (timedelta(0), timedelta(hours=48), "lifetime"),  # 48 whole hours reach 48
])
def test_culler_rules_count_whole_units(idle, age, reason):
    culler = Culler(plugin=cast(XnatPlugin, None), now=lambda: NOW)  # reason() never calls the hub
    assert culler.reason(_server(last_activity=_at(idle), started=_at(age))) == reason


async def test_culler_pass_aborts_at_a_null_timestamp(hub, plugin):
    """As in the plugin: servers before the null one are handled, the rest wait for the next pass."""
    state, _ = hub
    state.ready_after = 0
    old = _at(timedelta(hours=2))
    state.users = {
        "a": {"name": "a", "servers": {"s": _server(last_activity=old, started=old)}},
        "b": {"name": "b", "servers": {"s": _server(last_activity=None, started=old)}},
        "c": {"name": "c", "servers": {"s": _server(last_activity=old, started=old)}},
    }
    report = await Culler(plugin, now=lambda: NOW).run_pass()
    assert report.aborted_at == ("b", "s")
    assert report.stopped == [("a", "s", "idle")]
    assert "s" in state.users["c"]["servers"]
    deletes = [c["path"] for c in state.calls if c["method"] == "DELETE"]
    assert deletes == ["/hub/api/users/a/servers/s"]
