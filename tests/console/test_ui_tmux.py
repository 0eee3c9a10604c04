"""The installed `xnat-jh-console`, in a real terminal (tmux), against a live local stack.

It opens the servers screen, restarts a server (following the spawn progress), reads its logs, and stops it:
what an operator does, keys and all. The stack is the demo (`scripts/demo.sh up`) under names of its own
(`xjh-tui*`), with one named server launched the way XNAT launches it; `scripts/demo.sh down` removes it all.
The stack helpers come from tests/helpers/live.py, shared with the end-to-end tests.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers.live import LiveStack, xnat_launch
from tests.helpers.waiting import free_port

REPO = Path(__file__).resolve().parents[2]
CONSOLE = Path(sys.executable).with_name("xnat-jh-console")
NAMES = {
    "JH_STACK_NAME": "xjh-tui",
    "JH_NETWORK": "xjh-tui-network",
    "JH_SECRETS_PREFIX": "xjh_tui",
    "XJH_STANDIN_NAME": "xjh-tui-standin",
}
USER = "alice"

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(900)]


class Terminal:
    """One tmux session on a tmux server of its own (its own socket), so nothing else is touched."""

    def __init__(self, command: list[str], env: dict[str, str], size: tuple[int, int] = (200, 50)) -> None:
        self.socket = f"xjh-tui-{os.getpid()}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        # COLUMNS/LINES inherited from a test runner would override the pane's real size.
        shell = f"env -u COLUMNS -u LINES {exports} {shlex.join(command)}; echo CONSOLE-EXITED=$?; sleep 600"
        width, height = str(size[0]), str(size[1])
        self._tmux("new-session", "-d", "-s", "console", "-x", width, "-y", height, shell)

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True).stdout

    def press(self, *keys: str) -> None:
        for key in keys:
            self._tmux("send-keys", "-t", "console", key)
            time.sleep(0.15)  # one key per event-loop turn, as a person types

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "console", "-l", text)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "console")

    def wait_for(self, condition: Callable[[str], object], what: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if condition(text):
                return text
            if "CONSOLE-EXITED=" in text:
                pytest.fail(f"the console exited while waiting for {what}:\n{text}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:g} s waiting for {what}; the screen:\n{text}")
            time.sleep(0.25)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture(scope="module")
def tui_stack() -> Iterator[tuple[object, str]]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed: apt-get install tmux")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("no Docker engine answers: run the tests with scripts/test.sh, which starts one")
    work_dir = Path(tempfile.mkdtemp(prefix="xjh-tui-", dir="/var/tmp"))
    allowed_root = work_dir / "xnat-data"
    allowed_root.mkdir()
    ports = [free_port("0.0.0.0") for _ in range(3)]
    env = {
        **os.environ,
        **NAMES,
        "JH_PORT": str(ports[0]),
        "XJH_STANDIN_PORT": str(ports[1]),
        "XJH_STANDIN_CONTROL_PORT": str(ports[2]),
        "XDG_STATE_HOME": str(work_dir / "state"),
        "XDG_CONFIG_HOME": str(work_dir / "config"),
        "JH_MOUNT_ALLOWED_PREFIXES": str(allowed_root),
        "XJH_NO_CONSOLE": "1",
        "XJH_SKIP_BOOTSTRAP": "1",
    }
    stack = LiveStack(env, ports[1], ports[2], work_dir, allowed_root, work_dir / "demo.log")
    stack.demo("down")  # a killed run may have left it behind: same names
    result = stack.demo("up")
    try:
        if result.returncode != 0:
            pytest.fail(f"scripts/demo.sh up failed (exit {result.returncode}):\n{result.stdout[-3000:]}")
        import asyncio

        server, _, _ = asyncio.run(xnat_launch(stack, USER, timeout=180))
        yield stack, server
    finally:
        stack.demo("down")
        shutil.rmtree(work_dir, ignore_errors=True)


def test_servers_stop_restart_and_logs_in_a_real_terminal(tui_stack):
    stack, server = tui_stack
    env = {k: v for k, v in stack.env.items() if k.startswith(("XDG_", "PATH", "HOME", "LANG", "DOCKER_"))}
    env["TERM"] = "xterm-256color"
    term = Terminal([str(CONSOLE)], env)
    try:
        term.wait_for(lambda s: "● hub" in s, "the hub to show healthy in the top bar")
        term.press("2")
        term.wait_for(lambda s: server in s and "ready" in s, "the server's row, ready")
        term.press("/")
        term.type(server)
        term.press("Enter")
        term.wait_for(lambda s: "1/1 servers" in s, "the filter to leave only that server")

        # Restart: stop, then start with the same user_options, the spawn's progress shown live.
        term.press("r")
        term.wait_for(lambda s: "Restart 1 server?" in s, "the confirmation")
        term.press("y")
        screen = term.wait_for(lambda s: "done: ready" in s or "failed:" in s, "the restart's end", timeout=240)
        assert "done: ready" in screen, f"the restart failed:\n{screen}"
        assert "starting with the same user_options" in screen
        assert len(stack.notebook_services(USER, server)) == 1
        term.press("Escape")

        # Its logs: the notebook server's own lines, through the swarm's service logs.
        term.press("l")
        term.wait_for(lambda s: "· streaming ·" in s, "the log stream")
        term.wait_for(lambda s: "ServerApp" in s, "the notebook server's own log lines", timeout=90)

        # Stop, from the servers screen: asked first, then gone from the hub and the swarm.
        term.press("2")
        term.wait_for(lambda s: f"{server}  ready" in s, "the server's row, ready again")
        term.press("s")
        term.wait_for(lambda s: "Stop 1 server?" in s, "the confirmation")
        term.press("y")
        term.wait_for(lambda s: "0/1 servers" in s or "0/0 servers" in s, "the stopped server to leave", timeout=90)
        assert stack.notebook_services(USER, server) == []  # the hub removed the swarm service
        term.press("C-q")
        term.wait_for(lambda s: "CONSOLE-EXITED=0" in s, "a clean exit")
    finally:
        term.close()
