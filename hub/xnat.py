"""The hub's connection to XNAT: one shared, non-blocking HTTP client with TLS, timeouts and session hygiene.

Both the login (the user's own Basic credentials) and the spawn (the service account) talk to XNAT through
`XnatClient`. Errors come out as `XnatError`, whose message is safe to show the user (no secrets, no body dumps),
with a separate `log_detail` for the operator's log line.

XNAT opens a server-side session for every Basic-authenticated request ("too many can overwhelm Tomcat"). Each
exchange here therefore reuses the JSESSIONID of its first answer for its later requests, and ends the session
with `DELETE /data/JSESSION` afterwards. The shared client never stores cookies, so one user's session can never
ride along on another user's request.

About 500 lines, kept whole on purpose: the client's options, its TLS, the session exchange and the mapping of
every failure to a user-safe `XnatError` are one concern (talking to XNAT), and the secret-handling rules (what
a message or log line may show) are easiest to check when they sit in one file.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import ssl
import unicodedata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from traitlets import Bool, Float, Integer, TraitError, Unicode, default, validate
from traitlets.config import SingletonConfigurable

from hub import settings

USERNAME_MAX_CHARS = 255
LOG_NAME_CHARS = 64
# Characters that have a meaning in URLs, paths or Basic auth; XNAT never puts them in a username.
_FORBIDDEN_CHARS = set('/\\:?#%;')
# Unicode categories that are invisible or ambiguous in a name: controls, format, separators, unassigned.
_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"}
SESSION_COOKIE = "JSESSIONID"


def loggable_name(name: object) -> str:
    """A user-supplied name as it may appear in a log line: repr-escaped, at most 64 characters of it."""
    text = name if isinstance(name, str) else str(name)
    if len(text) <= LOG_NAME_CHARS:
        return repr(text)
    return f"{text[:LOG_NAME_CHARS]!r}...({len(text)} chars)"


def name_problem(name: object, *, what: str = "username", allow_empty: bool = False) -> str | None:
    """Why `name` cannot be sent to XNAT as a path segment (a user-facing sentence), or None if it can.

    Refused: empty, longer than 255 characters, any whitespace, control, format or unassigned character, any of
    ``/ \\ : ? # % ;``, ``..`` anywhere, and ``.`` alone. Everything else is kept exactly as typed (case included) and
    URL-quoted on the way out.
    """
    if not isinstance(name, str):
        return f"The {what} is missing."
    if name == "":
        return None if allow_empty else f"The {what} is empty."
    if len(name) > USERNAME_MAX_CHARS:
        return f"The {what} is longer than {USERNAME_MAX_CHARS} characters."
    if ".." in name or name == ".":
        return f"The {what} must not be '.' or contain '..'."
    for ch in name:
        if ch in _FORBIDDEN_CHARS:
            return f"The {what} must not contain {ch!r}."
        if ch.isspace() or unicodedata.category(ch) in _FORBIDDEN_CATEGORIES:
            return f"The {what} must not contain spaces or control characters."
    return None


def segment(value: str) -> str:
    """One URL path segment, every reserved character quoted (a `/` in a name never makes a new segment)."""
    return quote(value, safe="")


class XnatError(Exception):
    """XNAT could not answer as needed. `str(e)` is safe to show a user; `log_detail` is for the operator."""

    def __init__(self, message: str, *, log_detail: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.log_detail = log_detail or message
        self.status = status


UNREADABLE = "XNAT sent an answer the hub cannot read. Try again later, or tell your administrator."


def unreadable(log_detail: str, status: int | None = None) -> XnatError:
    """XNAT answered, but not with what the hub can use (HTML, broken JSON, wrong types, too long)."""
    return XnatError(UNREADABLE, log_detail=log_detail, status=status)


class XnatNotFound(XnatError):
    """XNAT answered 404: nothing is stored for what we asked (e.g. no launch options for this server)."""


class XnatUnreachable(XnatError):
    """No usable answer at all: connection refused, DNS failure, TLS failure or timeout."""


@dataclass(frozen=True)
class XnatReply:
    status: int
    body: bytes

    def json(self, what: str) -> Any:
        """The body as JSON; XnatError naming `what` if it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            raise unreadable(f"{what}: HTTP {self.status} body is not JSON ({len(self.body)} bytes)",
                             self.status) from None


def _no_cookie_jar() -> http.cookiejar.CookieJar:
    """A cookie jar that stores nothing: the client is shared between users.

    (A CookieJar, not httpx.Cookies: httpx copies the cookies of a Cookies object into a jar of its own, losing
    the policy.)
    """
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


