"""A live local stack for the end-to-end tests, brought up once per session and torn down at its end.

It is the demo, under its own names so it never touches an operator's demo: `scripts/demo.sh up` (images from
scripts/build-images.sh, the stack through console/backend/stack.py, the XNAT stand-in container on the stack's
overlay network) with stack `xjh-e2e`, network `xjh-e2e-network`, secrets `xjh_e2e_*`, free ports, and state and
config directories of its own. `scripts/demo.sh down` removes it all at the end (tests/e2e/test_zz_down.py
asserts that nothing is left).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .live import NETWORK, SECRETS_PREFIX, STACK, STANDIN, LiveStack, free_port


def _engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def live_stack() -> Iterator[LiveStack]:
    if not _engine_answers():
        pytest.fail("no Docker engine answers: run the tests with scripts/test.sh, which starts one")
    work_dir = Path(tempfile.mkdtemp(prefix="xjh-e2e-", dir="/var/tmp"))
    allowed_root = work_dir / "xnat-data"
    allowed_root.mkdir()
    hub_port, standin_port, control_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "JH_STACK_NAME": STACK,
        "JH_NETWORK": NETWORK,
        "JH_SECRETS_PREFIX": SECRETS_PREFIX,
        "JH_PORT": str(hub_port),
        "XJH_STANDIN_NAME": STANDIN,
        "XJH_STANDIN_PORT": str(standin_port),
        "XJH_STANDIN_CONTROL_PORT": str(control_port),
        "XDG_STATE_HOME": str(work_dir / "state"),
        "XDG_CONFIG_HOME": str(work_dir / "config"),
        "JH_MOUNT_ALLOWED_PREFIXES": str(allowed_root),
        "XJH_NO_CONSOLE": "1",
        "XJH_SKIP_BOOTSTRAP": "1",
    }
    stack = LiveStack(env, hub_port, standin_port, control_port, work_dir, allowed_root, work_dir / "demo.log")
    # A run that was killed may have left its stack behind: same names, so clear them first.
    stack.demo("down")
    result = stack.demo("up")
    if result.returncode != 0:
        stack.demo("down")
        pytest.fail(f"scripts/demo.sh up failed (exit {result.returncode}):\n{result.stdout[-3000:]}")
    try:
        yield stack
    finally:
        if stack.up:
            stack.demo("down")
        for volume in stack.created_volumes:
            subprocess.run(["docker", "volume", "rm", volume], capture_output=True)
        shutil.rmtree(work_dir, ignore_errors=True)
