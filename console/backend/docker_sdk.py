"""The docker SDK, imported when the first client is made instead of at start-up.

The SDK costs ~100 ms of imports, and its transport package imports paramiko (~90 ms more) whenever paramiko is
installed, although only `ssh://` engines use it. The SDK treats paramiko as optional (it catches the
ImportError), so `load()` imports it as if paramiko were absent unless an `ssh://` engine is asked for; a later
`load(ssh=True)` adds the SSH transport then.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

_lock = threading.Lock()


class _WithoutParamiko:
    """A meta path finder (the protocol, not importlib.abc's class, which imports importlib.resources) that makes
    `import paramiko` fail while the SDK loads, so the SDK leaves its SSH transport out."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == "paramiko" or fullname.startswith("paramiko."):
            raise ImportError(f"{fullname} is not loaded: no ssh:// engine is in use")
        return None


def load(*, ssh: bool = False) -> None:
    """Import the docker SDK (once), with paramiko and the SSH transport only when `ssh`. Raises ImportError
    when `ssh` is asked for and paramiko is not installed."""
    with _lock:
        if "docker" not in sys.modules and not ssh and "paramiko" not in sys.modules:
            blocker = _WithoutParamiko()
            sys.meta_path.insert(0, blocker)
            try:
                import docker
            finally:
                sys.meta_path.remove(blocker)
        import docker.api.client
        import docker.errors
        import docker.tls
        import docker.transport
        import docker.types

        if ssh and not hasattr(docker.transport, "SSHHTTPAdapter"):
            # Loaded without it earlier: the SDK binds the adapter where it imported it, in both modules.
            from docker.transport.sshconn import SSHHTTPAdapter

            for module in (docker.transport, docker.api.client):
                vars(module)["SSHHTTPAdapter"] = SSHHTTPAdapter
