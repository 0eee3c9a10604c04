"""XNAT's launch options (XnatUserOptions JSON), validated into a `LaunchSpec`.

XNAT stores, per user and server, a `task_template` saying what to run: image, command, env, labels, mounts,
resources and placement. The hub fetches it with its service account before each spawn. This module turns that
JSON into a frozen `LaunchSpec`, or raises `UserOptionsError` with a message fit to show the user in the spawn
progress. It knows nothing about Docker's API or Kubernetes: the Swarm spawner and the Kubernetes translation
both build on it.

The JSON is treated as untrusted: whatever its shape, parsing either returns a valid spec or raises
`UserOptionsError`. Bind mounts get the most care, since a bind source is a path on the host:

- a source with a `..` segment is always refused, as is the Docker socket;
- with `allowed_prefixes` (from `JH_MOUNT_ALLOWED_PREFIXES`), every bind source must lie inside one of them;
- without it, sources that are `/` or lie under a system directory (`DENIED_BIND_ROOTS`) are refused.

Host paths cannot be resolved from the hub (the task may run on another node), so symlinks are not followed:
point the allowed prefixes at directories whose contents the site controls.

Messages never quote environment values (XNAT puts the user's alias token in `XNAT_PASS`) and quote other
values only in shortened form.

About 500 lines, kept whole on purpose: it is one trust boundary. Every field's check sits beside the others, so
that a reviewer can see that no path from XNAT's JSON to a `LaunchSpec` skips one.
"""

from __future__ import annotations

import math
import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "DENIED_BIND_ROOTS",
    "DOCKER_SOCKETS",
    "LaunchSpec",
    "MountSpec",
    "UserOptionsError",
    "parse_allowed_prefixes",
    "parse_memory",
    "parse_user_options",
]


class UserOptionsError(ValueError):
    """XNAT's launch options cannot be used. The message is written for the user who asked for the server."""


# Bind sources refused when no allow-list is configured (each root itself and everything under it).
DENIED_BIND_ROOTS: tuple[str, ...] = (
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/root",
    "/run",
    "/var/run",
    "/var/lib/docker",
)
# Refused always, even inside an allowed prefix: access to the engine is root on the node.
DOCKER_SOCKETS: tuple[str, ...] = ("/var/run/docker.sock", "/run/docker.sock")

# Bounds that no real launch reaches, so that absurd values fail with a message instead of upsetting the engine.
MAX_TEXT = 4096  # one path, image reference, command, label
MAX_ENV_VALUE = 128 * 1024
MAX_ITEMS = 4096  # env entries, labels, mounts (a stored search may mount every project a user can read)
MAX_CONSTRAINTS = 64
MAX_CPUS = 1024.0
MAX_MEMORY = 64 * 1024**4  # 64 TiB
MIN_MEMORY_LIMIT = 6 * 1024**2  # Docker refuses smaller memory limits
MAX_DISCRETE_RESOURCE = 1_000_000

_MEMORY_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE | re.ASCII)
# Docker image references: [registry[:port]/]path[:tag][@digest]. Path components are lowercase.
_IMAGE_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)
_VOLUME_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,254}$")
_ENV_KEY_RE = re.compile(r"^[^=\x00-\x1f\x7f]{1,256}$")
_LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$")
# Docker keeps these label namespaces for itself (com.docker.stack.namespace would pull a notebook into a stack).
_RESERVED_LABEL_PREFIXES = ("com.docker.", "io.docker.", "org.dockerproject.")
_RESOURCE_KIND_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_CONSTRAINT_RE = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(==|!=)\s*(\S(?:.*\S)?)\s*$")
_CONSTRAINT_KEYS = ("node.id", "node.hostname", "node.role", "node.platform.os", "node.platform.arch")
_CONSTRAINT_LABEL_PREFIXES = ("node.labels.", "engine.labels.")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class MountSpec:
    """One mount: a host path (`bind`) or a named volume (`volume`) at `target` inside the container."""

    type: Literal["bind", "volume"]
    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class LaunchSpec:
    """What XNAT asked to run. `None`, empty tuples and empty mappings mean "XNAT said nothing": use the
    spawner's configured default."""

    image: str | None = None
    cmd: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    mounts: tuple[MountSpec, ...] = ()
    cpu_limit: float | None = None
    cpu_reservation: float | None = None
    mem_limit: int | None = None  # bytes
    mem_reservation: int | None = None  # bytes
    # int: a discrete resource (a count); str: a named resource (e.g. one GPU's id)
    generic_resources: Mapping[str, int | str] = field(default_factory=lambda: MappingProxyType({}))
    constraints: tuple[str, ...] = ()


