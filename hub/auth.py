"""Log in with XNAT credentials.

XNAT is asked with the user's own Basic credentials:

1. ``GET /xapi/users/{username}/roles``: 401 means wrong credentials; a role equal to ``Jupyter``
   (case-insensitively) lets the user in.
2. Otherwise ``GET /xapi/jupyterhub/preferences/allUsersCanStartJupyter`` (XNAT's site switch) decides.

Usernames keep their case (XNAT's are case-sensitive). Every refusal raises an HTTP error whose message the login
page shows, after exactly one log line that never holds the password and holds at most 64 characters of the name.
"""

from __future__ import annotations

from typing import Any

from jupyterhub.auth import Authenticator
from tornado import web
from traitlets import Bool, Instance, Unicode, default

from hub.xnat import (
    XnatClient,
    XnatError,
    XnatExchange,
    XnatReply,
    check_status,
    get_xnat_client,
    loggable_name,
    name_problem,
    segment,
    unreadable,
)

SITE_SWITCH = "allUsersCanStartJupyter"
# The key of the auth model that carries XNAT's verdict from authenticate() to check_allowed().
VERDICT = "xnat_allows_jupyter"

WRONG_CREDENTIALS = "Invalid username or password."


def refusal(status: int, message: str) -> web.HTTPError:
    """An HTTPError the login page shows as `message`, without tornado logging it a second time."""
    error = web.HTTPError(status)
    # BaseHandler.write_error shows `jupyterhub_message`; no log_message means tornado adds no log line.
    error.jupyterhub_message = message  # type: ignore[attr-defined]
    return error


class XnatAuthenticator(Authenticator):
    """Authenticate against XNAT, letting in users with XNAT's Jupyter role (or everyone, if XNAT says so)."""

    jupyter_role = Unicode(
        "Jupyter",
        help="""The XNAT role that lets a user start notebooks, compared case-insensitively.""",
    ).tag(config=True)

    allow_xnat_approved = Bool(
        True,
        help="""Let in every user XNAT approves: one with the `jupyter_role`, or anyone when XNAT's
        `allUsersCanStartJupyter` preference is on.

        This is the allow rule of this authenticator, so no `allowed_users` list is needed. When False, only
        `allowed_users` / `allow_all` let anyone in (XNAT then only checks the password).
        """,
    ).tag(config=True, allow_config=True)

    xnat = Instance(
        XnatClient,
        help="""The XnatClient used for logins. Defaults to the process-wide one (configure it as XnatClient).""",
    )

    @default("xnat")
    def _default_xnat(self) -> XnatClient:
        return get_xnat_client(self)

    @classmethod
    def class_get_help(cls, inst: Any = None) -> str:
        # `jupyterhub --help-all` lists only entry-point classes; XnatClient's options are reached through us.
        return super().class_get_help(inst) + "\n" + XnatClient.class_get_help()

    def normalize_username(self, username: str) -> str:
        """Keep the name exactly as XNAT knows it (no lowercasing); `username_map` still applies."""
        mapped: str = self.username_map.get(username, username)
        return mapped

    def validate_username(self, username: str) -> bool:
        return name_problem(username) is None and super().validate_username(username)

    def _refuse(self, status: int, message: str, username: object, reason: str) -> web.HTTPError:
        """Log the one line for this refusal and return the error to raise."""
        self.log.warning("XNAT login refused for %s: %s", loggable_name(username), reason)
        return refusal(status, message)

    async def authenticate(self, handler: Any, data: dict[str, Any]) -> dict[str, Any]:
        username = data.get("username")
        password = data.get("password")
        problem = name_problem(username)
        if problem:
            raise self._refuse(403, problem, username or "", f"unusable username ({problem})")
        assert isinstance(username, str)
        if not isinstance(password, str) or password == "":
            raise self._refuse(403, WRONG_CREDENTIALS, username, "empty password")
        if not _utf8(password):
            # Basic auth sends UTF-8; a lone surrogate cannot be sent, so no XNAT password can match it
            raise self._refuse(403, WRONG_CREDENTIALS, username, "password is not valid Unicode")

        try:
            async with self.xnat.exchange((username, password)) as xnat:
                roles = await xnat.get(f"/xapi/users/{segment(username)}/roles", what="roles")
                self._check_credentials(roles, username)
                role_names = roles.json("roles")
                if not isinstance(role_names, list) or not all(isinstance(role, str) for role in role_names):
                    raise unreadable("roles: JSON is not a list of role names")
                has_role = any(role.casefold() == self.jupyter_role.casefold() for role in role_names)
                allowed = has_role or await self._site_switch(xnat)
        except XnatError as e:
            # XNAT could not decide (down, failing, unreadable): the hub's problem, not the user's credentials
            raise self._refuse(503, e.message, username, e.log_detail) from None

        why = f"{self.jupyter_role} role" if has_role else f"{SITE_SWITCH}={allowed}"
        self.log.debug("XNAT answered for %s: %s", loggable_name(username), why)
        return {"name": username, VERDICT: allowed}

    def _check_credentials(self, reply: XnatReply, username: str) -> None:
        if reply.status == 401:
            raise self._refuse(403, WRONG_CREDENTIALS, username, "XNAT answered 401 (wrong username or password)")
        if reply.status == 403:
            # XNAT's roles API answers 403 when the credentials belong to someone else (e.g. an alias token)
            raise self._refuse(
                403,
                "XNAT refused this login. Sign in with your own XNAT username and password.",
                username,
                "XNAT answered 403 to the roles request",
            )
        check_status(reply, "roles")

    async def _site_switch(self, xnat: XnatExchange) -> bool:
        reply = await xnat.get(f"/xapi/jupyterhub/preferences/{SITE_SWITCH}", what=SITE_SWITCH)
        if reply.status == 404:
            return False  # the preference (or the plugin) is missing: it is off
        check_status(reply, SITE_SWITCH)
        value = reply.json(SITE_SWITCH)
        switch = value.get(SITE_SWITCH) if isinstance(value, dict) else None
        if not isinstance(switch, bool):
            raise unreadable(f"{SITE_SWITCH}: JSON is not {{{SITE_SWITCH!r}: true|false}}")
        return switch

    def check_allowed(self, username: str, authentication: dict[str, Any] | None = None) -> bool:
        if self.allow_xnat_approved and authentication is not None and authentication.get(VERDICT) is True:
            return True
        if super().check_allowed(username, authentication):
            return True
        if authentication is not None and VERDICT in authentication:
            # a login XNAT did not approve: say why on the login page, rather than "Invalid username or password"
            raise self._refuse(
                403,
                f"Your XNAT account does not have the {self.jupyter_role} role. Ask your XNAT administrator for it.",
                username,
                f"no {self.jupyter_role} role and {SITE_SWITCH} is off",
            )
        return False


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
