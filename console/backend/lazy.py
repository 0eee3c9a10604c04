"""Imports the console puts off until they are needed, so its first frame does not wait for them.

The docker SDK takes ~170 ms to import, most of it paramiko (~90 ms), which only `ssh://` engines use; the SDK
imports it whenever it is installed. `docker` here is a stand-in module: the SDK is imported on first use of
one of its names (a thread worker's first engine call, after the first frame), and without paramiko;
`enable_docker_ssh()` adds the SDK's SSH support when an `ssh://` engine is about to be used.
"""

from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType

_SSH_MODULE = "docker.transport.sshconn"
_lock = threading.Lock()


def import_docker() -> ModuleType:
    """The docker SDK, with its submodules the console names, imported without its SSH transport."""
    with _lock:
        if "docker.errors" in sys.modules and "docker.tls" in sys.modules:
            return sys.modules["docker"]
        blocked = "docker.transport" not in sys.modules and _SSH_MODULE not in sys.modules
        if blocked:
            # A None entry makes `from .sshconn import SSHHTTPAdapter` raise ImportError, which the SDK
            # catches: it then has no SSH adapter until enable_docker_ssh() gives it one.
            sys.modules[_SSH_MODULE] = None  # type: ignore[assignment]
        try:
            for name in ("docker", "docker.errors", "docker.tls"):
                importlib.import_module(name)
        finally:
            if blocked and sys.modules.get(_SSH_MODULE, 0) is None:
                del sys.modules[_SSH_MODULE]
        return sys.modules["docker"]


def enable_docker_ssh() -> None:
    """Give the SDK its SSH transport (imports paramiko). Raises ImportError when paramiko is not installed."""
    import_docker()
    with _lock:
        sshconn = importlib.import_module(_SSH_MODULE)
        for holder in ("docker.transport", "docker.api.client"):  # where the SDK looks the adapter up
            setattr(sys.modules[holder], "SSHHTTPAdapter", sshconn.SSHHTTPAdapter)


class LazyModule(ModuleType):
    """Stands in for a module and imports it when one of its names is first used."""

    def __init__(self, name: str, load) -> None:
        super().__init__(name)
        self._load = load

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        module = self._load()
        value = getattr(module, attr)
        setattr(self, attr, value)  # the next use is a plain attribute read
        return value


docker = LazyModule("docker", import_docker)
requests = LazyModule("requests", lambda: importlib.import_module("requests.exceptions") and sys.modules["requests"])
