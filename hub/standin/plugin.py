"""XNAT's side of the conversation: the calls the XNAT JupyterHub plugin makes to the hub, exactly as the plugin
makes them (xnat-plugin-client-facts.md, which is more precise than spec §6).

`XnatPlugin` sends those requests (paths built by concatenation with no escaping, bodies with their nulls,
`Authorization: token ...` on every call but `GET /`) and reads the answers the way the plugin does: every user
model it gets is checked as the plugin's Java models would parse it (`check_user`), and refused with
`HubParseError` if they would not. The plugin's flows are here too:

    async with XnatPlugin(hub_api_url, service_token) as plugin:
        server = await plugin.launch("Alice.Smith", "20240615T101530123Z", body)   # 8 s polls, up to 180 s
        token = await plugin.create_token("Alice.Smith")
        url = plugin.notebook_url(hub_host_url, server, token)                    # what XNAT's UI opens
        await plugin.stop("Alice.Smith", "20240615T101530123Z")                   # 2 s polls, up to 60 s

The waits are settings (`start_timeout`, `start_poll_interval`, `stop_timeout`, `stop_poll_interval`), so tests
can make them short. The lower-level calls (`start_server`, `wait_ready`, `stop_server`, `wait_gone`) stay for
tests that drive one step at a time.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

TOKEN_LIFETIME = 172800  # two days, what XNAT's UI asks for when opening a notebook
START_TIMEOUT = 180.0  # the plugin's startTimeout
START_POLL_INTERVAL = 8.0
STOP_TIMEOUT = 60.0
STOP_POLL_INTERVAL = 2.0

# The plugin's timestamp pattern, yyyy-MM-dd'T'HH:mm:ss[.SSSSSS]X: no fraction or exactly six digits, then Z,
# +HH or +HHMM. Three or nine digits, +00:00 or no zone do not parse.
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{6}))?(?:(Z)|([+-])(\d{2})(\d{2})?)"
)
USER_TIMESTAMPS = ("created", "last_activity")
SERVER_TIMESTAMPS = ("started", "last_activity")


class HubError(Exception):
    """The hub refused or failed a call. `status` is the HTTP status (None for a transport failure)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class HubTimeout(HubError, TimeoutError):
    """A wait ran out; the message carries the last state seen."""


class HubParseError(HubError):
    """An answer the plugin's Java models would fail to parse (a timestamp, a null `ready`, nested
    `user_options`). The plugin then fails the whole call, e.g. a culler pass over `GET /users`."""


class PluginRefusal(HubError):
    """The plugin's own refusal before it asks the hub to start anything (too many servers, already running)."""


def parse_timestamp(value: Any) -> datetime | None:
    """A timestamp parsed as the plugin parses it: None for null, HubParseError when the pattern does not match."""
    if value is None:
        return None
    match = _TIMESTAMP.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise HubParseError(f"timestamp {value!r} does not match yyyy-MM-dd'T'HH:mm:ss[.SSSSSS]X")
    year, month, day, hour, minute, second, fraction, zulu, sign, zone_h, zone_m = match.groups()
    offset = timedelta(0)
    if not zulu:
        offset = timedelta(hours=int(zone_h), minutes=int(zone_m or 0)) * (-1 if sign == "-" else 1)
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                        int(fraction or 0), tzinfo=timezone(offset))
    except ValueError as e:
        raise HubParseError(f"timestamp {value!r}: {e}") from None


def check_server(user: str, name: str, server: Any) -> dict[str, Any]:
    """One value of `servers`, as the plugin's Server model parses it."""
    if not isinstance(server, dict):
        raise HubParseError(f"server {name!r} of {user!r} is not an object")
    if server.get("ready") is None:
        raise HubParseError(f"server {name!r} of {user!r} has ready: null")
    for key in SERVER_TIMESTAMPS:
        parse_timestamp(server.get(key))
    options = server.get("user_options")
    if options is not None:
        if not isinstance(options, dict):
            raise HubParseError(f"user_options of server {name!r} of {user!r} is not an object")
        nested = sorted(k for k, v in options.items() if isinstance(v, (dict, list)))
        if nested:
            raise HubParseError(f"user_options of server {name!r} of {user!r} is not flat: {', '.join(nested)}")
    return server


def check_user(model: Any) -> dict[str, Any]:
    """A user model as the plugin's User model parses it; returned unchanged."""
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        raise HubParseError(f"not a user model: {str(model)[:80]}")
    for key in USER_TIMESTAMPS:
        parse_timestamp(model.get(key))
    servers = model.get("servers")
    if not isinstance(servers, dict):
        raise HubParseError(f"user {model['name']!r} has no servers map")
    for name, server in servers.items():
        check_server(model["name"], name, server)
    return model


