"""The XNAT connectivity check, one step at a time: DNS, TCP, TLS, HTTP, the service account and its role,
the JupyterHub plugin, the hub API URL and token XNAT holds, and the path-translation roots on this node.

`check(settings)` is an async generator of CheckStep. A step that cannot run because an earlier one failed is
SKIP with the reason. Secrets (the service account's password, the hub token XNAT holds) are used, never shown.

`console.backend.xnat_check_hub_network` runs this module once more from inside the hub's overlay network; it
hands this module's source (and models.py's) to a one-off service's `python -c`, so this module imports nothing
of the console but models at run time. That is also why it is one module over 450 lines: it must stand alone.

As a script (what that one-off service runs):  python -m console.backend.xnat_check [--json] [--no-paths]
reading the hub's variables: JH_XNAT_URL, JH_XNAT_USERNAME, JH_XNAT_PASSWORD(_FILE), JH_TLS_VERIFY,
JH_TLS_CA_CERT, JH_XNAT_TIMEOUT. Exit code 0 when no step failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import ssl
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx

from console.backend.models import CheckStatus, CheckStep

if TYPE_CHECKING:
    pass

SERVICE_ROLE = "JupyterHub"
DEFAULT_HUB_TOKEN = "secret-token"  # the plugin's default jupyterHubToken
EXPIRY_WARN_DAYS = 21
PATH_PREFS = (
    ("archive root", "pathTranslationArchiveDockerPrefix"),
    ("workspace root", "pathTranslationWorkspaceDockerPrefix"),
)


@dataclass
class XnatCheckSettings:
    xnat_url: str | None
    username: str | None
    password: str | None = field(default=None, repr=False)
    verify: bool = True
    ca_bundle: str | None = None
    timeout: float = 10.0
    check_paths: bool = True


def _ssl_context(settings: XnatCheckSettings) -> ssl.SSLContext:
    if not settings.verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=settings.ca_bundle or None)


def _skip_rest(names: list[str], reason: str) -> list[CheckStep]:
    return [CheckStep(name, CheckStatus.SKIP, reason) for name in names]


class _Blocked(Exception):
    """A step failed that the later steps depend on: the run ends there, the rest marked skipped."""

    def __init__(self, step: CheckStep, why: str) -> None:
        super().__init__(step.reason)
        self.step = step
        self.why = why


LATER = ["DNS", "TCP", "TLS", "HTTP", "service account", "JupyterHub plugin", "hub API URL", "hub token",
         "archive root", "workspace root"]  # fmt: skip


def _after(name: str) -> list[str]:
    return LATER[LATER.index(name) + 1 :]


async def check(settings: XnatCheckSettings) -> AsyncIterator[CheckStep]:
    """Run every step in order; yields each as soon as it is known."""
    try:
        async for step in _steps(settings):
            yield step
    except _Blocked as blocked:
        yield blocked.step
        later = _after(blocked.step.name) if blocked.step.name in LATER else LATER
        for step in _skip_rest(later, blocked.why):
            yield step


@dataclass(frozen=True)
class _Target:
    """Where XNAT is, from its configured URL."""

    url: str
    scheme: str
    host: str
    port: int


def _configuration(settings: XnatCheckSettings) -> _Target:
    """Where XNAT is, from its URL; the run stops at a failed `configuration` step when there is none usable."""
    url = (settings.xnat_url or "").rstrip("/")
    parts = urlsplit(url)
    if not url or parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Blocked(CheckStep(
            "configuration",
            CheckStatus.FAIL,
            f"XNAT URL is {'not set' if not url else repr(url[:60])}",
            "Set JH_XNAT_URL (or xnat_url in the config file) to http(s)://host[:port].",
        ), "no XNAT URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return _Target(url, parts.scheme, parts.hostname, port)


async def _dns(target: _Target, settings: XnatCheckSettings) -> CheckStep:
    host, port, timeout = target.host, target.port, settings.timeout
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
        addresses = sorted({str(info[4][0]) for info in infos})
        return CheckStep("DNS", CheckStatus.PASS, f"{host} resolves to {', '.join(addresses[:3])}")
    except (TimeoutError, OSError) as e:
        raise _Blocked(CheckStep(
            "DNS",
            CheckStatus.FAIL,
            f"{host} does not resolve: {e}",
            "Check the name in JH_XNAT_URL and this node's DNS (/etc/resolv.conf, /etc/hosts).",
        ), "DNS failed") from None

async def _tcp(target: _Target, settings: XnatCheckSettings) -> CheckStep:
    host, port, timeout = target.host, target.port, settings.timeout
    started = time.monotonic()
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        writer.close()
        return CheckStep(
            "TCP", CheckStatus.PASS, f"connected to {host}:{port} in {(time.monotonic() - started) * 1000:.0f} ms"
        )
    except (TimeoutError, OSError) as e:
        if isinstance(e, asyncio.TimeoutError):
            reason = f"timed out after {timeout:g} s"
        else:
            reason = os.strerror(e.errno) if e.errno else str(e)
        raise _Blocked(CheckStep(
            "TCP",
            CheckStatus.FAIL,
            f"cannot connect to {host}:{port}: {reason}",
            "Is XNAT running? Check the port in JH_XNAT_URL and any firewall between this node and XNAT.",
        ), "TCP failed") from None

async def _tls(target: _Target, settings: XnatCheckSettings) -> CheckStep:
    host, port, timeout = target.host, target.port, settings.timeout
    if target.scheme == "https":
        try:
            ctx = _ssl_context(settings)
        except (OSError, ssl.SSLError) as e:
            raise _Blocked(CheckStep(
                "TLS",
                CheckStatus.FAIL,
                f"cannot load the CA bundle {settings.ca_bundle}: {e}",
                "Point ca_bundle / JH_TLS_CA_CERT at a PEM file.",
            ), "TLS failed") from None
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=ctx, server_hostname=host), timeout
            )
            cert = writer.get_extra_info("peercert") or {}
            writer.close()
            if not settings.verify:
                return CheckStep(
                    "TLS",
                    CheckStatus.WARN,
                    "certificate NOT verified (verification is off)",
                    "Turn verification back on and give the CA bundle instead.",
                )
            else:
                days = (
                    (ssl.cert_time_to_seconds(cert["notAfter"]) - time.time()) / 86400 if "notAfter" in cert else None
                )
                if days is not None and days < 0:
                    return CheckStep(
                        "TLS",
                        CheckStatus.FAIL,
                        f"certificate expired {-days:.0f} days ago",
                        "Renew XNAT's certificate.",
                    )
                elif days is not None and days < EXPIRY_WARN_DAYS:
                    return CheckStep(
                        "TLS",
                        CheckStatus.WARN,
                        f"certificate verified, but expires in {days:.0f} days",
                        "Renew XNAT's certificate soon.",
                    )
                else:
                    expires = f", expires in {days:.0f} days" if days is not None else ""
                    return CheckStep("TLS", CheckStatus.PASS, f"certificate verified{expires}")
        except ssl.SSLCertVerificationError as e:
            raise _Blocked(CheckStep(
                "TLS",
                CheckStatus.FAIL,
                f"certificate not trusted: {e.verify_message}",
                "Give the CA that signed XNAT's certificate (ca_bundle / JH_CONSOLE_CA_BUNDLE / JH_TLS_CA_CERT).",
            ), "TLS failed") from None
        except (TimeoutError, OSError, ssl.SSLError) as e:
            raise _Blocked(CheckStep(
                "TLS",
                CheckStatus.FAIL,
                f"TLS handshake failed: {e or 'timed out'}",
                "Is this port speaking TLS? Check https:// against the port in JH_XNAT_URL.",
            ), "TLS failed") from None
    else:
        return CheckStep(
            "TLS",
            CheckStatus.WARN,
            "plain HTTP: the service account's password travels unencrypted",
            "Use https:// for XNAT outside a private network.",
        )


async def _steps(settings: XnatCheckSettings) -> AsyncIterator[CheckStep]:
    target = _configuration(settings)
    yield await _dns(target, settings)
    yield await _tcp(target, settings)
    yield await _tls(target, settings)
    url, parts, timeout = target.url, target, settings.timeout
    try:
        verify: bool | ssl.SSLContext = _ssl_context(settings) if parts.scheme == "https" else True
    except (OSError, ssl.SSLError):
        verify = False
    auth = (settings.username, settings.password) if settings.username and settings.password else None
    async with httpx.AsyncClient(base_url=url, verify=verify, timeout=timeout, follow_redirects=False) as client:
        try:
            async for step in _http_steps(client, settings, auth):
                yield step
        finally:
            if auth:
                with contextlib.suppress(httpx.HTTPError):  # end the session XNAT opened for us, as the hub does
                    await client.delete("/data/JSESSION")


async def _http_steps(
    client: httpx.AsyncClient, settings: XnatCheckSettings, auth: tuple[str, str] | None
) -> AsyncIterator[CheckStep]:
    yield await _http(client)
    yield await _service_account(client, settings, auth)
    plugin, prefs = await _plugin(client, auth)
    yield plugin
    if not prefs:
        for step in _skip_rest(_after("JupyterHub plugin"), "the plugin did not answer"):
            yield step
        return
    prefs = await _with_hub_token(client, auth, prefs)
    async for step in _hub_steps(prefs, settings):
        yield step
    for name, pref in PATH_PREFS:
        yield _path_root(name, pref, prefs, settings)


async def _http(client: httpx.AsyncClient) -> CheckStep:
    r: httpx.Response | None
    try:
        r = await client.get("/")
        if r.status_code >= 500:
            raise _Blocked(CheckStep(
                "HTTP", CheckStatus.FAIL, f"GET / answered {r.status_code}", "XNAT is up but failing; see its logs."
            ), "HTTP failed")
        return CheckStep("HTTP", CheckStatus.PASS, f"GET / answered {r.status_code}")
    except httpx.HTTPError as e:
        raise _Blocked(CheckStep(
            "HTTP",
            CheckStatus.FAIL,
            f"GET / failed: {type(e).__name__}: {str(e)[:120]}",
            "Something answers on the port but not as an HTTP server.",
        ), "HTTP failed") from None

async def _service_account(
    client: httpx.AsyncClient, settings: XnatCheckSettings, auth: tuple[str, str] | None
) -> CheckStep:
    r: httpx.Response | None
    if auth is None:
        raise _Blocked(CheckStep(
            "service account",
            CheckStatus.FAIL,
            "no service account username/password configured",
            "Set JH_XNAT_USERNAME and JH_XNAT_PASSWORD (or JH_XNAT_PASSWORD_FILE).",
        ), "no service account")
    user = settings.username or ""
    try:
        r = await client.get(f"/xapi/users/{quote(user, safe='')}/roles", auth=auth)
    except httpx.HTTPError as e:
        r = None
        reason = f"request failed: {type(e).__name__}"
    if r is not None and r.status_code == 200:
        try:
            roles = r.json()
            roles = [str(x) for x in roles] if isinstance(roles, list) else None
        except ValueError:
            roles = None
        if roles is None:
            raise _Blocked(CheckStep(
                "service account",
                CheckStatus.FAIL,
                "the roles answer is not a JSON list",
                "Is this URL really XNAT (and not a login page in front of it)?",
            ), "service account failed")
        if SERVICE_ROLE in roles:
            return CheckStep("service account", CheckStatus.PASS, f"{user} logs in and holds the {SERVICE_ROLE} role")
        else:
            return CheckStep(
                "service account",
                CheckStatus.FAIL,
                f"{user} logs in but lacks the {SERVICE_ROLE} role (has: {', '.join(roles) or 'none'})",
                f"In XNAT: Administer > Users > {user} > add the {SERVICE_ROLE} role.",
            )
    else:
        status = r.status_code if r is not None else None
        if status == 401:
            reason, hint = (
                f"XNAT refused {user}'s password (401)",
                "Check JH_XNAT_USERNAME/JH_XNAT_PASSWORD; is the account enabled?",
            )
        elif status is not None:
            reason, hint = (
                f"/xapi/users/{user}/roles answered {status}",
                "The account may be disabled or not allowed to read its roles.",
            )
        else:
            hint = "XNAT stopped answering; run the check again."
        raise _Blocked(CheckStep("service account", CheckStatus.FAIL, reason, hint), "service account failed")

async def _plugin(client: httpx.AsyncClient, auth: tuple[str, str] | None) -> tuple[CheckStep, dict[str, Any]]:
    """The JupyterHub plugin answers with its preferences (empty when it does not)."""
    prefs: dict[str, Any] = {}
    try:
        r = await client.get("/xapi/jupyterhub/preferences", auth=auth)
        if r.status_code == 200 and isinstance(r.json(), dict):
            prefs = r.json()
            return CheckStep(
                "JupyterHub plugin",
                CheckStatus.PASS,
                f"/xapi/jupyterhub/preferences answered ({len(prefs)} preferences)",
            ), prefs
        elif r.status_code == 404:
            return CheckStep(
                "JupyterHub plugin",
                CheckStatus.FAIL,
                "/xapi/jupyterhub/preferences: 404",
                "Install the XNAT JupyterHub plugin and restart XNAT.",
            ), prefs
        else:
            return CheckStep(
                "JupyterHub plugin",
                CheckStatus.FAIL,
                f"/xapi/jupyterhub/preferences answered {r.status_code}",
                "Check the plugin is enabled and the service account may read its preferences.",
            ), prefs
    except (httpx.HTTPError, ValueError) as e:
        return CheckStep(
            "JupyterHub plugin",
            CheckStatus.FAIL,
            f"/xapi/jupyterhub/preferences: {type(e).__name__}",
            "The answer was not JSON; is the plugin installed?",
        ), prefs


async def _with_hub_token(
    client: httpx.AsyncClient, auth: tuple[str, str] | None, prefs: dict[str, Any]
) -> dict[str, Any]:
    """The preferences with the hub token XNAT holds, which older plugins list only on its own path."""
    if "jupyterHubToken" not in prefs:
        try:
            r = await client.get("/xapi/jupyterhub/preferences/jupyterHubToken", auth=auth)
            if r.status_code == 200 and isinstance(r.json(), dict):
                prefs = {**prefs, **r.json()}
        except (httpx.HTTPError, ValueError):
            pass
    return prefs


def _path_root(name: str, pref: str, prefs: dict[str, Any], settings: XnatCheckSettings) -> CheckStep:
    """A path-translation root XNAT names exists on this node (notebook mounts depend on it)."""
    root = str(prefs.get(pref) or "")
    if not settings.check_paths:
        return CheckStep(name, CheckStatus.SKIP, "not checked from here (paths are checked on the node)")
    if not root:
        return CheckStep(name, CheckStatus.SKIP, f"{pref} is not set: XNAT's own paths are used as they are")
    if Path(root).is_dir():
        return CheckStep(name, CheckStatus.PASS, f"{root} exists on this node")
    else:
        return CheckStep(
            name,
            CheckStatus.FAIL,
            f"{pref} = {root} does not exist on this node",
            "Mount XNAT's archive/workspace here (NFS/bind) or fix the path-translation preference; "
            "notebook tasks are rejected with 'invalid mount config' otherwise.",
        )


async def _hub_steps(prefs: dict[str, Any], settings: XnatCheckSettings) -> AsyncIterator[CheckStep]:
    api_url = str(prefs.get("jupyterHubApiUrl") or "").rstrip("/")
    token = prefs.get("jupyterHubToken")
    if not api_url:
        yield CheckStep(
            "hub API URL",
            CheckStatus.FAIL,
            "XNAT has no jupyterHubApiUrl preference",
            "In XNAT's JupyterHub plugin settings, set the hub API URL (…/jupyterhub/hub/api).",
        )
        yield CheckStep("hub token", CheckStatus.SKIP, "no hub API URL")
        return
    async with httpx.AsyncClient(timeout=settings.timeout, follow_redirects=False, verify=_hub_verify(settings)) as hub:
        try:
            r = await hub.get(api_url + "/")
            version = r.json().get("version") if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError) as e:
            r, version = None, None
            reason = f"{type(e).__name__}: {str(e)[:100]}"
        if version:
            yield CheckStep("hub API URL", CheckStatus.PASS, f"{api_url} answers (JupyterHub {version})")
        else:
            why = f"answered {r.status_code}" if r is not None else reason
            yield CheckStep(
                "hub API URL",
                CheckStatus.FAIL,
                f"XNAT's hub API URL {api_url} {why}",
                "XNAT reaches the hub by this URL: fix jupyterHubApiUrl (it ends in /hub/api). Names "
                "differ by network; compare with the check run from inside the hub's network.",
            )
            yield CheckStep("hub token", CheckStatus.SKIP, "the hub API URL does not answer")
            return
        if not isinstance(token, str) or not token:
            yield CheckStep(
                "hub token",
                CheckStatus.FAIL,
                "XNAT holds no jupyterHubToken (or the service account may not read it)",
                f"Give the service account the {SERVICE_ROLE} role and set the token in XNAT's plugin settings.",
            )
            return
        try:
            r = await hub.get(api_url + "/info", headers={"Authorization": f"token {token}"})
        except httpx.HTTPError as e:
            yield CheckStep(
                "hub token", CheckStatus.FAIL, f"GET /info failed: {type(e).__name__}", "Run the check again."
            )
            return
        default = " (it is still the plugin's default)" if token == DEFAULT_HUB_TOKEN else ""
        if r.status_code == 200:
            yield CheckStep("hub token", CheckStatus.PASS, "the hub accepts the token XNAT holds")
        elif r.status_code in (401, 403):
            yield CheckStep(
                "hub token",
                CheckStatus.FAIL,
                f"the hub refuses the token XNAT holds ({r.status_code}){default}",
                "Set XNAT's jupyterHubToken to the hub's XNAT service token (the secret "
                "xnat_jupyterhub_xnat_service_token); it needs read:hub, admin:users, admin:servers, tokens.",
            )
        else:
            yield CheckStep(
                "hub token",
                CheckStatus.FAIL,
                f"GET /info with XNAT's token answered {r.status_code}",
                "See the hub's log.",
            )


def _hub_verify(settings: XnatCheckSettings) -> bool | ssl.SSLContext:
    try:
        return _ssl_context(settings)
    except (OSError, ssl.SSLError):
        return True


# -- script -------------------------------------------------------------------------------------


def settings_from_env(env: dict[str, str] | None = None, *, check_paths: bool = True) -> XnatCheckSettings:
    """The hub's own variables (see hub/xnat.py)."""
    env = dict(os.environ) if env is None else env
    password = env.get("JH_XNAT_PASSWORD") or None
    if not password and env.get("JH_XNAT_PASSWORD_FILE"):
        try:
            password = Path(env["JH_XNAT_PASSWORD_FILE"]).read_text().strip() or None
        except OSError:
            password = None
    try:
        timeout = float(env.get("JH_XNAT_TIMEOUT") or 10)
    except ValueError:
        timeout = 10.0
    return XnatCheckSettings(
        xnat_url=env.get("JH_XNAT_URL"),
        username=env.get("JH_XNAT_USERNAME") or "jupyterhub",
        password=password,
        verify=(env.get("JH_TLS_VERIFY") or "true").lower() not in ("0", "false", "no", "off"),
        ca_bundle=env.get("JH_TLS_CA_CERT") or None,
        timeout=timeout,
        check_paths=check_paths,
    )


async def _run(settings: XnatCheckSettings, as_json: bool) -> int:
    failed = False
    async for step in check(settings):
        failed |= step.status == CheckStatus.FAIL
        if as_json:
            data = asdict(step)
            data["status"] = step.status.value
            print(json.dumps(data), flush=True)
        else:
            hint = f"  -> {step.hint}" if step.hint and step.status != CheckStatus.PASS else ""
            print(f"{step.status.value.upper():5} {step.name:<18} {step.reason}{hint}", flush=True)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console.backend.xnat_check", description="XNAT connectivity check")
    parser.add_argument("--json", action="store_true", help="one JSON object per step")
    parser.add_argument("--no-paths", action="store_true", help="skip the path-translation roots")
    args = parser.parse_args(argv)
    return asyncio.run(_run(settings_from_env(check_paths=not args.no_paths), args.json))


if __name__ == "__main__":
    sys.exit(main())
