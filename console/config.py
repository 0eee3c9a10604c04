"""The console's settings: a TOML file, overridden by the environment, overridden by flags.

File: `$XDG_CONFIG_HOME/xnat-jh-console/config.toml` (default `~/.config/...`), or `--config PATH`.

    hub_url = "http://127.0.0.1:8000/jupyterhub/hub/api"
    token_file = "/home/me/.config/xnat-jh-console/console-token"   # or: token = "..." (then chmod 600)
    xnat_url = "http://127.0.0.1:8080"
    xnat_username = "jupyterhub"
    xnat_password_file = "..."                                      # or: xnat_password = "..."
    docker_host = "ssh://admin@manager1"                             # default: DOCKER_HOST, docker context
    ca_bundle = "/etc/ssl/certs/internal-ca.pem"
    verify = true
    timeout = 10.0
    read_only = false
    theme = "textual-dark"
    audit_log = "/var/log/xnat-jh-console/audit.log"                # default: $XDG_STATE_HOME/xnat-jh-console/audit.log
    stack = "xnat-jupyterhub"
    network = "jupyterhub-network"
    save_dir = "~/console-logs"                                     # where the logs screen saves (default: cwd)
    [keys]                                                          # action → key(s), Textual key names
    refresh = "ctrl+r"
    [node_engines]                                                  # node id or hostname → Docker host, for stats
    node2 = "unix:///run/docker-node2.sock"

Environment: JH_HUB_API_URL, JH_CONSOLE_TOKEN / JH_CONSOLE_TOKEN_FILE, JH_XNAT_URL, JH_XNAT_USERNAME,
JH_XNAT_PASSWORD / JH_XNAT_PASSWORD_FILE, DOCKER_HOST (read by the Docker layer), JH_CONSOLE_CA_BUNDLE,
JH_CONSOLE_CONFIG (the file's path), JH_CONSOLE_READ_ONLY.

A config file that holds a secret (or names a secret file) that group or others can read is refused, with the
`chmod 600` to run. Every problem is a `ConfigError` with a message fit to print; the CLI exits 2 on it.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from xjh_contract import hub_service_name

APP_DIR = "xnat-jh-console"
DEFAULT_HUB_URL = "http://127.0.0.1:8000/jupyterhub/hub/api"


class ConfigError(Exception):
    """A setting is missing, malformed or unsafe. The message names the setting, never a secret's value."""


def config_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config") / APP_DIR


def state_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / APP_DIR


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    return config_home(env) / "config.toml"


@dataclass
class ConsoleConfig:
    hub_url: str = DEFAULT_HUB_URL
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    xnat_url: str | None = None
    xnat_username: str | None = None
    xnat_password: str | None = field(default=None, repr=False)
    xnat_password_file: str | None = None
    docker_host: str | None = None
    ca_bundle: str | None = None
    verify: bool = True
    timeout: float = 10.0
    read_only: bool = False
    keys: dict[str, str] = field(default_factory=dict[str, Any])
    theme: str | None = None
    audit_log: str = ""
    stack: str = "xnat-jupyterhub"
    network: str = "jupyterhub-network"
    node_engines: dict[str, str] = field(default_factory=dict[str, Any])
    # Screens: seconds between refreshes, and the log viewer's line cap.
    refresh_interval: float = 5.0
    events_interval: float = 2.0
    xnat_interval: float = 60.0
    log_max_lines: int = 1_000_000
    save_dir: str | None = None  # where the logs screen saves; default: the working directory
    path: str | None = None  # the file it was read from, if any

    @property
    def hub_service(self) -> str:
        return hub_service_name(self.stack)

    def secrets(self) -> list[str]:
        """Every secret value held, so writers (audit log, errors) can scrub them."""
        return [s for s in (self.token, self.xnat_password) if s]


_STR_KEYS = {
    "hub_url", "token", "token_file", "xnat_url", "xnat_username", "xnat_password", "xnat_password_file",
    "docker_host", "ca_bundle", "theme", "audit_log", "stack", "network", "save_dir",
}  # fmt: skip
_SECONDS_KEYS = {
    "timeout": (0, 600),
    "refresh_interval": (1, 3600),
    "events_interval": (1, 3600),
    "xnat_interval": (5, 86400),
}
_SECRET_KEYS = {"token", "xnat_password"}
_SECRET_FILE_KEYS = {"token_file", "xnat_password_file"}
KNOWN_KEYS = {f.name for f in fields(ConsoleConfig)} - {"path"}


