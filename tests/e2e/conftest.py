"""A live local stack for the end-to-end tests, brought up once per session and torn down at its end.

It is the demo, under its own names so it never touches an operator's demo: `scripts/demo.sh up` (images from
scripts/build-images.sh, the stack through console/backend/stack.py, the XNAT stand-in container on the stack's
overlay network) with stack `xjh-e2e`, network `xjh-e2e-network`, secrets `xjh_e2e_*`, free ports, and state and
config directories of its own. `scripts/demo.sh down` removes it all at the end (tests/e2e/test_zz_down.py
asserts that nothing is left).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.helpers.live import NETWORK, SECRETS_PREFIX, STACK, STANDIN, LiveStack, bring_up_demo


@pytest.fixture(scope="session")
def live_stack() -> Iterator[LiveStack]:
    try:
        stack = bring_up_demo(LiveStack, stack=STACK, network=NETWORK, secrets_prefix=SECRETS_PREFIX, standin=STANDIN)
    except RuntimeError as e:
        pytest.fail(str(e))
    try:
        yield stack
    finally:
        if stack.up:
            stack.demo("down")
        for volume in stack.created_volumes:
            subprocess.run(["docker", "volume", "rm", volume], capture_output=True)
        shutil.rmtree(stack.work_dir, ignore_errors=True)
