"""Waiting for a condition instead of sleeping, and a free port to bind."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` now (0.0.0.0 for one that a published Docker port will take)."""
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(
    condition: Callable[[], T],
    timeout: float,
    what: str,
    interval: float = 0.2,
    details: Callable[[], str] | None = None,
) -> T:
    """Poll `condition()` until it returns something truthy, and return that; fail naming `what` at the deadline,
    followed by `details()` (a log's tail, say) when given.

    The condition may raise while the thing is not up yet (a refused connection, a key not there yet): that counts
    as not yet, and the last such error is named at the deadline. An AssertionError is the condition saying it will
    never come (the process it waits for has exited): it fails at once.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = condition()
        except AssertionError:
            raise
        except Exception as e:
            last_error = e
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            more = f"\n{details()}" if details is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{detail}{more}")
        time.sleep(interval)