def as_path(value: str, what: str) -> Path:
    """A configured path, `~` expanded; a path no file can have is a ConfigError, not a crash later."""
    if "\x00" in value:
        raise ConfigError(f"{what} contains a NUL byte")
    try:
        path = Path(value).expanduser()
    except RuntimeError:  # ~user whose home is unknown
        raise ConfigError(f"{what} {value[:80]!r}: no such user's home directory") from None
    if any(len(part.encode("utf-8", "surrogateescape")) > 255 for part in path.parts):
        raise ConfigError(f"{what} {value[:80]!r}...: a file name is longer than 255 bytes")
    return path


def _check_private(path: Path, what: str) -> None:
    """Refuse a file holding a secret that group or others can read."""
    try:
        mode = path.stat().st_mode
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{what} {path} holds a secret and can be read by others (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {path}"
        )


def read_secret_file(path: str, what: str, *, check_private: bool) -> str:
    p = as_path(path, what)
    if check_private:
        _check_private(p, what)
    try:
        value = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read {what} {p}: {e.strerror}") from None
    except (UnicodeDecodeError, ValueError):
        raise ConfigError(f"{what} {p} is not UTF-8 text") from None
    value = value.strip()
    if not value:
        raise ConfigError(f"{what} {p} is empty")
    return value


def _load_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(KNOWN_KEYS))}"
        )
    if _SECRET_KEYS & set(data) or _SECRET_FILE_KEYS & set(data):
        _check_private(path, "config file")
    return data


def _validate(values: dict[str, Any], origin: str) -> dict[str, Any]:
    """Type-check and normalise values from one origin (a file, the environment, flags)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        where = f"{key} ({origin})"
        if key in _STR_KEYS:
            if not isinstance(value, str):
                raise ConfigError(f"{where} must be a string, got {type(value).__name__}")
            out[key] = value
        elif key in ("verify", "read_only"):
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ConfigError(f"{where} must be true or false, got {value[:20]!r}")
                value = lowered in ("1", "true", "yes", "on")
            if not isinstance(value, bool):
                raise ConfigError(f"{where} must be true or false, got {type(value).__name__}")
            out[key] = value
        elif key in _SECONDS_KEYS:
            low, high = _SECONDS_KEYS[key]
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{where} must be a number of seconds, got {str(value)[:20]!r}") from None
            if isinstance(value, bool) or not low <= number <= high or number == 0:
                raise ConfigError(f"{where} must be between {low:g} and {high:g} seconds, got {str(value)[:20]}")
            out[key] = number
        elif key == "log_max_lines":
            if isinstance(value, bool) or not isinstance(value, int) or not 10_000 <= value <= 10_000_000:
                raise ConfigError(f"{where} must be a whole number between 10000 and 10000000")
            out[key] = value
        elif key in ("keys", "node_engines"):
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise ConfigError(f'{where} must be a table of strings, e.g. [{key}] name = "value"')
            out[key] = dict(value)
    for key in ("hub_url", "xnat_url"):
        if key in out:
            shown = _without_userinfo(out[key])[:60]
            try:
                parts = urlsplit(out[key])
                parts.port  # noqa: B018 (parses the port: "host:abc" is refused here, not at the first call)
            except ValueError as e:
                raise ConfigError(f"{key} ({origin}) is not a valid URL ({e}): {shown!r}") from None
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"{key} ({origin}) must be an http(s):// URL, got {shown!r}")
            if "@" in parts.netloc:
                # A password in the URL would be shown on every screen and error naming the URL.
                raise ConfigError(
                    f"{key} ({origin}) must not hold a user or password ({shown!r}): "
                    + ("use token or token_file" if key == "hub_url" else "use xnat_username and xnat_password_file")
                )
    if "docker_host" in out:
        check_docker_host(out["docker_host"], f"docker_host ({origin})")
    return out


DOCKER_SCHEMES = ("unix", "tcp", "ssh", "http", "https", "fd", "npipe")


def _without_userinfo(url: str) -> str:
    """The URL fit to echo in an error: any `user:password@` is replaced."""
    return re.sub(r"(//)[^/?#]*@", r"\1<redacted>@", url, count=1)


def check_docker_host(value: str, what: str) -> None:
    """The forms the docker CLI takes: unix:///path, tcp://host:port, ssh://[user@]host[:port]."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018
    except ValueError as e:
        raise ConfigError(f"{what} is not a valid address ({e}): {value[:60]!r}") from None
    if parts.scheme not in DOCKER_SCHEMES:
        raise ConfigError(f"{what} must start with unix://, tcp:// or ssh://, got {value[:60]!r}")
    if parts.scheme == "unix" and not parts.path:
        raise ConfigError(f"{what} names no socket: {value[:60]!r} (e.g. unix:///var/run/docker.sock)")
    if parts.scheme in ("tcp", "ssh", "http", "https") and not parts.hostname:
        raise ConfigError(f"{what} names no host: {value[:60]!r}")


