"""Environment variables, read in one place.

Every option of the hub can be set from the environment, as in the original image. Every secret can also be
given as a file (`NAME_FILE`), which is how Docker secrets arrive (`/run/secrets/...`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, overload
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from traitlets import HasTraits


class SettingsError(ValueError):
    """A variable holds a value we cannot use. The message names the variable, never a secret's value."""


@overload
def env_str(name: str, default: str) -> str: ...
@overload
def env_str(name: str, default: None = None) -> str | None: ...
def env_str(name: str, default: str | None = None) -> str | None:
    """The variable's value, or `default` when it is unset or empty."""
    value = os.environ.get(name, "")
    return value if value != "" else default


def env_secret(name: str, default: str | None = None) -> str | None:
    """A secret from `NAME`, or from the file named by `NAME_FILE` (one trailing newline dropped)."""
    direct = env_str(name)
    path = env_str(f"{name}_FILE")
    if direct is not None and path is not None:
        raise SettingsError(f"set {name} or {name}_FILE, not both")
    if path is None:
        return direct if direct is not None else default
    try:
        with open(path, encoding="utf-8") as f:
            value = f.read()
    except OSError as e:
        raise SettingsError(f"{name}_FILE: cannot read {path}: {e.strerror}") from None
    value = value[:-1] if value.endswith("\n") else value
    if value == "":
        raise SettingsError(f"{name}_FILE: {path} is empty")
    return value


def env_int(name: str, default: int | None = None) -> int | None:
    raw = env_str(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw[:40]!r}") from None


def env_int_at_least(name: str, default: int, minimum: int) -> int:
    """A whole number that must be at least `minimum` (a limit, a count)."""
    value = env_int(name, default)
    assert value is not None
    if value < minimum:
        raise SettingsError(f"{name} must be a whole number of at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float | None = None) -> float | None:
    raw = env_str(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw[:40]!r}") from None


def env_positive_float(name: str, default: float) -> float:
    """A number of seconds (or similar) that must be finite and greater than zero."""
    value = env_float(name, default)
    assert value is not None
    if not (0 < value < float("inf")):
        raise SettingsError(f"{name} must be a number greater than 0, got {env_str(name)!r}")
    return value


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_bool(name: str, default: bool) -> bool:
    raw = env_str(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw[:40]!r}")


def env_file(name: str) -> str | None:
    """A path to a file that must exist and be readable (a certificate, a key), or None when unset."""
    path = env_str(name)
    if path is None:
        return None
    if not os.path.isfile(path):
        raise SettingsError(f"{name}: {path} is not a file")
    if not os.access(path, os.R_OK):
        raise SettingsError(f"{name}: {path} is not readable by this process")
    return path


def _shown(url: str) -> str:
    """The URL as it may appear in an error message: bounded, without any user:password@ part, and with any
    query or fragment (which may carry a token) replaced by `?***`."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:  # the last "@": a password may hold "@", "?" or "#"
        rest = "***@" + rest.rpartition("@")[2]
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    rest, tail = rest[:cut], ("?***" if cut < len(rest) else "")
    return repr((scheme + sep + rest)[:80] + tail)


def check_http_url(name: str, url: str) -> str:
    """`url` if it is an absolute http(s) URL with a host (trailing slashes dropped), else SettingsError."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise SettingsError(f"{name} is not a valid URL: {_shown(url)}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{name} must be an http:// or https:// URL with a host, got {_shown(url)}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise SettingsError(f"{name} must not carry a query, a fragment or credentials, got {_shown(url)}")
    return url.rstrip("/")


def env_url(name: str, default: str | None = None) -> str | None:
    """An http(s) URL from `name`, validated, without trailing slash; `default` when unset."""
    raw = env_str(name)
    if raw is None:
        return default
    return check_http_url(name, raw)


def check_environment(*classes: type[HasTraits]) -> None:
    """Compute now every option default that the hub package reads from the environment, for each class, so that
    a bad variable stops the hub at startup (SettingsError or TraitError) rather than at the first login or spawn.
    """
    from traitlets.traitlets import DefaultHandler  # the object `@default` leaves in the class body

    for cls in classes:
        instance = cls()
        options = set(cls.class_trait_names(config=True))  # not e.g. XnatAuthenticator.xnat, a shared object
        for klass in cls.__mro__:
            if not klass.__module__.startswith("hub."):
                continue
            for attribute in vars(klass).values():
                if isinstance(attribute, DefaultHandler) and attribute.trait_name in options:
                    getattr(instance, attribute.trait_name)
