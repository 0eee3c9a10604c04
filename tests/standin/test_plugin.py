"""XnatPlugin's requests, checked against a tiny recording tornado app.

This only pins the wire format (paths, headers, bodies) and the client's waiting logic. The same calls against the
real hub are exercised end to end in tests/e2e.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from typing import Any

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
        (r"/hub/api/users/([^/]+)", _User, args),
        (r"/hub/api/users/([^/]+)/server", _Server, args),
        (r"/hub/api/users/([^/]+)/servers/([^/]+)", _Server, args),
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


async def test_default_server_paths_and_quoted_names(hub, plugin):
    state, _ = hub
    await plugin.ensure_user("a b/c")
    await plugin.start_server("a b/c", "", start_request_body())
    await plugin.stop_server("a b/c", "")
    paths = [c["path"] for c in state.calls]
    assert "/hub/api/users/a%20b%2Fc/server" in paths
    assert state.calls[-1]["method"] == "DELETE" and state.calls[-1]["body"] == {"remove": True}


async def test_start_refuses_a_missing_user_or_an_existing_server(hub, plugin):
    state, _ = hub
    with pytest.raises(HubError, match="not found") as missing:
        await plugin.start_server("nobody", "s1", start_request_body())
    assert missing.value.status == 404
    await plugin.ensure_user("alice")
    await plugin.start_server("alice", "s1", start_request_body())
    with pytest.raises(HubError, match="already exists") as exists:
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
