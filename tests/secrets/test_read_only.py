"""`--read-only` refuses every action, one test each, against the live stack: through the console backend
(stop, delete, restart, deploy, stop the stack) and through the installed command (`server stop|restart|delete`,
`deploy`, `stop --yes`). Each refusal is written to the audit log, and nothing changes: the notebook stays ready
on the same task, the stack keeps its services.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from console.backend.live import LiveBackend
from console.backend.models import READ_ONLY, Outcome
from console.config import load_config
from tests.helpers.fault_stack import STACK, FaultStack
from tests.helpers.secrets_stack import Notebook

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(900)]


def console_config_path(stack: FaultStack) -> Path:
    return Path(stack.env["XDG_CONFIG_HOME"]) / "xnat-jh-console" / "config.toml"


def stack_services() -> list[str]:
    listed = subprocess.run(
        ["docker", "service", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={STACK}"],
        capture_output=True, text=True, check=True,
    )
    return sorted(listed.stdout.split())


def notebook_state(stack: FaultStack, notebook: Notebook) -> tuple[bool, list[str]]:
    async def ready() -> bool:
        async with stack.plugin() as plugin:
            model = await plugin.get_server(notebook.user, notebook.server)
            return bool(model and model.get("ready"))

    tasks = subprocess.run(["docker", "service", "ps", "-q", "--filter", "desired-state=running", notebook.service],
                           capture_output=True, text=True, check=True).stdout.split()
    return asyncio.run(ready()), tasks


def audit_lines(path: str) -> list[dict[str, Any]]:
    file = Path(path)
    return [json.loads(line) for line in file.read_text().splitlines()] if file.exists() else []


def read_only_backend(stack: FaultStack, tmp_path: Path) -> LiveBackend:
    config = load_config(str(console_config_path(stack)), env={"XDG_STATE_HOME": str(tmp_path)},
                         overrides={"read_only": True})
    return LiveBackend(config)


async def _stop(backend: LiveBackend, nb: Notebook) -> Any:
    return await backend.stop_server(nb.user, nb.server)


async def _delete(backend: LiveBackend, nb: Notebook) -> Any:
    return await backend.delete_server(nb.user, nb.server)


async def _restart(backend: LiveBackend, nb: Notebook) -> Any:
    return await backend.restart_server(nb.user, nb.server)


async def _deploy(backend: LiveBackend, nb: Notebook) -> Any:
    return await asyncio.to_thread(backend.deploy)


async def _stop_stack(backend: LiveBackend, nb: Notebook) -> Any:
    return await asyncio.to_thread(backend.stop_stack)


BACKEND_ACTIONS = {"stop": _stop, "delete": _delete, "restart": _restart, "deploy": _deploy, "stop-stack": _stop_stack}


@pytest.mark.parametrize("action", list(BACKEND_ACTIONS))
def test_read_only_backend_refuses(secrets_stack: FaultStack, notebook: Notebook, tmp_path: Path, action: str) -> None:
    before = notebook_state(secrets_stack, notebook), stack_services()
    backend = read_only_backend(secrets_stack, tmp_path)
    try:
        outcome = asyncio.run(BACKEND_ACTIONS[action](backend, notebook))
    finally:
        asyncio.run(backend.aclose())
    assert outcome.outcome is Outcome.REFUSED and outcome.detail == READ_ONLY
    assert (notebook_state(secrets_stack, notebook), stack_services()) == before
    (entry,) = audit_lines(backend.config.audit_log)
    assert entry["outcome"] == "refused" and READ_ONLY in json.dumps(entry)


CLI_ACTIONS = {
    "server stop": ["server", "stop"],
    "server restart": ["server", "restart"],
    "server delete": ["server", "delete"],
    "deploy": ["deploy"],
    "stop --yes": ["stop", "--yes"],
}


@pytest.mark.parametrize("action", list(CLI_ACTIONS))
def test_read_only_command_refuses(secrets_stack: FaultStack, notebook: Notebook, tmp_path: Path, action: str) -> None:
    before = notebook_state(secrets_stack, notebook), stack_services()
    args = list(CLI_ACTIONS[action])
    if args[0] == "server":
        args.append(f"{notebook.user}/{notebook.server}")
    command = Path(sys.executable).parent / "xnat-jh-console"
    env = {"PATH": secrets_stack.env["PATH"], "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path),
           "XDG_CONFIG_HOME": secrets_stack.env["XDG_CONFIG_HOME"]}
    result = subprocess.run([str(command), "--read-only", *args], capture_output=True, text=True, env=env,
                            timeout=120, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert result.returncode == 1, (result.returncode, output)
    assert "read-only" in output and "Traceback" not in output
    assert (notebook_state(secrets_stack, notebook), stack_services()) == before
    entries = audit_lines(str(tmp_path / "xnat-jh-console" / "audit.log"))
    assert entries and all(e["outcome"] == "refused" for e in entries), entries