def server_path(user: str, server: str) -> str:
    """The plugin's path: names concatenated as they are (the plugin escapes nothing)."""
    return f"/users/{user}/server" if server == "" else f"/users/{user}/servers/{server}"


def token_body(user: str, *, expires_in: int = TOKEN_LIFETIME, note: str = "XNAT") -> dict[str, Any]:
    """The plugin's Token object as JSON: every field, nulls included."""
    return {
        "token": None, "id": None, "user": None, "kind": None, "service": None,
        "scopes": [f"access:servers!user={user}"], "note": note, "oauth_client": None, "session_id": None,
        "expires_at": None, "expires_in": expires_in, "created": None, "last_activity": None,
    }


def _describe(response: httpx.Response) -> str:
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):
        message = None
    text = message if isinstance(message, str) else response.text
    return f"HTTP {response.status_code}: {text[:200]}"


class XnatPlugin:
    """An async client making the XNAT plugin's calls to the JupyterHub REST API."""

    def __init__(
        self, hub_api_url: str, token: str, *, verify: bool | str = True, timeout: float | None = 10,
        start_timeout: float = START_TIMEOUT, start_poll_interval: float = START_POLL_INTERVAL,
        stop_timeout: float = STOP_TIMEOUT, stop_poll_interval: float = STOP_POLL_INTERVAL,
        max_named_servers: int = 1,
    ) -> None:
        self.hub_api_url = hub_api_url.rstrip("/")
        self.start_timeout, self.start_poll_interval = start_timeout, start_poll_interval
        self.stop_timeout, self.stop_poll_interval = stop_timeout, stop_poll_interval
        self.max_named_servers = max_named_servers
        # Like Spring's RestTemplate: only GET follows redirects (done per request below).
        self._client = httpx.AsyncClient(verify=verify, timeout=timeout, headers={"Authorization": f"token {token}"})

    def __repr__(self) -> str:  # never the token
        return f"XnatPlugin({self.hub_api_url!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> XnatPlugin:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _request(
        self, method: str, path: str, *, ok: tuple[int, ...] = (), token: bool = True, **kwargs: Any
    ) -> httpx.Response:
        request = self._client.build_request(method, self.hub_api_url + path, **kwargs)
        if not token:
            del request.headers["Authorization"]
        follow = method == "GET"
        try:
            try:
                response = await self._client.send(request, follow_redirects=follow)
            except httpx.RemoteProtocolError:
                # A proxy may close an idle keep-alive connection just as we reuse it: a read is safe to repeat.
                if method != "GET":
                    raise
                response = await self._client.send(request, follow_redirects=follow)
        except httpx.HTTPError as e:
            raise HubError(f"{method} {path}: {type(e).__name__}: {e}") from None
        if not (response.is_success or response.status_code in ok):
            raise HubError(f"{method} {path}: {_describe(response)}", response.status_code)
        return response

    @staticmethod
    def _json(response: httpx.Response, what: str) -> Any:
        if not response.headers.get("Content-Type", "").startswith("application/json"):
            raise HubParseError(f"{what}: not a JSON answer ({response.headers.get('Content-Type')!r})")
        try:
            return response.json()
        except ValueError:
            raise HubParseError(f"{what}: the answer is not valid JSON") from None

    # -- single calls ----------------------------------------------------------------------------------------

    async def version(self) -> str:
        """GET / without the token: the hub's version (XNAT's liveness probe)."""
        return str(self._json(await self._request("GET", "/", token=False), "GET /")["version"])

    async def info(self) -> dict[str, Any]:
        """GET /info: checks that the token is valid and has read:hub."""
        info: dict[str, Any] = self._json(await self._request("GET", "/info"), "GET /info")
        return info

    async def list_users(self) -> list[dict[str, Any]]:
        """GET /users with no pagination header and no query, as the cullers and XNAT's admin list send it."""
        users = self._json(await self._request("GET", "/users"), "GET /users")
        if not isinstance(users, list):
            raise HubParseError("GET /users: not a JSON array")
        return [check_user(user) for user in users]

    async def get_user(self, name: str) -> dict[str, Any] | None:
        """GET /users/{name}; None when the hub has no such user."""
        response = await self._request("GET", f"/users/{name}", ok=(404,))
        return None if response.status_code == 404 else check_user(self._json(response, f"GET /users/{name}"))

    async def create_user(self, name: str) -> None:
        """POST /users/{name} with no body and no Content-Type."""
        await self._request("POST", f"/users/{name}")

    async def ensure_user(self, name: str) -> dict[str, Any]:
        """Get the user, creating it when absent (as XNAT does before each launch)."""
        user = await self.get_user(name)
        if user is not None:
            return user
        try:
            await self.create_user(name)
        except HubError as e:
            if e.status != 409:  # 409: created concurrently by another launch
                raise
        user = await self.get_user(name)
        if user is None:
            raise HubError(f"user {name!r} neither exists nor can be created")
        return user

    async def start_server(self, user: str, server: str, body: dict[str, Any]) -> int:
        """Check user and server, then POST the JSON body. Returns the status (201 or 202)."""
        model = await self.get_user(user)
        if model is None:
            raise HubError(f"user {user!r} not found on the hub", 404)
        if server in model["servers"]:
            raise PluginRefusal(f"server {server!r} of {user!r} is already running", 409)
        return (await self._request("POST", server_path(user, server), json=body)).status_code

    async def get_server(self, user: str, server: str) -> dict[str, Any] | None:
        """The server model from GET /users/{user}, or None."""
        model = await self.get_user(user)
        return None if model is None else model["servers"].get(server)

    async def wait_ready(self, user: str, server: str, timeout: float | None = None,
                         interval: float | None = None) -> dict[str, Any]:
        """Every `interval` s, GET /users/{user} until `servers[server].ready`; return that server model.

        Raises HubError when the server disappears (its spawn failed) and HubTimeout when time runs out.
        """
        timeout = self.start_timeout if timeout is None else timeout
        interval = self.start_poll_interval if interval is None else interval
        deadline = time.monotonic() + timeout
        while True:
            last = await self.get_server(user, server)
            if last is None:
                raise HubError(f"server {server!r} of {user!r} is gone: its spawn failed or it was stopped")
            if last["ready"]:
                return last
            if time.monotonic() >= deadline:
                raise HubTimeout(
                    f"server {server!r} of {user!r} not ready after {timeout:g}s (pending: {last.get('pending')})"
                )
            await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))

    async def create_token(self, user: str, *, expires_in: int = TOKEN_LIFETIME, note: str = "XNAT") -> str:
        """POST /users/{user}/tokens with XNAT's Token body; returns the new token's secret."""
        response = await self._request("POST", f"/users/{user}/tokens", json=token_body(user, expires_in=expires_in,
                                                                                         note=note))
        return str(self._json(response, "POST tokens")["token"])

    def notebook_url(self, hub_host_url: str, server: dict[str, Any], token: str | None) -> str:
        """What XNAT's UI opens: jupyterHubHostUrl + server.url + ?token=... (no token when the request failed)."""
        url = hub_host_url.rstrip("/") + server["url"]
        return f"{url}?token={token}" if token else url

    async def stop_server(self, user: str, server: str) -> int:
        """DELETE the server with `{"remove": true}`: 202 or 204, a 404 is ignored. Returns the status."""
        response = await self._request("DELETE", server_path(user, server), json={"remove": True}, ok=(404,))
        if response.status_code not in (202, 204, 404):
            raise HubError(f"DELETE {server_path(user, server)}: {_describe(response)}", response.status_code)
        return response.status_code

    async def wait_gone(self, user: str, server: str, timeout: float | None = None,
                        interval: float | None = None) -> None:
        """Every `interval` s, GET /users/{user} until the server is no longer in `servers`."""
        timeout = self.stop_timeout if timeout is None else timeout
        interval = self.stop_poll_interval if interval is None else interval
        deadline = time.monotonic() + timeout
        while True:
            last = await self.get_server(user, server)
            if last is None:
                return
            if time.monotonic() >= deadline:
                raise HubTimeout(
                    f"server {server!r} of {user!r} still present after {timeout:g}s (pending: {last.get('pending')})"
                )
            await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))

    # -- the plugin's flows ----------------------------------------------------------------------------------

    async def launch(self, user: str, server: str, body: dict[str, Any]) -> dict[str, Any]:
        """The plugin's start flow; returns the ready server model (its `url` is where XNAT sends the user).

        GET / -> GET /info -> GET /users/{u} (404: POST /users/{u}) -> refuse at max_named_servers (the default
        server counts) -> GET /users/{u} again (server present: "already running") -> POST -> poll.
        (The plugin saves the launch options in XNAT between the checks; the caller does that beforehand.)
        """
        await self.version()
        await self.info()
        model = await self.ensure_user(user)
        if len(model["servers"]) >= self.max_named_servers:
            raise PluginRefusal(f"{user!r} already has {len(model['servers'])} server(s); the limit is "
                                f"{self.max_named_servers}", 409)
        await self.start_server(user, server, body)
        return await self.wait_ready(user, server)

    async def stop(self, user: str, server: str) -> None:
        """The plugin's stop flow: GET /users/{u} -> DELETE {"remove": true} -> poll until the server is gone."""
        if await self.get_user(user) is None:
            return
        await self.stop_server(user, server)
        await self.wait_gone(user, server)
