"""A deploy that fails shows as failed, in the TUI and in the CLI: against the live engine, with a stack whose
Docker secrets do not exist. Pre-flight refuses before anything is created; the test checks that nothing of
its names is left behind either way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from console.app import XnatConsoleApp
from console.backend.live import LiveBackend
from console.backend.models import Outcome
from console.config import ConsoleConfig
from console.screens.deploy import DeployScreen
from tests.helpers.console_backend import _tiny_rootfs_tar
from tests.helpers.waiting import free_port

pytestmark = [pytest.mark.docker, pytest.mark.timeout(180)]

PREFIX = "xjh-h10a"
STACK = f"{PREFIX}-deploy"
IMAGE = f"{PREFIX}/tiny:latest"
SECRETS_PREFIX = f"{PREFIX}_absent"


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    docker = pytest.importorskip("docker")
    client = docker.from_env()
    repository, tag = IMAGE.split(":")
    client.api.import_image_from_data(_tiny_rootfs_tar(), repository=repository, tag=tag)
    yield IMAGE
    client.images.remove(IMAGE, force=True)
    client.close()


@pytest.fixture
def stack_env(image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Stack variables naming only our own things, and no recorded demo variables (JH_STACK_ENV_FILE)."""
    values = {
        "JH_IMAGE": image,
        "JH_XNAT_URL": "http://xnat.invalid",
        "JH_NETWORK": f"{PREFIX}-net",
        "JH_SECRETS_PREFIX": SECRETS_PREFIX,
        "JH_PORT": str(free_port()),
        "JH_STACK_ENV_FILE": str(tmp_path / "no-stack.env"),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    yield values
    assert _left_behind() == [], "the failed deploy left something behind"


def _left_behind() -> list[str]:
    def names(*args: str) -> list[str]:
        out = subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout
        return [line for line in out.split() if line.startswith(PREFIX)]

    return (
        names("service", "ls", "--format", "{{.Name}}")
        + names("network", "ls", "--format", "{{.Name}}")
        + names("secret", "ls", "--format", "{{.Name}}")
        + names("volume", "ls", "--format", "{{.Name}}")
    )


def _config(tmp_path: Path) -> ConsoleConfig:
    return ConsoleConfig(stack=STACK, network=f"{PREFIX}-net", audit_log=str(tmp_path / "audit.log"), timeout=5)


def test_backend_deploy_with_a_missing_secret_is_failed(stack_env, tmp_path):
    backend = LiveBackend(_config(tmp_path))
    lines: list[str] = []
    result = backend.deploy(progress=lines.append)
    assert result.outcome is Outcome.FAILED
    assert "Docker secrets missing" in result.detail and f"{SECRETS_PREFIX}_console_token" in result.detail
    assert any("images present" in line for line in lines)  # it got as far as the secrets
    assert backend.audit.entries()[-1]["outcome"] == "failed"


async def test_tui_deploy_with_a_missing_secret_shows_the_failure(stack_env, tmp_path, wait_for):
    config = _config(tmp_path)
    app = XnatConsoleApp(LiveBackend(config), config)
    notes: list[str] = []  # every notification, kept past its timeout (a loaded machine may be slow to look)
    shown = app.notify

    def notify(message: str, **kwargs: object) -> None:
        notes.append(message)
        shown(message, **kwargs)  # type: ignore[arg-type]

    app.notify = notify  # type: ignore[method-assign]
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("7", "D", "y")
        screen = app.screen
        status = lambda: str(screen.query_one("#status-line").render())  # noqa: E731
        await wait_for(pilot, lambda: "deploy failed" in status(), "the failure on the status line", timeout=60)
        assert any("Docker secrets missing" in line for line in cast(DeployScreen, screen).lines)
        assert any(n.startswith("Deploy failed: Docker secrets missing") for n in notes), notes
        assert not any("deployed" in n for n in notes)


def test_cli_deploy_with_a_missing_secret_exits_1_and_says_failed(stack_env, tmp_path):
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "DOCKER_HOST", "LANG")}
    env.update(stack_env)
    env.update({"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_STATE_HOME": str(tmp_path)})
    result = subprocess.run(
        [sys.executable, "-m", "console", "--stack", STACK, "deploy"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"deploy {STACK}: FAILED (Docker secrets missing" in result.stdout