def short_repr(value: Any) -> str:
    """A value shortened for a message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _shown(path: str) -> str:
    """A path for a message: whole when short, otherwise its start and end (messages stay readable)."""
    return path if len(path) <= 160 else f"{path[:90]}...{path[-60:]}"


def _text(value: Any, what: str, *, max_len: int = MAX_TEXT, control_ok: bool = False) -> str:
    """A string we can hand to Docker: valid Unicode, bounded, no NUL (and no control characters unless
    `control_ok`)."""
    if not isinstance(value, str):
        raise UserOptionsError(f"{what} must be text, got {type(value).__name__}")
    if len(value) > max_len:
        raise UserOptionsError(f"{what} is too long ({len(value)} characters, at most {max_len})")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UserOptionsError(f"{what} is not valid Unicode text") from None
    if "\x00" in value or (not control_ok and _CONTROL_RE.search(value)):
        raise UserOptionsError(f"{what} contains control characters")
    return value


def _object(value: Any, what: str) -> dict[str, Any]:
    """A JSON object; null counts as empty."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserOptionsError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _array(value: Any, what: str, max_items: int) -> list[Any]:
    """A JSON array; null counts as empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise UserOptionsError(f"{what} must be a JSON array, got {type(value).__name__}")
    if len(value) > max_items:
        raise UserOptionsError(f"{what} has too many entries ({len(value)}, at most {max_items})")
    return value


def _string_map(value: Any, what: str, key_re: re.Pattern[str], *, secret_values: bool) -> dict[str, str]:
    items = _object(value, what)
    if len(items) > MAX_ITEMS:
        raise UserOptionsError(f"{what} has too many entries ({len(items)}, at most {MAX_ITEMS})")
    result: dict[str, str] = {}
    for key, item in items.items():
        key = _text(key, f"a key in {what}", max_len=256)
        if not key_re.match(key):
            raise UserOptionsError(f"{what} has an invalid name {short_repr(key)}")
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise UserOptionsError(f"{what} {key!r} must be text, got {type(item).__name__}")
        if isinstance(item, float) and not math.isfinite(item):
            raise UserOptionsError(f"{what} {key!r} must be a finite number")
        text = item if isinstance(item, str) else str(item)
        # Values may be secrets: the message names the key only.
        what_value = f"the value of {what} {key!r}"
        if secret_values:
            if len(text) > MAX_ENV_VALUE:
                raise UserOptionsError(f"{what_value} is too long (at most {MAX_ENV_VALUE} characters)")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise UserOptionsError(f"{what_value} is not valid Unicode text") from None
            if "\x00" in text:
                raise UserOptionsError(f"{what_value} contains a NUL character")
        else:
            _text(text, what_value)
        result[key] = text
    return result


# -- numbers -------------------------------------------------------------------------------------------------


def _cpus(value: Any, what: str) -> float | None:
    """A CPU count: null or 0 means unset (as in the original hook), otherwise a finite number in (0, 1024]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserOptionsError(f"{what} must be a number of CPUs, got {short_repr(value)}")
    if isinstance(value, int) and abs(value) > MAX_CPUS:
        raise UserOptionsError(f"{what} is too large ({short_repr(value)}; at most {MAX_CPUS:g} CPUs)")
    cpus = float(value)
    if not math.isfinite(cpus):
        raise UserOptionsError(f"{what} must be a finite number of CPUs")
    if cpus == 0:
        return None
    if cpus < 0:
        raise UserOptionsError(f"{what} must be more than 0, got {cpus:g}")
    if cpus > MAX_CPUS:
        raise UserOptionsError(f"{what} is too large ({cpus:g}; at most {MAX_CPUS:g} CPUs)")
    # Docker counts in nano-CPUs: anything below one nano-CPU would become 0, which means "no limit".
    if cpus < 1e-9:
        raise UserOptionsError(f"{what} is too small ({cpus:g} CPUs)")
    return cpus


