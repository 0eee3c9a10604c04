"""`scripts/demo.sh down` removes everything `up` created, including a notebook service the hub spawned that is
still running (which `docker stack rm` alone leaves behind). Runs last: it takes the live stack down."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers.live import E2E_TIMEOUT, NETWORK, SECRETS_PREFIX, STACK, STANDIN, LiveStack, xnat_launch

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(E2E_TIMEOUT)]


def names(*args: str) -> list[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.split()


async def test_down_leaves_nothing_of_the_project(live_stack: LiveStack):
    server, _body, _model = await xnat_launch(live_stack, "alice")
    running = [s["Spec"]["Name"] for s in live_stack.notebook_services("alice", server)]
    assert len(running) == 1
    assert f"{STACK}_jupyterhub" in names("service", "ls", "--format", "{{.Name}}")

    result = live_stack.demo("down")
    live_stack.up = False
    assert result.returncode == 0, result.stdout[-2000:]
    assert f"removed service {running[0]}" in result.stdout or f"removed server alice/{server}" in result.stdout

    services = names("service", "ls", "--format", "{{.Name}}")
    assert running[0] not in services
    assert not [s for s in services if s.startswith(f"{STACK}_")]
    assert NETWORK not in names("network", "ls", "--format", "{{.Name}}")
    assert not [s for s in names("secret", "ls", "--format", "{{.Name}}") if s.startswith(f"{SECRETS_PREFIX}_")]
    assert not [v for v in names("volume", "ls", "--format", "{{.Name}}") if v.startswith(f"{STACK}_")]
    assert STANDIN not in names("ps", "-a", "--format", "{{.Names}}")
    assert not live_stack.secrets_dir.exists()
