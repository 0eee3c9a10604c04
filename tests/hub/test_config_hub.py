"""A real `jupyterhub -f hub/jupyterhub_config.py` on loopback, logging in through the real /hub/login form against
the XNAT stand-in, with XNAT's and the console's tokens exercised, and a restart that keeps state.

The spawner stays as configured (XnatSwarmSpawner) but no server is started here: that is the e2e tests' job.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from hub.standin.server import XnatStandin
from tests.helpers.waiting import free_port

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "hub" / "jupyterhub_config.py"
JUPYTERHUB = Path(sys.executable).parent / "jupyterhub"
XNAT_TOKEN = "xnat-service-token-" + "1" * 16
CONSOLE_TOKEN = "console-token-" + "2" * 16
ALICE_PASSWORD = "alice-Pa55word"
BOB_PASSWORD = "bob-Pa55word"

pytestmark = pytest.mark.skipif(
    subprocess.run(["which", "configurable-http-proxy"], capture_output=True).returncode != 0,
    reason="configurable-http-proxy is not on PATH (scripts/test.sh installs it)",
)


class Hub:
    """One jupyterhub process in its own session (so the proxy it starts goes down with it)."""

    def __init__(self, env: dict[str, str], cwd: Path):
        self.port, self.hub_port, self.proxy_api_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}/jupyterhub"
        self.log_path = cwd / f"hub-{self.port}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115  (held open for the process's life; closed when it stops)
        self.process = subprocess.Popen(
            [str(JUPYTERHUB), "-f", str(CONFIG),
             f"--JupyterHub.bind_url=http://127.0.0.1:{self.port}/jupyterhub",
             f"--JupyterHub.hub_bind_url=http://127.0.0.1:{self.hub_port}",
             f"--JupyterHub.hub_connect_url=http://127.0.0.1:{self.hub_port}",
             f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{self.proxy_api_port}"],
            env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def output(self) -> str:
        return self.log_path.read_text()

    async def wait_ready(self, deadline_s: float = 90) -> None:
        deadline = time.monotonic() + deadline_s
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"the hub exited ({self.process.returncode}):\n{self.output()[-3000:]}")
                try:
                    if (await client.get(f"{self.url}/hub/health", timeout=2)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"the hub did not answer within {deadline_s} s:\n{self.output()[-3000:]}")

    async def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while self.process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # the proxy, if the hub left it behind
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self.log.close()


@pytest.fixture
async def start_hub(xnat_standin: XnatStandin, tmp_path: Path) -> AsyncIterator[Callable[[], Awaitable[Hub]]]:
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8",
        "JH_XNAT_URL": xnat_standin.url, "JH_DATA_DIR": str(tmp_path / "data"),
        "JH_XNAT_SERVICE_TOKEN": XNAT_TOKEN, "JH_CONSOLE_TOKEN": CONSOLE_TOKEN,
        "JH_XNAT_TIMEOUT": "3",
    }
    hubs: list[Hub] = []

    async def start() -> Hub:
        hub = Hub(env, tmp_path)
        hubs.append(hub)
        await hub.wait_ready()
        return hub

    yield start
    for hub in hubs:
        await hub.stop()


async def login_form(client: httpx.AsyncClient, hub: Hub, username: str, password: str) -> httpx.Response:
    page = await client.get(f"{hub.url}/hub/login")
    assert page.status_code == 200
    found = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    assert found, "the login page has no _xsrf field"
    xsrf = found.group(1)
    return await client.post(f"{hub.url}/hub/login", data={"_xsrf": xsrf, "username": username,
                                                             "password": password})


async def test_login_through_the_real_hub(start_hub, xnat_standin: XnatStandin):
    xnat_standin.add_user("Alice.Smith", ALICE_PASSWORD, ["Jupyter"])
    xnat_standin.add_user("Bob", BOB_PASSWORD, [])
    hub = await start_hub()
    assert "No allow config found" not in hub.output()

    async with httpx.AsyncClient() as browser:
        page = await browser.get(f"{hub.url}/hub/login")
        assert "Sign in with your XNAT username and password." in page.text

        wrong = await login_form(browser, hub, "Alice.Smith", "wrong-" + ALICE_PASSWORD)
        assert wrong.status_code == 403 and "Invalid username or password." in wrong.text

        no_role = await login_form(browser, hub, "Bob", BOB_PASSWORD)
        assert no_role.status_code == 403
        assert "Your XNAT account does not have the Jupyter role." in no_role.text

        odd = await login_form(browser, hub, "../admin", ALICE_PASSWORD)
        assert odd.status_code == 403 and "must not be &#39;.&#39; or contain &#39;..&#39;" in odd.text

        xnat_standin.set_fault(down=True)
        down = await login_form(browser, hub, "Alice.Smith", ALICE_PASSWORD)
        assert down.status_code == 503 and "XNAT is unreachable" in down.text
        xnat_standin.set_fault(down=False)

        ok = await login_form(browser, hub, "Alice.Smith", ALICE_PASSWORD)
        assert ok.status_code == 302, ok.text[-500:]
        assert any(name.startswith("jupyterhub-session-id") or name == "jupyterhub-hub-login"
                   for name in browser.cookies)

    assert not xnat_standin.requests_to("*admin*"), "the odd name must not reach XNAT"
    deadline = time.monotonic() + 10
    while xnat_standin.open_sessions and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert xnat_standin.open_sessions == 0

    output = hub.output()
    for secret in (ALICE_PASSWORD, BOB_PASSWORD, XNAT_TOKEN, CONSOLE_TOKEN):
        assert secret not in output
    assert output.count("XNAT login refused for 'Alice.Smith'") == 2  # wrong password, XNAT down
    assert output.count("XNAT login refused for 'Bob'") == 1
    assert "User logged in: Alice.Smith" in output
    assert "Failed login for" not in output, "one line per refusal: ours, not also JupyterHub's"


async def test_service_scopes_and_restart(start_hub, xnat_standin: XnatStandin):
    """XNAT's token can do what the plugin does; the console's cannot create users; state survives a restart."""
    xnat_standin.add_user("Alice.Smith", ALICE_PASSWORD, ["Jupyter"])
    hub = await start_hub()
    api = f"{hub.url}/hub/api"
    xnat = {"Authorization": f"token {XNAT_TOKEN}"}
    console = {"Authorization": f"token {CONSOLE_TOKEN}"}
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{api}/info", headers=xnat)).status_code == 200
        assert (await client.post(f"{api}/users/Bob.Jones", headers=xnat)).status_code == 201
        # the authenticator's name rule holds for users XNAT creates too
        assert (await client.post(f"{api}/users/bob..jones", headers=xnat)).status_code == 400
        token = await client.post(f"{api}/users/Bob.Jones/tokens", headers=xnat,
                                  json={"note": "xnat", "expires_in": 172800,
                                        "scopes": ["access:servers!user=Bob.Jones"]})
        assert token.status_code == 201, token.text
        user = (await client.get(f"{api}/users/Bob.Jones", headers=xnat)).json()
        assert user["name"] == "Bob.Jones" and user["servers"] == {}
        gone = await client.request("DELETE", f"{api}/users/Bob.Jones/servers/nothing", headers=xnat,
                                    json={"remove": True})
        assert gone.status_code == 404, "xnat may stop servers (404: there is none), not 403"

        names = [u["name"] for u in (await client.get(f"{api}/users", headers=console)).json()]
        assert "Bob.Jones" in names
        assert (await client.get(f"{api}/info", headers=console)).status_code == 200
        assert (await client.get(f"{api}/proxy", headers=console)).status_code == 200
        assert (await client.post(f"{api}/users/Carl", headers=console)).status_code == 403
        assert (await client.post(f"{api}/users/Bob.Jones/tokens", headers=console, json={})).status_code == 403
        gone = await client.request("DELETE", f"{api}/users/Bob.Jones/servers/nothing", headers=console,
                                    json={"remove": True})
        assert gone.status_code == 404

        browser = httpx.AsyncClient()
        assert (await login_form(browser, hub, "Alice.Smith", ALICE_PASSWORD)).status_code == 302

        await hub.stop()
        hub = await start_hub()
        api = f"{hub.url}/hub/api"
        names = [u["name"] for u in (await client.get(f"{api}/users", headers=xnat)).json()]
        assert {"Alice.Smith", "Bob.Jones"} <= set(names), "users must survive a restart"
        # same cookie secret: the login from before the restart still works (home page, not the login page)
        home = await browser.get(f"{hub.url}/hub/home")
        assert home.status_code == 200 and "Alice.Smith" in home.text
        await browser.aclose()
