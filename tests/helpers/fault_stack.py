"""A live local stack of its own for the fault, secrets and load runs, which kill the hub and break XNAT: the e2e
tests' stack (tests/e2e) must not feel that, so this one is the same demo (`scripts/demo.sh up`, reused through
`tests/helpers/live.py`'s LiveStack) under other names: stack `xjh-flt`, network `xjh-flt-network`, secrets
`xjh_flt_*`, stand-in `xjh-flt-standin`, free ports, its own state directories. `scripts/demo.sh down` removes
it all.

`fault_stack_up()` is shared by every user in one process (tests/faults, tests/secrets, tests/hostile,
bench/bench_faults.py): the first caller brings the stack up, the last one to leave takes it down. Between
processes, an exclusive lock (/var/tmp/xjh-flt.lock) makes a second run wait for the first instead of tearing its
stack down under it: the names are fixed, so that a run that was killed is cleaned up by the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

from hub.standin import options as xnat_options
from hub.standin.plugin import HubError
from tests.helpers.live import LiveStack, bring_up_demo

STACK = "xjh-flt"
NETWORK = "xjh-flt-network"
SECRETS_PREFIX = "xjh_flt"
STANDIN = "xjh-flt-standin"
HUB_SERVICE = f"{STACK}_jupyterhub"
# The hub's XNAT timeout in the stack: JH_XNAT_TIMEOUT's default.
XNAT_TIMEOUT = 10.0


@dataclass
class FaultStack(LiveStack):
    def fault(self, **fault: object) -> None:
        """Set a fault on the stand-in's XNAT port (latency, status, garbage, path, times, down)."""
        self.control("PUT", "/faults", fault)

    def clear_faults(self) -> None:
        self.control("DELETE", "/faults")

    def hub_container(self) -> str:
        return subprocess.run(
            ["docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={HUB_SERVICE}"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()

    def hub_healthy(self) -> bool:
        try:
            return httpx.get(f"{self.hub_url}/hub/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def hub_logs(self) -> str:
        return service_logs(HUB_SERVICE)


def service_logs(service: str) -> str:
    """The logs of every container of the service still on this engine (running or exited; a killed hub's
    container stays until swarm's task history drops it), stdout and stderr (where JupyterHub logs) together.

    Read container by container: `docker service logs` of the hub once hung for over a minute after the hub had
    been killed twice in the same stack (seen once under heavy load, not reproduced).
    """
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.swarm.service.name={service}"],
                         capture_output=True, text=True, check=True, timeout=60).stdout.split()
    return "".join(
        subprocess.run(["docker", "logs", container], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       errors="replace", timeout=60).stdout
        for container in ids
    )


_shared: FaultStack | None = None
_users = 0
_lock: IO[str] | None = None
LOCK_FILE = Path("/var/tmp/xjh-flt.lock")
LOCK_WAIT = 1800.0  # a slow run of another session can take this long


def _take_lock() -> IO[str]:
    lock = open(LOCK_FILE, "a+")  # noqa: SIM115  (held for the session: closing it releases the lock)
    deadline = time.monotonic() + LOCK_WAIT
    told = False
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock
        except BlockingIOError:
            if time.monotonic() > deadline:
                lock.close()
                raise RuntimeError(f"another run has held the fault stack ({LOCK_FILE}) for {LOCK_WAIT:g} s") from None
            if not told:
                print(f"waiting for another run of the fault stack to finish ({LOCK_FILE})", file=sys.stderr)
                told = True
            time.sleep(1.0)


@contextmanager
def fault_stack_up() -> Iterator[FaultStack]:
    """The fault stack, up for as long as the outermost `with` lasts. Raises RuntimeError if it cannot come up."""
    global _shared, _users, _lock
    if _shared is None:
        _lock = _take_lock()
        try:
            _shared = _bring_up()
        except BaseException:
            _lock.close()
            _lock = None
            raise
    _users += 1
    try:
        yield _shared
    finally:
        _users -= 1
        if _users == 0:
            stack, _shared = _shared, None
            try:
                stack.demo("down")
                shutil.rmtree(stack.work_dir, ignore_errors=True)
            finally:
                if _lock is not None:
                    _lock.close()  # releases the flock
                    _lock = None


def _bring_up() -> FaultStack:
    return bring_up_demo(FaultStack, stack=STACK, network=NETWORK, secrets_prefix=SECRETS_PREFIX, standin=STANDIN)


def fault_stack_fixture() -> Iterator[FaultStack]:
    """`fault_stack_up()` for a fixture to `yield from`: a stack that cannot come up fails the test with the reason."""
    try:
        with fault_stack_up() as stack:
            yield stack
    except RuntimeError as e:
        pytest.fail(str(e))


def notebook_options(user: str, server: str) -> dict:
    # small: 20 of these must fit on two shared cores
    return xnat_options.user_options(user, server, image="xnat-jupyterhub/singleuser:dev", cpu_limit=0.5,
                                     cpu_reservation=None, mem_limit="256M", mem_reservation=None)


async def stop_all(stack: FaultStack, servers: dict[str, str]) -> None:
    async with stack.plugin() as plugin:
        for user, server in servers.items():
            with contextlib.suppress(HubError):
                await plugin.stop_server(user, server)
        for user, server in servers.items():
            await plugin.wait_gone(user, server, timeout=120)
