"""Faults the stand-in can inject into its XNAT answers, and the garbage bodies it serves."""

from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

GARBAGE_KINDS = ("html", "truncated-json", "wrong-types")

# What a reverse proxy or an expired-session redirect tends to put in front of a JSON client.
HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>XNAT</title></head>\n"
    "<body><h1>Login</h1><form action=\"/login\" method=\"post\"></form></body></html>\n"
)

MAX_LATENCY = 600.0


@dataclass(frozen=True)
class Fault:
    """One injected fault for the XNAT port.

    `path` is a glob on the raw request path (`/xapi/users/*/roles`); None matches every path.
    `times` limits the fault to that many requests; None keeps it until cleared.
    """

    latency: float = 0.0
    status: int | None = None
    garbage: str | None = None
    path: str | None = None
    times: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.latency, bool) or not isinstance(self.latency, (int, float)):
            raise ValueError(f"latency must be a number of seconds, got {self.latency!r}")
        if not math.isfinite(self.latency) or not 0 <= self.latency <= MAX_LATENCY:
            raise ValueError(f"latency must be between 0 and {MAX_LATENCY:g} seconds, got {self.latency!r}")
        if self.status is not None and (
            isinstance(self.status, bool) or not isinstance(self.status, int) or not 200 <= self.status <= 599
        ):
            raise ValueError(f"status must be an HTTP status between 200 and 599, got {self.status!r}")
        if self.garbage is not None and self.garbage not in GARBAGE_KINDS:
            raise ValueError(f"garbage must be one of {', '.join(GARBAGE_KINDS)}, got {self.garbage!r}")
        if self.path is not None and (not isinstance(self.path, str) or not self.path.startswith("/")):
            raise ValueError(f"path must be a glob starting with '/', got {self.path!r}")
        if self.times is not None and (
            isinstance(self.times, bool) or not isinstance(self.times, int) or self.times < 1
        ):
            raise ValueError(f"times must be a whole number of at least 1, got {self.times!r}")
        if not (self.latency or self.status is not None or self.garbage is not None):
            raise ValueError("a fault needs at least one of latency, status or garbage")

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        """A Fault from the control API's JSON object (`down` is handled by the caller)."""
        if not isinstance(data, dict):
            raise ValueError("a fault must be a JSON object")
        unknown = set(data) - {"latency", "status", "garbage", "path", "times", "down"}
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        fields = {k: v for k, v in data.items() if k != "down"}
        fields.setdefault("latency", 0.0)
        return cls(**fields)

    def matches(self, path: str) -> bool:
        return self.path is None or fnmatch.fnmatchcase(path, self.path)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def wrong_types(value: Any) -> Any:
    """The same document with every value swapped for one of another JSON type.

    Objects keep their keys (so a client finds what it looks for, with the wrong type), arrays keep their length.
    """
    if isinstance(value, dict):
        return {key: _swap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_swap(item) for item in value]
    return _swap(value)


def _swap(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return [value]
    if value is None:
        return {}
    if isinstance(value, list):
        return {str(i): item for i, item in enumerate(value)}
    return [[key, item] for key, item in value.items()]


def garbage_body(kind: str, answer: Any) -> tuple[str, str]:
    """(content type, body) of garbage of `kind` standing in for `answer` (JSON data, or text for errors)."""
    if kind == "html":
        return "text/html;charset=UTF-8", HTML_PAGE
    document = answer if not isinstance(answer, str) else {"message": answer}
    if kind == "truncated-json":
        text = json.dumps(document)
        # Every answer is an object or an array, so any proper prefix is unbalanced and fails to parse.
        return "application/json;charset=UTF-8", text[: max(1, len(text) // 2)]
    if kind == "wrong-types":
        return "application/json;charset=UTF-8", json.dumps(wrong_types(document))
    raise ValueError(f"unknown garbage kind {kind!r}")