class XnatClient(SingletonConfigurable):
    """Talks to XNAT for the hub: logins with the user's credentials, launch options with the service account.

    One instance per process (`get_xnat_client`), holding one `httpx.AsyncClient` with bounded timeouts and the
    TLS settings below. Every option defaults from its environment variable (see docs/hub-config.md).
    """

    url = Unicode(
        help="""XNAT's base URL, e.g. https://xnat.example.org (no trailing slash needed).

        Default: $JH_XNAT_URL. Required: without it every login and every spawn is refused.
        """,
    ).tag(config=True)

    @default("url")
    def _default_url(self) -> str:
        return settings.env_url("JH_XNAT_URL", "") or ""

    @validate("url")
    def _check_url(self, proposal: Any) -> str:
        value: str = proposal["value"]
        if value == "":
            return value
        try:
            return settings.check_http_url("XnatClient.url", value)
        except settings.SettingsError as e:
            raise TraitError(str(e)) from None

    service_username = Unicode(
        "jupyterhub",
        help="""XNAT account the hub uses to read launch options (it needs XNAT's JupyterHub role).

        Default: $JH_XNAT_USERNAME, else "jupyterhub" (the account XNAT's plugin creates).
        """,
    ).tag(config=True)

    @default("service_username")
    def _default_service_username(self) -> str:
        return settings.env_str("JH_XNAT_USERNAME", "jupyterhub") or "jupyterhub"

    service_password = Unicode(
        help="""Password of the XNAT service account. Never logged.

        Default: $JH_XNAT_PASSWORD, or the contents of the file named by $JH_XNAT_PASSWORD_FILE (Docker secret).
        """,
    ).tag(config=True)

    @default("service_password")
    def _default_service_password(self) -> str:
        return settings.env_secret("JH_XNAT_PASSWORD", "") or ""

    timeout = Float(
        10.0,
        help="""Seconds allowed for one whole request to XNAT (connect, send, wait, read), after which the
        login or spawn is refused with "XNAT is unreachable". Independent of Spawner.http_timeout.

        Default: $JH_XNAT_TIMEOUT, else 10.
        """,
    ).tag(config=True)

    @default("timeout")
    def _default_timeout(self) -> float:
        return settings.env_positive_float("JH_XNAT_TIMEOUT", 10.0)

    @validate("timeout")
    def _check_timeout(self, proposal: Any) -> float:
        value: float = proposal["value"]
        if not 0 < value < float("inf"):
            raise TraitError("XnatClient.timeout must be a number of seconds greater than 0")
        return value

    max_connections = Integer(
        100,
        help="""Most connections open to XNAT at once; further requests queue (within `timeout`).""",
    ).tag(config=True)

    max_keepalive_connections = Integer(
        10,
        help="""Idle connections kept open to XNAT for reuse. Keep it small: with many idle connections httpcore's
        pool gets slower (100 concurrent logins took 1.8 s with 100 kept, 0.2 s with 10; see bench/bench_login.py).""",
    ).tag(config=True)

    max_body_bytes = Integer(
        4 * 1024 * 1024,
        help="""Largest XNAT answer the hub reads; a longer one is treated as unreadable.""",
    ).tag(config=True)

    tls_verify = Bool(
        True,
        help="""Verify XNAT's TLS certificate and host name. Turn off only for a test XNAT; a warning is logged.

        Default: $JH_TLS_VERIFY (true/false), else true.
        """,
    ).tag(config=True)

    @default("tls_verify")
    def _default_tls_verify(self) -> bool:
        return settings.env_bool("JH_TLS_VERIFY", True)

    tls_ca_cert = Unicode(
        help="""PEM file of the CA certificate(s) that sign XNAT's certificate. When set, only these CAs are
        trusted for XNAT; when empty, the system's CA store is used.

        Default: $JH_TLS_CA_CERT.
        """,
    ).tag(config=True)

    @default("tls_ca_cert")
    def _default_tls_ca_cert(self) -> str:
        return settings.env_file("JH_TLS_CA_CERT") or ""

    tls_client_cert = Unicode(
        help="""PEM client certificate the hub presents to XNAT (mutual TLS). It may hold the key too;
        otherwise set tls_client_key.

        Default: $JH_TLS_CLIENT_CERT.
        """,
    ).tag(config=True)

    @default("tls_client_cert")
    def _default_tls_client_cert(self) -> str:
        return settings.env_file("JH_TLS_CLIENT_CERT") or ""

    tls_client_key = Unicode(
        help="""PEM private key (unencrypted) of tls_client_cert, when it is not in the certificate file.

        Default: $JH_TLS_CLIENT_KEY.
        """,
    ).tag(config=True)

    @default("tls_client_key")
    def _default_tls_client_key(self) -> str:
        return settings.env_file("JH_TLS_CLIENT_KEY") or ""

    _http: httpx.AsyncClient | None = None
    _closers: set[asyncio.Task[None]]

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._closers = set()

    @classmethod
    def check_environment(cls) -> None:
        """Read every XNAT variable and load the TLS files now, so a bad value stops the hub at startup."""
        settings.check_environment(cls)
        cls().ssl_context()

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS settings for XNAT as one context. SettingsError if a file is not usable."""
        if self.tls_client_key and not self.tls_client_cert:
            raise settings.SettingsError("JH_TLS_CLIENT_KEY is set without JH_TLS_CLIENT_CERT")
        try:
            if self.tls_ca_cert:
                context = ssl.create_default_context(cafile=self.tls_ca_cert)
            else:
                context = ssl.create_default_context()
                if context.cert_store_stats()["x509_ca"] == 0:
                    # no system CA store (a slim image): fall back to the bundle httpx ships with
                    import certifi

                    context.load_verify_locations(cafile=certifi.where())
        except (ssl.SSLError, OSError) as e:
            raise settings.SettingsError(f"JH_TLS_CA_CERT: {self.tls_ca_cert} is not a PEM CA bundle ({e})") from None
        if self.tls_client_cert:
            try:
                context.load_cert_chain(self.tls_client_cert, self.tls_client_key or None)
            except (ssl.SSLError, OSError) as e:
                raise settings.SettingsError(
                    f"JH_TLS_CLIENT_CERT/JH_TLS_CLIENT_KEY: cannot load the client certificate and key ({e})"
                ) from None
        if not self.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    @property
    def http(self) -> httpx.AsyncClient:
        """The shared httpx client, made on first use (inside the running event loop)."""
        if self._http is None:
            if not self.tls_verify and self.url.startswith("https:"):
                self.log.warning("JH_TLS_VERIFY is off: XNAT's certificate is not checked")
            self._http = httpx.AsyncClient(
                verify=self.ssl_context(),
                timeout=httpx.Timeout(self.timeout),
                limits=httpx.Limits(
                    max_connections=self.max_connections, max_keepalive_connections=self.max_keepalive_connections
                ),
                cookies=_no_cookie_jar(),
                follow_redirects=False,
                # proxies and SSL_CERT_FILE from the environment do not apply: XNAT's TLS is set here only
                trust_env=False,
            )
        return self._http

    async def aclose(self) -> None:
        """Finish closing XNAT sessions, then close the connections."""
        await self.drain()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def drain(self) -> None:
        """Wait until every `DELETE /data/JSESSION` sent so far has finished."""
        while self._closers:
            await asyncio.gather(*list(self._closers), return_exceptions=True)

    def _require_url(self) -> str:
        if not self.url:
            raise XnatError(
                "The hub is not connected to an XNAT. Tell your administrator.",
                log_detail="XnatClient.url (JH_XNAT_URL) is not set",
            )
        return self.url

    async def request(
        self, method: str, path: str, *, what: str, auth: tuple[str, str] | None, session: str | None = None
    ) -> tuple[XnatReply, str | None]:
        """One bounded request. Returns the reply and the session id XNAT set (if any).

        `what` names the request in log details; the path is not logged (it holds an unbounded username).
        Raises XnatUnreachable for anything that is not an HTTP answer.
        """
        url = self._require_url() + path
        headers = {"Accept": "application/json"}
        if session:
            headers["Cookie"] = f"{SESSION_COOKIE}={session}"
        try:
            async with asyncio.timeout(self.timeout):
                async with self.http.stream(method, url, auth=auth, headers=headers) as response:
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > self.max_body_bytes:
                            raise unreadable(f"{what}: answer longer than {self.max_body_bytes} bytes",
                                             response.status_code)
                    new_session = response.cookies.get(SESSION_COOKIE)
                    return XnatReply(response.status_code, bytes(body)), new_session
        except TimeoutError:
            raise XnatUnreachable(
                "XNAT is unreachable (it did not answer in time). Try again later.",
                log_detail=f"{what}: no answer within {self.timeout:g} s",
            ) from None
        except httpx.TimeoutException:
            raise XnatUnreachable(
                "XNAT is unreachable (it did not answer in time). Try again later.",
                log_detail=f"{what}: timed out after {self.timeout:g} s",
            ) from None
        except httpx.TransportError as e:
            raise XnatUnreachable(
                "XNAT is unreachable. Try again later.",
                log_detail=f"{what}: {_transport_reason(e)}",
            ) from None

    @asynccontextmanager
    async def exchange(self, auth: tuple[str, str]) -> AsyncIterator[XnatExchange]:
        """Requests made with one set of credentials, sharing one XNAT session that is ended afterwards."""
        conversation = XnatExchange(self, auth)
        try:
            yield conversation
        finally:
            if conversation.session is not None:
                self._end_session(conversation.session)

    def _end_session(self, session: str) -> None:
        """Send `DELETE /data/JSESSION` in the background: the login need not wait for it."""

        async def end() -> None:
            try:
                await self.request("DELETE", "/data/JSESSION", what="end session", auth=None, session=session)
            except XnatError as e:
                self.log.debug("Could not end an XNAT session: %s", e.log_detail)

        task = asyncio.get_running_loop().create_task(end())
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    async def get_user_options(self, username: str, servername: str) -> dict[str, Any]:
        """The XnatUserOptions JSON XNAT stored for this server ("" = the default server).

        Raises XnatNotFound (404: nothing stored) or XnatError, both with a message for the user.
        """
        problem = name_problem(username) or name_problem(servername, what="server name", allow_empty=True)
        if problem:
            raise XnatError(problem, log_detail=f"refused user {loggable_name(username)} server "
                            f"{loggable_name(servername)}: {problem}")
        path = f"/xapi/jupyterhub/users/{segment(username)}/server"
        if servername:
            path += f"/{segment(servername)}"
        path += "/user-options"
        if not self.service_password:
            raise XnatError(
                "The hub has no XNAT service account password. Tell your administrator.",
                log_detail="XnatClient.service_password (JH_XNAT_PASSWORD or JH_XNAT_PASSWORD_FILE) is not set",
            )
        where = f"user-options of {loggable_name(username)}/{loggable_name(servername)}"
        async with self.exchange((self.service_username, self.service_password)) as xnat:
            reply = await xnat.get(path, what=where)
        if reply.status == 404:
            raise XnatNotFound(
                "XNAT has no launch options stored for this server. Start it again from XNAT.",
                log_detail=f"{where}: 404 from XNAT",
                status=404,
            )
        if reply.status in (401, 403):
            raise XnatError(
                "XNAT refused the hub's service account. Tell your administrator.",
                log_detail=f"{where}: HTTP {reply.status} for service account "
                f"{loggable_name(self.service_username)}: check JH_XNAT_USERNAME/JH_XNAT_PASSWORD and that the "
                "account is enabled and has XNAT's JupyterHub role",
                status=reply.status,
            )
        check_status(reply, where)
        options = reply.json(where)
        if not isinstance(options, dict):
            raise XnatError(
                "XNAT sent launch options the hub cannot read. Tell your administrator.",
                log_detail=f"{where}: JSON is a {type(options).__name__}, not an object",
                status=reply.status,
            )
        return options


class XnatExchange:
    """Requests with one set of credentials; the first answer's session cookie is reused by the later ones."""

    def __init__(self, client: XnatClient, auth: tuple[str, str]):
        self._client = client
        self._auth = auth
        self.session: str | None = None

    async def get(self, path: str, *, what: str) -> XnatReply:
        reply, new_session = await self._client.request(
            "GET", path, what=what, auth=self._auth, session=self.session
        )
        if new_session and new_session != self.session:
            if self.session is not None:
                self._client._end_session(self.session)
            self.session = new_session
        return reply


