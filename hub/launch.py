"""What the Swarm and Kubernetes spawners share: XNAT's launch options fetched and validated afresh on every
spawn, the refusal that reaches the user, and the environment rules for notebooks.

No Docker or Kubernetes import here: each hub image carries only its own spawner's libraries.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tornado import web
from traitlets import Bool, List, TraitError, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from hub import settings
from hub.user_options import LaunchSpec, UserOptionsError, parse_allowed_prefixes, parse_user_options
from hub.xnat import XnatError, XnatNotFound, get_xnat_client


class SpawnRefused(web.HTTPError):
    """A spawn that cannot go ahead. The message is shown to the user as is: JupyterHub puts
    `jupyterhub_message` in the progress stream and the HTTP error's message in API answers, without a traceback."""

    def __init__(self, status: int, message: str):
        super().__init__(status, message)
        self.jupyterhub_message = message


def ignore_user_options(spawner: Any, user_options: dict[str, Any]) -> None:
    """XNAT's start body is bookkeeping (eventTrackingId and friends), not launch settings: never applied
    (CVE-2023-48311). It stays in `spawner.user_options`, because XNAT reads it back from the server model."""
    spawner.log.debug("Not applying the start request's user_options for %s", spawner._log_name)


def flat_user_options(options: dict[str, Any]) -> dict[str, Any]:
    """`options` with every nested object or array replaced by its JSON text. XNAT's plugin reads user_options
    as a flat map: one nested value (from any client that can start a server) would fail its parse of the
    whole user, and of the whole `GET /users` that its cullers and admin list read."""
    return {
        str(key): json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
        for key, value in options.items()
    }


class XnatLaunchMixin(LoggingConfigurable):
    """Mixed into a Spawner: fetches this server's launch from XNAT and validates it."""

    mount_allowed_prefixes = List(
        Unicode(),
        help="""Host directories that bind mounts from XNAT may come from. When set, a bind source must be one of
        them or lie below one (after normalisation, whole path components: /data2 is not inside /data). When
        empty, bind sources that are / or lie under /etc, /proc, /sys, /dev, /boot, /root, /run, /var/run or
        /var/lib/docker are refused instead. Sources with a '..' segment and the Docker socket are always
        refused. Set it to the host side of XNAT's archive and workspace paths (its path translation prefixes).

        Default: $JH_MOUNT_ALLOWED_PREFIXES, colon-separated (e.g. /data/xnat/archive:/data/xnat/workspaces).
        """,
    ).tag(config=True)

    @default("mount_allowed_prefixes")
    def _default_mount_allowed_prefixes(self) -> list[str]:
        raw = settings.env_str("JH_MOUNT_ALLOWED_PREFIXES")
        try:
            return list(parse_allowed_prefixes(raw))
        except ValueError as e:
            raise settings.SettingsError(str(e)) from None

    @validate("mount_allowed_prefixes")
    def _normalise_prefixes(self, proposal: Any) -> list[str]:
        try:
            return list(parse_allowed_prefixes(proposal["value"]))
        except ValueError as e:
            raise TraitError(str(e)) from None

    allow_token_in_url = Bool(
        True,
        help="""Let the notebook accept `?token=...` in page URLs (JUPYTERHUB_ALLOW_TOKEN_IN_URL). XNAT opens
        notebooks as {host}{server url}?token=..., with a token scoped to that user's servers, so XNAT's "open"
        button needs it; JupyterHub 5 turned it off by default because a shared link then logs the visitor in
        as its owner. Turn it off if users only reach notebooks through the hub.

        Default: $JH_ALLOW_TOKEN_IN_URL, else true.
        """,
    ).tag(config=True)

    @default("allow_token_in_url")
    def _default_allow_token_in_url(self) -> bool:
        return settings.env_bool("JH_ALLOW_TOKEN_IN_URL", True)

    @validate("user_options")
    def _flat_user_options(self, proposal: Any) -> dict[str, Any]:
        return flat_user_options(proposal["value"])

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Any:
        return ignore_user_options

    # XNAT's launch for the spawn in progress (or the last one). Replaced, never merged, on every start.
    launch: LaunchSpec | None = None

    if TYPE_CHECKING:  # given by the JupyterHub Spawner that this is mixed into
        user: Any
        name: str
        environment: dict[str, Any]
        _log_name: str

    def check_launch(self, spec: LaunchSpec) -> None:
        """Refuse (UserOptionsError) what this spawner cannot run, before anything changes. Override."""

    async def fetch_launch(self) -> LaunchSpec:
        """XNAT's launch options for this server, validated. SpawnRefused (nothing created) if unusable."""
        try:
            # the hub user's exact name: XNAT usernames are case-sensitive
            payload = await get_xnat_client(self).get_user_options(self.user.name, self.name)
        except XnatNotFound as e:
            self.log.warning("Not spawning %s: %s", self._log_name, e.log_detail)
            raise SpawnRefused(404, str(e)) from None
        except XnatError as e:
            self.log.warning("Not spawning %s: %s", self._log_name, e.log_detail)
            raise SpawnRefused(502, str(e)) from None
        try:
            spec = parse_user_options(payload, allowed_prefixes=self.mount_allowed_prefixes)
            self.check_launch(spec)
        except UserOptionsError as e:
            self.log.warning("Not spawning %s: XNAT's launch options refused: %s", self._log_name, e)
            raise SpawnRefused(400, f"The launch options XNAT holds for this server cannot be used: {e}") from None
        return spec

    def with_xnat_env(self, hub_env: dict[str, str]) -> dict[str, str]:
        """XNAT's env under the hub's own: XNAT adds variables, but never replaces JupyterHub's (the API token,
        URLs) or the operator's `environment`."""
        if "JUPYTERHUB_ALLOW_TOKEN_IN_URL" not in self.environment:
            hub_env["JUPYTERHUB_ALLOW_TOKEN_IN_URL"] = "1" if self.allow_token_in_url else "0"
        xnat_env = dict(self.launch.env) if self.launch else {}
        shadowed = sorted(set(xnat_env) & set(hub_env))
        if shadowed:
            self.log.warning(
                "XNAT's env for %s sets %s; the hub's values are kept", self._log_name, ", ".join(shadowed)
            )
        return {**xnat_env, **hub_env}
