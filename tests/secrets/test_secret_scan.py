"""No token or password in use ever shows up where an operator or an attacker could read it.

A full round on the live stack: logins through the form (one right, one wrong password), an XNAT-style launch,
XNAT's token for the notebook used in a header and in `?token=` as XNAT opens notebooks, the console's commands
(status, servers, services, logs of the hub and of the notebook, a server stop that goes to the audit log) and its
screens on the live backend. Then every log (hub and its proxy, the notebook service, the XNAT stand-in, the
console's output and audit log), every console screen capture and `docker service inspect` of the hub are
scanned for each secret: the three Docker secrets, the users' passwords, XNAT's token, and the notebook's own
JUPYTERHUB_API_TOKEN. The count must be zero everywhere.

Also: the console's inspect redacts secret env values, while Docker's own inspect of a notebook service holds its
JUPYTERHUB_API_TOKEN in plain text (which is why the console must redact it).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from console.app import XnatConsoleApp
from console.backend.live import LiveBackend
from console.backend.models import REDACTED
from console.config import load_config
from tests.helpers.fault_stack import HUB_SERVICE, STANDIN, FaultStack, service_logs
from tests.helpers.live import login
from tests.helpers.secrets_stack import Notebook

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(900)]

PASSWORDS = {"alice": "alice-password", "Alice.Smith": "smith-password"}  # the demo cast's


def notebook_api_token(service: str) -> str:
    inspect = json.loads(subprocess.run(["docker", "service", "inspect", service], capture_output=True, text=True,
                                        check=True).stdout)
    env = dict(e.split("=", 1) for e in inspect[0]["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"])
    return env["JUPYTERHUB_API_TOKEN"]


def console(stack: FaultStack, home: Path, *args: str) -> str:
    command = Path(sys.executable).parent / "xnat-jh-console"
    env = {"PATH": stack.env["PATH"], "HOME": str(home), "XDG_STATE_HOME": str(home),
           "XDG_CONFIG_HOME": stack.env["XDG_CONFIG_HOME"], "LANG": "C.UTF-8"}
    result = subprocess.run([str(command), *args], capture_output=True, text=True, env=env, timeout=180,
                            stdin=subprocess.DEVNULL)
    assert "Traceback" not in result.stderr, result.stderr
    return f"$ xnat-jh-console {' '.join(args)} (exit {result.returncode})\n{result.stdout}{result.stderr}"


async def screen_captures(stack: FaultStack, home: Path, notebook: Notebook) -> dict[str, str]:
    """Each screen of the console on the live backend, as the SVG Textual exports."""
    config = load_config(str(Path(stack.env["XDG_CONFIG_HOME"]) / "xnat-jh-console" / "config.toml"),
                         env={"XDG_STATE_HOME": str(home)})
    app = XnatConsoleApp(LiveBackend(config), config)
    captures = {}
    async with app.run_test(size=(180, 50)) as pilot:
        for key, screen in (("1", "overview"), ("2", "servers"), ("3", "services"), ("4", "nodes"),
                            ("6", "xnat"), ("7", "deploy")):
            await pilot.press(key)
            await pilot.pause(3.0)  # let the live refresh fill the screen (nothing to poll for: it is a picture)
            captures[screen] = app.export_screenshot()
        app.open_logs(f"{notebook.user}/{notebook.server}")
        await pilot.pause(3.0)
        captures["logs"] = app.export_screenshot()
    return captures


def test_the_consoles_inspect_redacts_what_docker_shows_in_plain_text(secrets_stack: FaultStack,
                                                                      notebook: Notebook, tmp_path: Path) -> None:
    token = notebook_api_token(notebook.service)
    assert len(token) >= 16  # Docker's own inspect: in plain text
    config = load_config(str(Path(secrets_stack.env["XDG_CONFIG_HOME"]) / "xnat-jh-console" / "config.toml"),
                         env={"XDG_STATE_HOME": str(tmp_path)})
    backend = LiveBackend(config)
    try:
        for service in (notebook.service, HUB_SERVICE):
            inspected = backend.inspect_service(service)
            text = json.dumps(inspected)
            env = dict(e.split("=", 1) for e in inspected["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"])
            shown = token in text  # a bare `token not in text` would print the token on failure
            assert not shown, f"the notebook's JUPYTERHUB_API_TOKEN is in the console's inspect of {service}"
            for name, value in env.items():
                if any(word in name for word in ("TOKEN", "PASSWORD", "SECRET")) and not name.endswith("_FILE"):
                    assert value == REDACTED, (service, name)
        notebook_env = dict(e.split("=", 1) for e in
                            backend.inspect_service(notebook.service)["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"])
        assert notebook_env["JUPYTERHUB_API_TOKEN"] == REDACTED
        assert notebook_env["JUPYTERHUB_USER"] == notebook.user  # the rest is left readable
    finally:
        asyncio.run(backend.aclose())
    in_our_env = os.environ.get("JUPYTERHUB_API_TOKEN") == token
    assert not in_our_env, "the notebook's JUPYTERHUB_API_TOKEN is in the test process's environment"


# Last in the module: it stops the module's notebook through the console (for the audit log).
def test_no_secret_anywhere_after_a_full_round(secrets_stack: FaultStack, notebook: Notebook, tmp_path: Path) -> None:
    stack = secrets_stack
    wrong_password = f"wrong-{secrets.token_urlsafe(12)}"
    with login(stack.hub_url, "alice", PASSWORDS["alice"]) as (answer, _):
        assert answer.status_code == 302
    with login(stack.hub_url, "alice", wrong_password) as (answer, _):
        assert answer.status_code == 403
    with login(stack.hub_url, "Alice.Smith", PASSWORDS["Alice.Smith"]) as (answer, _):
        assert answer.status_code == 302

    notebook_url = f"{stack.hub_url}/user/{notebook.user}/{notebook.server}"
    assert httpx.get(f"{notebook_url}/api", headers={"Authorization": f"token {notebook.token}"},
                     timeout=30).status_code == 200
    # as XNAT opens a notebook: the token in the URL
    assert httpx.get(f"{notebook_url}/lab?token={notebook.token}", timeout=30, follow_redirects=True).status_code == 200

    sources: dict[str, str] = {}
    for args in (["status", "--json"], ["servers", "--json"], ["services"], ["services", notebook.service, "--json"],
                 ["logs", "hub", "--tail", "500"], ["logs", f"{notebook.user}/{notebook.server}", "--tail", "500"],
                 ["check", "--json"]):
        sources[f"console {' '.join(args)}"] = console(stack, tmp_path, *args)
    for screen, svg in asyncio.run(screen_captures(stack, tmp_path, notebook)).items():
        sources[f"console screen {screen}"] = svg
        (tmp_path / f"screen-{screen}.svg").write_text(svg)

    secret_values = {
        "XNAT's service token": stack.secret("xnat_service_token"),
        "the hub's XNAT password": stack.secret("xnat_password"),
        "the console's token": stack.secret("console_token"),
        "alice's password": PASSWORDS["alice"],
        "Alice.Smith's password": PASSWORDS["Alice.Smith"],
        "a wrong password": wrong_password,
        "XNAT's notebook token": notebook.token,
        "the notebook's JUPYTERHUB_API_TOKEN": notebook_api_token(notebook.service),
    }
    sources["notebook service logs"] = service_logs(notebook.service)
    # the audit log gets a real action: XNAT's server stopped through the console (the fixture tolerates it)
    sources["console server stop"] = console(stack, tmp_path, "server", "stop", f"{notebook.user}/{notebook.server}")
    audit = tmp_path / "xnat-jh-console" / "audit.log"
    assert audit.exists() and oct(audit.stat().st_mode & 0o777) == "0o600"
    sources["console audit log"] = audit.read_text()
    sources["hub and proxy logs"] = service_logs(HUB_SERVICE)
    sources["XNAT stand-in logs"] = subprocess.run(["docker", "logs", STANDIN], stdout=subprocess.PIPE,
                                                   stderr=subprocess.STDOUT, text=True, timeout=60).stdout
    sources["docker service inspect (hub)"] = subprocess.run(["docker", "service", "inspect", HUB_SERVICE],
                                                             capture_output=True, text=True, check=True).stdout

    assert all(sources.values()), [name for name, text in sources.items() if not text]
    assert "XNAT login refused for 'alice'" in sources["hub and proxy logs"]  # the scan reads the real log
    found = {(secret, source): text.count(value) for secret, value in secret_values.items()
             for source, text in sources.items() if value in text}
    report = "\n".join(f"{count}x {secret} in {source}" for (secret, source), count in found.items())
    print(f"secret scan: {len(secret_values)} secrets x {len(sources)} sources, "
          f"{sum(len(t) for t in sources.values())} characters: {sum(found.values())} occurrences")
    assert not found, report