def check_status(reply: XnatReply, what: str) -> None:
    """XnatError for any answer that is not 2xx (5xx: XNAT's own failure; others: unexpected)."""
    if 200 <= reply.status < 300:
        return
    if reply.status >= 500:
        raise XnatError(
            f"XNAT failed (HTTP {reply.status}). Try again later.",
            log_detail=f"{what}: HTTP {reply.status} from XNAT",
            status=reply.status,
        )
    raise XnatError(
        f"XNAT gave an unexpected answer (HTTP {reply.status}). Tell your administrator.",
        log_detail=f"{what}: unexpected HTTP {reply.status} from XNAT",
        status=reply.status,
    )


def _transport_reason(error: httpx.TransportError) -> str:
    """A short operator-facing reason for a failed connection (TLS problems named as such)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted ({cause.verify_message}); see JH_TLS_CA_CERT"
        if isinstance(cause, ssl.SSLError):
            return f"TLS failed ({cause.reason or cause})"
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, httpx.ConnectError):
        return f"cannot connect ({error or 'connection refused'})"
    return f"{type(error).__name__} ({error})"


def get_xnat_client(parent: Any = None) -> XnatClient:
    """The process-wide XnatClient, configured from `parent`'s config the first time it is asked for."""
    return XnatClient.instance(parent=parent)