def _from_env(env: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    mapping = {
        "JH_HUB_API_URL": "hub_url",
        "JH_XNAT_URL": "xnat_url",
        "JH_XNAT_USERNAME": "xnat_username",
        "JH_CONSOLE_CA_BUNDLE": "ca_bundle",
        "JH_CONSOLE_READ_ONLY": "read_only",
    }
    for var, key in mapping.items():
        if env.get(var):
            values[key] = env[var]
    for var, key, file_key in (
        ("JH_CONSOLE_TOKEN", "token", "token_file"),
        ("JH_XNAT_PASSWORD", "xnat_password", "xnat_password_file"),
    ):
        direct, path = env.get(var), env.get(f"{var}_FILE")
        if direct and path:
            raise ConfigError(f"set {var} or {var}_FILE, not both")
        if direct:
            values[key] = direct
            values[file_key] = None
        elif path:
            values[file_key] = path
            values[key] = None
    return values


def load_config(
    path: str | None = None,
    *,
    env: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> ConsoleConfig:
    """Read the file, then the environment, then `overrides` (flags); resolve the secret files."""
    env = dict(os.environ) if env is None else env
    explicit = path or env.get("JH_CONSOLE_CONFIG")
    file_path = as_path(explicit, "config file") if explicit else default_config_path(env)
    merged: dict[str, Any] = {}
    if explicit or file_path.is_file():
        merged.update(_validate(_load_file(file_path), f"in {file_path}"))
        read_from: str | None = str(file_path)
    else:
        read_from = None
    env_values = _from_env(env)
    # A secret given in the environment replaces the file's (and its *_file), and the other way round.
    for key in ("token", "token_file", "xnat_password", "xnat_password_file"):
        if key in env_values:
            merged.pop(key, None)
    merged.update(_validate({k: v for k, v in env_values.items() if v is not None}, "environment"))
    flag_values = _validate(dict(overrides or {}), "command line")
    if "token_file" in flag_values:
        merged.pop("token", None)
    if "xnat_password_file" in flag_values:
        merged.pop("xnat_password", None)
    merged.update(flag_values)

    config = ConsoleConfig(**merged, path=read_from)
    config.hub_url = config.hub_url.rstrip("/")
    if not config.audit_log:
        config.audit_log = str(state_home(env) / "audit.log")
    # Secret files named in the config file or on the command line must be private; *_FILE variables usually
    # point at Docker secrets, which their mounting already protects.
    env_named = {env.get("JH_CONSOLE_TOKEN_FILE"), env.get("JH_XNAT_PASSWORD_FILE")}
    if config.token is None and config.token_file:
        config.token = read_secret_file(
            config.token_file, "token file (token_file)", check_private=config.token_file not in env_named
        )
    if config.xnat_password is None and config.xnat_password_file:
        config.xnat_password = read_secret_file(
            config.xnat_password_file,
            "XNAT password file (xnat_password_file)",
            check_private=config.xnat_password_file not in env_named,
        )
    if config.ca_bundle and not as_path(config.ca_bundle, "ca_bundle").is_file():
        raise ConfigError(f"ca_bundle {config.ca_bundle} is not a readable file")
    if not config.docker_host and env.get("DOCKER_HOST"):
        check_docker_host(env["DOCKER_HOST"], "DOCKER_HOST")
    return config
