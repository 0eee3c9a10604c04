"""Environment variables, read in one place.

Every option of the hub can be set from the environment, as in the original image. Every secret can also be
given as a file (`NAME_FILE`), which is how Docker secrets arrive (`/run/secrets/...`).
"""

from __future__ import annotations

import os


class SettingsError(ValueError):
    """A variable holds a value we cannot use. The message names the variable, never a secret's value."""


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


def env_float(name: str, default: float | None = None) -> float | None:
    raw = env_str(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw[:40]!r}") from None


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