def parse_memory(value: Any, what: str = "memory") -> int | None:
    """Bytes from `2G`, `512M`, `1.5g`, `4GiB`, `1024k`, a plain number of bytes, or null/0 (unset).

    Units are powers of 1024, as in JupyterHub's `ByteSpecification` and Docker's CLI.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise UserOptionsError(f"{what} must be a size such as 2G or 512M, got {short_repr(value)}")
    if isinstance(value, int):
        amount: float | int = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise UserOptionsError(f"{what} must be a finite size")
        amount = value
    elif isinstance(value, str):
        match = _MEMORY_RE.match(value) if len(value) <= 64 else None
        if not match:
            raise UserOptionsError(f"{what} must be a size such as 2G or 512M, got {short_repr(value)}")
        number, unit = match.groups()
        if len(number) > 30:
            raise UserOptionsError(f"{what} is too large ({short_repr(value)})")
        amount = float(number) * _MEMORY_UNITS[unit.lower()]
    else:
        raise UserOptionsError(f"{what} must be a size such as 2G or 512M, got {type(value).__name__}")
    if amount < 0:
        raise UserOptionsError(f"{what} must not be negative")
    if amount > MAX_MEMORY:
        raise UserOptionsError(f"{what} is too large (at most 64T)")
    size = int(amount)
    return size or None


def _generic_resources(value: Any) -> dict[str, int | str]:
    what = "resources.generic_resources"
    items = _object(value, what)
    if len(items) > 64:
        raise UserOptionsError(f"{what} has too many entries ({len(items)}, at most 64)")
    result: dict[str, int | str] = {}
    for kind, amount in items.items():
        kind = _text(kind, f"a resource kind in {what}", max_len=128)
        if not _RESOURCE_KIND_RE.match(kind):
            raise UserOptionsError(f"{what} has an invalid resource kind {short_repr(kind)}")
        entry = f"generic resource {kind!r}"
        # An integer (or a string of digits, as XNAT stores them) is a count: a discrete resource.
        # Any other string names one specific resource: a named resource.
        if isinstance(amount, bool) or amount is None:
            raise UserOptionsError(f"{entry} must be a count or a name, got {short_repr(amount)}")
        if isinstance(amount, float):
            if not (math.isfinite(amount) and amount.is_integer()):
                raise UserOptionsError(f"{entry} must be a whole count or a name, got {short_repr(amount)}")
            amount = int(amount) if abs(amount) <= MAX_DISCRETE_RESOURCE else MAX_DISCRETE_RESOURCE + 1
        if isinstance(amount, str) and amount.strip().isdecimal() and amount.strip().isascii():
            digits = amount.strip()
            amount = int(digits) if len(digits) <= 12 else MAX_DISCRETE_RESOURCE + 1
        if isinstance(amount, int):
            if amount < 0 or amount > MAX_DISCRETE_RESOURCE:
                raise UserOptionsError(f"{entry} must be between 0 and {MAX_DISCRETE_RESOURCE}")
            result[kind] = amount
        elif isinstance(amount, str):
            name = _text(amount, entry, max_len=256)
            if not name.strip():
                raise UserOptionsError(f"{entry} must be a count or a name, got an empty string")
            result[kind] = name
        else:
            raise UserOptionsError(f"{entry} must be a count or a name, got {type(amount).__name__}")
    return result


# -- paths and mounts ----------------------------------------------------------------------------------------


def _normal_path(path: str, what: str) -> str:
    """An absolute path with `.`, empty segments and trailing slashes removed. Refuses `..` segments."""
    if not path.startswith("/"):
        raise UserOptionsError(f"{what} must be an absolute path, got {short_repr(path)}")
    segments = path.split("/")
    if ".." in segments:
        raise UserOptionsError(f"{what} must not contain '..', got {short_repr(path)}")
    # Built by hand: posixpath.normpath keeps a leading '//' (POSIX leaves it implementation-defined).
    return "/" + "/".join(s for s in segments if s not in ("", "."))


def _inside(path: str, root: str) -> bool:
    """Whether normalised `path` is `root` or below it (`/data2` is not inside `/data`)."""
    return root == "/" or path == root or path.startswith(root + "/")


def parse_allowed_prefixes(raw: str | Iterable[str] | None) -> tuple[str, ...]:
    """The allowed bind roots from `JH_MOUNT_ALLOWED_PREFIXES` (colon-separated) or a list.

    Raises `ValueError` naming the bad entry: this is the operator's configuration, not the user's input.
    """
    if raw is None:
        return ()
    entries = raw.split(":") if isinstance(raw, str) else list(raw)
    prefixes: list[str] = []
    for entry in entries:
        if not isinstance(entry, str):
            raise ValueError(f"JH_MOUNT_ALLOWED_PREFIXES: entries must be paths, got {short_repr(entry)}")
        entry = entry.strip()
        if not entry:
            continue
        try:
            prefix = _normal_path(_text(entry, "an allowed prefix"), "an allowed prefix")
        except UserOptionsError as e:
            raise ValueError(f"JH_MOUNT_ALLOWED_PREFIXES: {e}") from None
        if prefix not in prefixes:
            prefixes.append(prefix)
    return tuple(prefixes)


def _check_bind_source(source: str, allowed_prefixes: tuple[str, ...]) -> None:
    if source in DOCKER_SOCKETS or posixpath.basename(source) == "docker.sock":
        raise UserOptionsError(f"mount source {_shown(source)} is the Docker socket, which notebooks may not mount")
    if allowed_prefixes:
        if not any(_inside(source, prefix) for prefix in allowed_prefixes):
            raise UserOptionsError(
                f"mount source {_shown(source)} is outside the directories this hub may mount "
                f"({_shown(', '.join(allowed_prefixes))})"
            )
        return
    if source == "/":
        raise UserOptionsError("mount source / (the whole host file system) is not allowed")
    for root in DENIED_BIND_ROOTS:
        if _inside(source, root):
            raise UserOptionsError(
                f"mount source {_shown(source)} lies in the system directory {root}, which is not allowed"
            )


def _mount(item: Any, index: int, allowed_prefixes: tuple[str, ...]) -> MountSpec:
    what = f"mount #{index + 1}"
    entry = _object(item, what)
    if not entry:
        raise UserOptionsError(f"{what} is empty")
    raw_kind = entry.get("type")
    kind: Literal["bind", "volume"]
    if raw_kind is None or raw_kind == "bind":  # XNAT writes "bind" unless a compute environment names a volume
        kind = "bind"
    elif raw_kind == "volume":
        kind = "volume"
    else:
        raise UserOptionsError(f"{what} has type {short_repr(raw_kind)}; only 'bind' and 'volume' are supported")
    read_only = entry.get("read_only")
    if read_only is None:
        read_only = False
    if not isinstance(read_only, bool):
        raise UserOptionsError(f"{what}: read_only must be true or false, got {short_repr(read_only)}")

    target = _normal_path(_text(entry.get("target"), f"{what} target"), f"{what} target")
    if target == "/":
        raise UserOptionsError(f"{what} target must not be / (the container's root)")

    raw_source = entry.get("source")
    if kind == "bind":
        source = _normal_path(_text(raw_source, f"{what} source"), f"{what} source")
        _check_bind_source(source, allowed_prefixes)
    else:
        source = _text(raw_source, f"{what} volume name", max_len=255)
        if not _VOLUME_NAME_RE.match(source):
            raise UserOptionsError(
                f"{what} has an invalid volume name {short_repr(source)} (letters, digits, '_', '.', '-'; "
                "at least 2 characters, starting with a letter or digit)"
            )
    return MountSpec(type=kind, source=source, target=target, read_only=read_only)


# -- the rest --------------------------------------------------------------------------------------------------


def _image(value: Any) -> str | None:
    if value is None or value == "":
        return None
    image = _text(value, "container_spec.image", max_len=512)
    if not _IMAGE_RE.match(image):
        raise UserOptionsError(f"container_spec.image {short_repr(image)} is not a valid image reference")
    return image


def _command(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    command = _text(value, "container_spec.command", control_ok=True)  # refuses NUL even so
    try:
        return tuple(shlex.split(command))
    except ValueError as e:  # e.g. "No closing quotation"
        raise UserOptionsError(f"container_spec.command cannot be split like a shell command: {e}") from None


def _labels(value: Any) -> dict[str, str]:
    labels = _string_map(value, "container_spec.labels", _LABEL_KEY_RE, secret_values=False)
    for key in labels:
        if key.startswith(_RESERVED_LABEL_PREFIXES):
            raise UserOptionsError(f"label {key!r} is in a namespace Docker reserves for itself")
    return labels


def _constraints(value: Any) -> tuple[str, ...]:
    constraints: list[str] = []
    for index, item in enumerate(_array(value, "placement.constraints", MAX_CONSTRAINTS)):
        text = _text(item, f"placement constraint #{index + 1}", max_len=512)
        match = _CONSTRAINT_RE.match(text)
        if not match:
            raise UserOptionsError(
                f"placement constraint {short_repr(text)} must look like 'node.labels.KEY==VALUE' or 'KEY!=VALUE'"
            )
        key, operator, expected = match.groups()
        known = key in _CONSTRAINT_KEYS or (
            key.startswith(_CONSTRAINT_LABEL_PREFIXES)
            and len(key) > len("node.labels.")
            and not key.endswith(".")
        )
        if not known:
            raise UserOptionsError(
                f"placement constraint {short_repr(text)} uses an unknown attribute {key!r} (use node.id, "
                "node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.* or engine.labels.*)"
            )
        # Docker splits at the first operator, so a value holding one would be read as something else.
        if "==" in expected or "!=" in expected:
            raise UserOptionsError(f"placement constraint {short_repr(text)} has more than one operator")
        constraints.append(f"{key}{operator}{expected}")
    return tuple(constraints)


def parse_user_options(payload: Any, *, allowed_prefixes: Iterable[str] | str | None = ()) -> LaunchSpec:
    """Validate XNAT's XnatUserOptions JSON (already decoded) into a `LaunchSpec`.

    `allowed_prefixes`: host roots every bind source must lie inside (empty: refuse system directories instead).
    Raises `UserOptionsError` for anything unusable; never anything else.
    """
    prefixes = parse_allowed_prefixes(allowed_prefixes) if allowed_prefixes else ()
    if not isinstance(payload, dict):
        raise UserOptionsError(f"the launch options from XNAT must be a JSON object, got {type(payload).__name__}")
    if payload.get("task_template") is None:
        raise UserOptionsError("the launch options from XNAT have no task_template")
    template = _object(payload["task_template"], "task_template")
    container = _object(template.get("container_spec"), "task_template.container_spec")
    resources = _object(template.get("resources"), "task_template.resources")
    placement = _object(template.get("placement"), "task_template.placement")

    mounts = tuple(
        _mount(item, index, prefixes)
        for index, item in enumerate(_array(container.get("mounts"), "container_spec.mounts", MAX_ITEMS))
    )
    targets: set[str] = set()
    for mount in mounts:
        if mount.target in targets:
            raise UserOptionsError(f"two mounts share the target {_shown(mount.target)}")
        targets.add(mount.target)

    cpu_limit = _cpus(resources.get("cpu_limit"), "resources.cpu_limit")
    cpu_reservation = _cpus(resources.get("cpu_reservation"), "resources.cpu_reservation")
    if cpu_limit is not None and cpu_reservation is not None and cpu_reservation > cpu_limit:
        raise UserOptionsError(
            f"resources.cpu_reservation ({cpu_reservation:g}) is more than resources.cpu_limit ({cpu_limit:g})"
        )
    mem_limit = parse_memory(resources.get("mem_limit"), "resources.mem_limit")
    mem_reservation = parse_memory(resources.get("mem_reservation"), "resources.mem_reservation")
    if mem_limit is not None and mem_limit < MIN_MEMORY_LIMIT:
        raise UserOptionsError("resources.mem_limit is too small (at least 6M)")
    if mem_limit is not None and mem_reservation is not None and mem_reservation > mem_limit:
        raise UserOptionsError("resources.mem_reservation is more than resources.mem_limit")

    return LaunchSpec(
        image=_image(container.get("image")),
        cmd=_command(container.get("command")),
        env=MappingProxyType(
            _string_map(container.get("env"), "container_spec.env", _ENV_KEY_RE, secret_values=True)
        ),
        labels=MappingProxyType(_labels(container.get("labels"))),
        mounts=mounts,
        cpu_limit=cpu_limit,
        cpu_reservation=cpu_reservation,
        mem_limit=mem_limit,
        mem_reservation=mem_reservation,
        generic_resources=MappingProxyType(_generic_resources(resources.get("generic_resources"))),
        constraints=_constraints(placement.get("constraints")),
    )
