"""XNAT's side of the conversation: the calls the XNAT JupyterHub plugin makes to the hub (spec §6.2, §6.4).

`XnatPlugin` makes exactly those requests (paths, bodies, `Authorization: token ...`), so a test can launch and
stop a notebook the way XNAT does:

    plugin = XnatPlugin(hub_api_url, service_token)
    await plugin.ensure_user("Alice.Smith")
    server = options.event_tracking_id()
    await plugin.start_server("Alice.Smith", server, options.start_request_body(event_tracking_id=server))
    model = await plugin.wait_ready("Alice.Smith", server, timeout=120)
    token = await plugin.create_token("Alice.Smith")
    await plugin.stop_server("Alice.Smith", server)
    await plugin.wait_gone("Alice.Smith", server, timeout=60)
    await plugin.aclose()
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import httpx

TOKEN_LIFETIME = 172800  # two days, what XNAT's UI asks for when opening a notebook


class HubError(Exception):
    """The hub refused or failed a call. `status` is the HTTP status (None for a transport failure)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class HubTimeout(HubError, TimeoutError):
    """A wait ran out; the message carries the last state seen."""


def _seg(value: str) -> str:
    return quote(value, safe="")


def _server_path(user: str, server: str) -> str:
    return f"/users/{_seg(user)}/server" if server == "" else f"/users/{_seg(user)}/servers/{_seg(server)}"


def _describe(response: httpx.Response) -> str:
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):
        message = None
    text = message if isinstance(message, str) else response.text
    return f"HTTP {response.status_code}: {text[:200]}"


class XnatPlugin:
    """An async client making the XNAT plugin's calls to the JupyterHub REST API."""

    def __init__(self, hub_api_url: str, token: str, *, verify: bool | str = True, timeout: float = 10) -> None:
        self.hub_api_url = hub_api_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.hub_api_url + "/", verify=verify, timeout=timeout,
            headers={"Authorization": f"token {token}"},
        )

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
        request = self._client.build_request(method, path.lstrip("/"), **kwargs)
        if not token:
            del request.headers["Authorization"]
        try:
            try:
                response = await self._client.send(request)
            except httpx.RemoteProtocolError:
                # A proxy may close an idle keep-alive connection just as we reuse it: a read is safe to repeat.
                if method != "GET":
                    raise
                response = await self._client.send(request)
        except httpx.HTTPError as e:
            raise HubError(f"{method} {path}: {type(e).__name__}: {e}") from None
        if not (response.is_success or response.status_code in ok):
            raise HubError(f"{method} {path}: {_describe(response)}", response.status_code)
        return response

    async def version(self) -> str:
        """GET / without the token: the hub's version (XNAT's liveness probe)."""
        response = await self._request("GET", "/", token=False)
        return str(response.json()["version"])

    async def info(self) -> dict[str, Any]:
        """GET /info: checks that the token is valid and has read:hub."""
        info: dict[str, Any] = (await self._request("GET", "/info")).json()
        return info

    async def get_user(self, name: str) -> dict[str, Any] | None:
        """GET /users/{name}; None when the hub has no such user."""
        response = await self._request("GET", f"/users/{_seg(name)}", ok=(404,))
        return None if response.status_code == 404 else response.json()

    async def create_user(self, name: str) -> dict[str, Any]:
        """POST /users/{name} with no body."""
        created: dict[str, Any] = (await self._request("POST", f"/users/{_seg(name)}")).json()
        return created

    async def ensure_user(self, name: str) -> dict[str, Any]:
        """Get the user, creating it when absent (as XNAT does before each launch)."""
        user = await self.get_user(name)
        if user is not None:
            return user
        try:
            return await self.create_user(name)
        except HubError as e:
            if e.status != 409:
                raise
        user = await self.get_user(name)  # created concurrently
        if user is None:
            raise HubError(f"user {name!r} neither exists nor can be created")
        return user

    async def start_server(self, user: str, server: str, body: dict[str, Any]) -> int:
        """XNAT's start: check user and server, then POST the JSON body. Returns the status (201 or 202)."""
        model = await self.get_user(user)
        if model is None:
            raise HubError(f"user {user!r} not found on the hub", 404)
        if server in (model.get("servers") or {}):
            raise HubError(f"server {server!r} of {user!r} already exists", 409)
        response = await self._request("POST", _server_path(user, server), json=body)
        return response.status_code

    async def get_server(self, user: str, server: str) -> dict[str, Any] | None:
        """The server model from GET /users/{user}, or None."""
        model = await self.get_user(user)
        return None if model is None else (model.get("servers") or {}).get(server)

    async def wait_ready(self, user: str, server: str, timeout: float = 180, interval: float = 1) -> dict[str, Any]:
        """Poll GET /users/{user} until `servers[server].ready`; return that server model.

        Raises HubError when the server disappears (its spawn failed) and HubTimeout when time runs out.
        """
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while True:
            last = await self.get_server(user, server)
            if last is None:
                raise HubError(f"server {server!r} of {user!r} is gone: its spawn failed or it was stopped")
            if last.get("ready"):
                return last
            if time.monotonic() >= deadline:
                raise HubTimeout(
                    f"server {server!r} of {user!r} not ready after {timeout:g}s (pending: {last.get('pending')})"
                )
            await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))

    async def create_token(self, user: str, *, expires_in: int = TOKEN_LIFETIME, note: str = "XNAT") -> str:
        """POST /users/{user}/tokens with XNAT's Token body; returns the new token's secret."""
        body = {
            "token": None, "id": None, "user": None, "kind": None, "service": None,
            "scopes": [f"access:servers!user={user}"], "note": note, "oauth_client": None, "session_id": None,
            "expires_at": None, "expires_in": expires_in, "created": None, "last_activity": None,
        }
        response = await self._request("POST", f"/users/{_seg(user)}/tokens", json=body)
        return str(response.json()["token"])

    async def stop_server(self, user: str, server: str) -> int:
        """DELETE the server with `{"remove": true}`; a 404 is ignored. Returns the status."""
        response = await self._request("DELETE", _server_path(user, server), json={"remove": True}, ok=(404,))
        return response.status_code

    async def wait_gone(self, user: str, server: str, timeout: float = 60, interval: float = 0.5) -> None:
        """Poll until the server is no longer in the user's `servers`."""
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
