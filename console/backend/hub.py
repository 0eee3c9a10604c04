"""An async client for the JupyterHub REST API, as the console needs it.

The token travels only in the `Authorization: token` header. It is never put in a URL, a log line, a repr or
an exception message, and it is never sent to another origin: redirects are followed by hand and only within
the API's own origin. Every call has a timeout, and every failure is a `HubError` whose message is safe to show.

Lists are read with `Accept: application/jupyterhub-pagination+json` and every page is fetched; without it the
hub silently truncates at `api_page_max_limit`. The next page is asked of *our* API URL (offset/limit from
`_pagination.next`), never of the URL the hub puts in `next.url`, which may name a host we don't trust.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin, urlsplit

from console.backend.models import HubIdentity, ServerRow

if TYPE_CHECKING:  # httpx (~50 ms of imports) is imported when the first client is made, after the first frame
    import httpx

PAGINATION = "application/jupyterhub-pagination+json"
MAX_REDIRECTS = 5
# The hub sends a keepalive every 8 s on the progress stream; allow a little more between two reads.
PROGRESS_READ_TIMEOUT = 30.0
# Start and stop requests wait up to the hub's slow_spawn_timeout / slow_stop_timeout (10 s by default)
# before it answers 202, so they get more time than reads.
CHANGE_TIMEOUT = 30.0

# Scopes the console needs, and what each is for (shown when one is missing). `GET /hub/api/user` returns the
# token's *expanded* scopes, so a parent scope (`servers`, `admin:users`) shows up as these.
CONSOLE_SCOPES: dict[str, str] = {
    "list:users": "list users and their servers",
    "read:users": "read users' last activity",
    "read:servers": "read servers and follow spawn progress",
    "servers": "start, stop and restart servers",
    "delete:servers": "stop and delete servers",
    "read:hub": "read the hub's version, authenticator and spawner",
}
# Wanted but optional: the overview shows the proxy's routes when the token may read them.
OPTIONAL_SCOPES: dict[str, str] = {"proxy": "count the proxy's routes"}
# More than the console needs: worth a warning (admin:users is "tantamount to superuser", CVE-2024-41942).
EXCESS_SCOPES = ("admin:users", "admin:servers", "admin:auth_state", "tokens", "shutdown", "admin-ui", "admin:services")


class HubError(ConnectionError):
    """A hub call failed. The message is safe to show (it never holds the token). A ConnectionError, so screens
    treat it like the fake backend's faults."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ProgressEvent:
    """One event of the spawn progress stream."""

    progress: int | None
    message: str
    ready: bool = False
    failed: bool = False
    url: str = ""


def parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def server_state(model: dict[str, Any]) -> str:
    """The console's state word for a hub server model."""
    pending = model.get("pending")
    if pending == "spawn":
        return "pending spawn"
    if pending == "stop":
        return "pending stop"
    if model.get("ready"):
        return "ready"
    if model.get("stopped"):
        return "stopped"
    return "pending spawn" if pending else "stopped"


def server_row(user: str, name: str, model: dict[str, Any]) -> ServerRow:
    """The hub-side fields of a ServerRow; the swarm columns are joined in later."""
    options = model.get("user_options")
    options = options if isinstance(options, dict) else {}
    return ServerRow(
        user=user,
        server=name,
        state=server_state(model),
        started=parse_time(model.get("started")),
        last_activity=parse_time(model.get("last_activity")),
        url=model.get("url") or "",
        progress_url=model.get("progress_url") or "",
        user_options=options,
        xsi_type=str(options.get("xsiType") or ""),
        item_id=str(options.get("itemId") or ""),
        project_id=str(options.get("projectId") or ""),
    )


def missing_scopes(held: set[str] | list[str] | tuple[str, ...], wanted: dict[str, str] = CONSOLE_SCOPES) -> list[str]:
    """Wanted scopes the token lacks. A scope held only with a filter (`servers!group=x`) counts as missing,
    with the filter named, since the console would see or act on part of the hub only."""
    held = set(held)
    missing = []
    for scope in wanted:
        if scope in held:
            continue
        filtered = sorted(h for h in held if h.split("!", 1)[0] == scope)
        missing.append(f"{scope} (only {', '.join(filtered)})" if filtered else scope)
    return missing


def _server_path(user: str, server: str) -> str:
    user_part = quote(user, safe="")
    return f"users/{user_part}/servers/{quote(server, safe='')}" if server else f"users/{user_part}/server"


class HubClient:
    """The JupyterHub REST API at `api_url` (e.g. `http://127.0.0.1:8000/jupyterhub/hub/api`)."""

    def __init__(
        self,
        api_url: str,
        token: str | None,
        *,
        verify: bool = True,
        ca_bundle: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        import httpx

        parts = urlsplit(api_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise HubError(f"hub API URL must be http(s)://host[:port]/path, got {api_url[:80]!r}")
        self.api_url = api_url.rstrip("/") + "/"
        self._origin = (parts.scheme, parts.netloc.lower())
        self.timeout = timeout
        headers = {"Accept": "application/json", "User-Agent": "xnat-jh-console"}
        if token:
            headers["Authorization"] = f"token {token}"
        verify_arg: bool | ssl.SSLContext = verify
        if verify and ca_bundle:
            try:
                verify_arg = ssl.create_default_context(cafile=ca_bundle)
            except (OSError, ssl.SSLError) as e:
                raise HubError(f"cannot load the CA bundle {ca_bundle}: {e}") from None
        self._client = httpx.AsyncClient(
            headers=headers,
            verify=verify_arg,
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"HubClient({self.api_url!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HubClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- transport ---------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return urljoin(self.api_url, path.lstrip("/"))

    def _same_origin(self, url: str) -> bool:
        parts = urlsplit(url)
        return (parts.scheme, parts.netloc.lower()) == self._origin

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx  # loaded by __init__

        url = self._url(path)
        what = f"{method} {urlsplit(url).path}"
        timeout = kwargs.get("timeout", self.timeout)
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = await self._client.request(method, url, **kwargs)
            except httpx.TimeoutException:
                raise HubError(f"hub did not answer {what} within {timeout:g} s") from None
            except httpx.ConnectError as e:
                raise HubError(f"cannot connect to the hub at {self.api_url}: {_reason(e)}") from None
            except httpx.HTTPError as e:
                raise HubError(f"{what} failed: {_reason(e)}") from None
            if response.is_redirect:
                target = urljoin(url, response.headers.get("location", ""))
                await response.aclose()
                if not self._same_origin(target):
                    origin = "{0.scheme}://{0.netloc}".format(urlsplit(target))
                    raise HubError(
                        f"hub redirected {what} to another origin ({origin}); not sending the token there. "
                        "Check the hub API URL."
                    )
                url = target
                continue
            return response
        raise HubError(f"too many redirects for {what}")

    async def _json(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        response = await self._request(method, path, **kwargs)
        if response.status_code not in ok:
            raise _status_error(method, path, response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise HubError(f"hub answered {method} /{path} with something that is not JSON") from None

    # -- reads -------------------------------------------------------------------------------

    async def version(self) -> str:
        """The hub's version (`GET /hub/api/`, unauthenticated)."""
        data = await self._json("GET", "")
        return str(data.get("version", "")) if isinstance(data, dict) else ""

    async def info(self) -> dict[str, Any]:
        """`GET /hub/api/info` [read:hub]: version, python, authenticator and spawner classes."""
        data = await self._json("GET", "info")
        if not isinstance(data, dict):
            raise HubError("hub answered /info with an unexpected shape")
        return data

    async def health(self) -> bool:
        """True when `/hub/api/health` answers 200. Raises HubError when the hub cannot be reached."""
        response = await self._request("GET", "health")
        return response.status_code == 200

    async def whoami(self) -> HubIdentity:
        """The token's identity and scopes, with the console's needs it does not meet."""
        data = await self._json("GET", "user")
        if not isinstance(data, dict):
            raise HubError("hub answered /user with an unexpected shape")
        scopes = tuple(sorted(str(s) for s in data.get("scopes", [])))
        return HubIdentity(
            name=str(data.get("name", "")),
            kind=str(data.get("kind", "")),
            scopes=scopes,
            missing_scopes=tuple(missing_scopes(scopes)),
            excess_scopes=tuple(s for s in EXCESS_SCOPES if s in scopes),
        )

    async def _page(self, path: str, params: dict[str, Any]) -> tuple[list[Any] | dict[str, Any], dict[str, Any]]:
        data = await self._json("GET", path, params=params, headers={"Accept": PAGINATION})
        if not isinstance(data, dict) or "items" not in data:
            raise HubError(f"hub answered /{path} without pagination; is it older than JupyterHub 2?")
        return data["items"], data.get("_pagination") or {}

    async def _paged(self, path: str, params: dict[str, Any] | None = None) -> AsyncIterator[tuple[Any, int]]:
        """Each page's items and the total. After the first page the total is known, so the remaining pages
        are asked for at once, on our own URL (the offsets from `_pagination`, never its `next.url`)."""
        params = dict(params or {})
        params.setdefault("offset", 0)
        params.setdefault("limit", 200)
        items, pagination = await self._page(path, params)
        total = int(pagination.get("total") or 0)
        yield items, total
        nxt = pagination.get("next")
        if not nxt:
            return
        limit = int(nxt["limit"]) or 1
        offsets = range(int(nxt["offset"]), total, limit)
        pages = await asyncio.gather(*(self._page(path, {**params, "offset": o, "limit": limit}) for o in offsets))
        for items, _pagination in pages:
            yield items, total

    async def users(self, *, state: str | None = None, include_stopped_servers: bool = False) -> list[dict[str, Any]]:
        """Every user model [list:users], all pages. `state`: active | ready | inactive."""
        params: dict[str, Any] = {}
        if state:
            params["state"] = state
        if include_stopped_servers:
            params["include_stopped_servers"] = "1"
        users: list[dict[str, Any]] = []
        async for items, _total in self._paged("users", params):
            users.extend(items)
        return users

    async def user_count(self) -> int:
        """How many users the hub has, from one page of one."""
        async for _items, total in self._paged("users", {"limit": 1}):
            return total
        return 0

    async def user(self, name: str, *, include_stopped: bool = False) -> dict[str, Any]:
        params = {"include_stopped_servers": "1"} if include_stopped else None
        data = await self._json("GET", f"users/{quote(name, safe='')}", params=params)
        if not isinstance(data, dict):
            raise HubError("hub answered /users/NAME with an unexpected shape")
        return data

    async def servers(self, *, include_stopped: bool = False) -> list[ServerRow]:
        """One row per server of every user (default and named), hub-side fields only.

        Without `include_stopped`, only users with an active server are fetched (`state=active`), which is
        what keeps a refresh cheap on a hub with thousands of users.
        """
        if include_stopped:
            users = await self.users(include_stopped_servers=True)
        else:
            users = await self.users(state="active")
        rows = []
        for user in users:
            name = user.get("name", "")
            for server_name, model in (user.get("servers") or {}).items():
                rows.append(server_row(name, server_name, model))
        return rows

    async def server(self, user: str, server: str, *, include_stopped: bool = False) -> ServerRow | None:
        """One server's row, or None when it does not exist (or is stopped, unless `include_stopped`)."""
        model = (await self.user(user, include_stopped=include_stopped)).get("servers", {}).get(server)
        return server_row(user, server, model) if model else None

    async def proxy_route_count(self) -> int:
        """How many routes the proxy has [proxy], without fetching them all."""
        async for _items, total in self._paged("proxy", {"limit": 1}):
            return total
        return 0

    async def proxy_routes(self) -> dict[str, dict[str, Any]]:
        """The proxy's routing table [proxy], all pages."""
        routes: dict[str, dict[str, Any]] = {}
        async for items, _total in self._paged("proxy"):
            routes.update(items)
        return routes

    # -- changes -----------------------------------------------------------------------------

    async def start_server(self, user: str, server: str, user_options: dict[str, Any] | None = None) -> str:
        """Start a server with `user_options` as the body. Returns "started" (201) or "pending" (202)."""
        response = await self._request(
            "POST", _server_path(user, server), json=user_options or {}, timeout=max(self.timeout, CHANGE_TIMEOUT)
        )
        if response.status_code == 201:
            return "started"
        if response.status_code == 202:
            return "pending"
        raise _status_error("POST", _server_path(user, server), response)

    async def stop_server(self, user: str, server: str, remove: bool = False) -> str:
        """Stop a server (and with `remove`, delete a named one). Returns "stopped" (204) or "stopping" (202)."""
        path = _server_path(user, server)
        kwargs: dict[str, Any] = {"timeout": max(self.timeout, CHANGE_TIMEOUT)}
        if remove:
            kwargs["json"] = {"remove": True}
        response = await self._request("DELETE", path, **kwargs)
        if response.status_code == 204:
            return "stopped"
        if response.status_code == 202:
            return "stopping"
        raise _status_error("DELETE", path, response)

    async def progress(self, user: str, server: str) -> AsyncIterator[ProgressEvent]:
        """The spawn progress event stream, one event at a time, until ready or failed.

        Keepalives (blank lines) and anything not starting with `data:` are skipped.
        """
        import httpx  # loaded by __init__

        path = _server_path(user, server) + "/progress"
        url = self._url(path)
        timeout = httpx.Timeout(self.timeout, read=max(self.timeout, PROGRESS_READ_TIMEOUT))
        try:
            async with self._client.stream("GET", url, timeout=timeout) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise _status_error("GET", path, response)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    try:
                        event = json.loads(line[5:].strip())
                    except ValueError:
                        continue
                    if not isinstance(event, dict):
                        continue
                    progress = event.get("progress")
                    yield ProgressEvent(
                        progress=progress if isinstance(progress, int) else None,
                        message=str(event.get("message") or ""),
                        ready=bool(event.get("ready")),
                        failed=bool(event.get("failed")),
                        url=str(event.get("url") or ""),
                    )
                    if event.get("ready") or event.get("failed"):
                        return
        except httpx.TimeoutException:
            raise HubError(f"spawn progress of {user}/{server} went silent for {PROGRESS_READ_TIMEOUT:g} s") from None
        except httpx.HTTPError as e:
            raise HubError(f"spawn progress of {user}/{server} failed: {_reason(e)}") from None


def _reason(error: Exception) -> str:
    """The innermost, human part of a connection error, without any request details."""
    cause: BaseException = error
    while (inner := cause.__cause__ or cause.__context__) is not None:
        cause = inner
    text = str(cause) or type(cause).__name__
    return text[:200]


def _status_error(method: str, path: str, response: httpx.Response) -> HubError:
    """A HubError from an error answer, using the hub's own JSON message when there is one."""
    message = ""
    try:
        body = response.json()
        if isinstance(body, dict):
            message = str(body.get("message") or "")
    except ValueError:
        pass
    status = response.status_code
    where = f"{method} /{path.lstrip('/')}"
    if status == 403:
        hint = message or "the token lacks the scope for this call"
        return HubError(f"hub refused {where} (403): {hint}", status=status)
    if status == 401:
        return HubError(f"hub refused the token for {where} (401): it is unknown, expired or revoked", status=status)
    if status == 404 and not message:
        message = "not found; is the hub API URL right (it ends in /hub/api)?"
    return HubError(f"hub answered {where} with {status}: {message or response.reason_phrase}", status=status)
