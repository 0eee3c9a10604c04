"""XNAT's plugin at site scale, against a real JupyterHub run from *our* configuration (hub/jupyterhub_config.py,
loaded as is; only ports, the data dir and the spawner's Docker part are changed) with 1,000 users.

XNAT's side is `XnatPlugin`, making every call exactly as the plugin does and refusing what the plugin's models
would not parse. Servers are real hub servers (proxy routes, database rows, our spawner's option handling) whose
notebook is one shared HTTP server (tests/hub/shared_server_spawner.py), so 50 of them cost nothing.
"""

from __future__ import annotations

import asyncio
import http.server
import os
import re
import secrets
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from hub.standin.culler import Culler
from hub.standin.options import start_request_body
from hub.standin.plugin import START_TIMEOUT, TOKEN_LIFETIME, PluginRefusal, XnatPlugin
from tests.helpers.hub_process import jupyterhub_process
from tests.helpers.waiting import free_port

ROOT = Path(__file__).resolve().parents[2]
USERS = 1000
PAGINATION = "application/jupyterhub-pagination+json"
# The plugin's timestamp pattern, yyyy-MM-dd'T'HH:mm:ss[.SSSSSS]X, written out independently of XnatPlugin's.
PLUGIN_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?(Z|[+-]\d\d(\d\d)?)")

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(shutil.which("configurable-http-proxy") is None,
                       reason="configurable-http-proxy is not on PATH (scripts/test.sh installs it)"),
]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Hub:
    api_url: str
    host_url: str  # what XNAT calls jupyterHubHostUrl
    xnat_token: str
    console_token: str
    names: list[str]

    def plugin(self, start_poll_interval: float = 0.2, start_timeout: float = START_TIMEOUT) -> XnatPlugin:
        return XnatPlugin(self.api_url, self.xnat_token, timeout=60, start_poll_interval=start_poll_interval,
                          start_timeout=start_timeout, stop_poll_interval=0.2)

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url + "/", headers={"Authorization": f"token {self.xnat_token}"},
                            timeout=60)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    work = tmp_path_factory.mktemp("plugin-hub")
    shared = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=shared.serve_forever, daemon=True).start()
    port, hub_port = free_port(), free_port()
    config = (
        f"load_subconfig({str(ROOT / 'hub' / 'jupyterhub_config.py')!r})\n"
        "c = get_config()  # noqa\n"
        f"c.JupyterHub.bind_url = 'http://127.0.0.1:{port}/jupyterhub'\n"
        f"c.JupyterHub.hub_bind_url = 'http://127.0.0.1:{hub_port}'\n"
        f"c.JupyterHub.hub_connect_url = 'http://127.0.0.1:{hub_port}'\n"
        f"c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:{free_port()}'\n"
        "c.JupyterHub.spawner_class = 'shared_server_spawner.SharedServerSpawner'\n"
        f"c.SharedServerSpawner.shared_port = {shared.server_port}\n"
        # answer a start at once (202), as on a real swarm, so 'hang' spawns do not hold the request
        "c.JupyterHub.tornado_settings = {'slow_spawn_timeout': 0}\n"
    )
    xnat_token, console_token = secrets.token_hex(24), secrets.token_hex(24)
    env = {
        "PATH": os.environ["PATH"], "HOME": str(work), "LANG": "C.UTF-8",
        "PYTHONPATH": str(Path(__file__).parent),
        "JH_XNAT_URL": "http://127.0.0.1:9",  # no login or XNAT fetch happens here
        "JH_DATA_DIR": str(work / "data"),
        "JH_XNAT_SERVICE_TOKEN": xnat_token, "JH_CONSOLE_TOKEN": console_token,
    }
    api_url = f"http://127.0.0.1:{port}/jupyterhub/hub/api"
    try:
        with jupyterhub_process(work, config, api_url, env=env):
            names = [f"U{i:04d}.Class" for i in range(USERS)]
            hub = Hub(api_url, f"http://127.0.0.1:{port}", xnat_token, console_token, names)
            with hub.admin() as admin:
                for i in range(0, USERS, 250):
                    admin.post("users", json={"usernames": names[i:i + 250]}).raise_for_status()
            yield hub
    finally:
        shared.shutdown()
        shared.server_close()


async def start_many(hub: Hub, users: list[str], server: str) -> None:
    async with hub.plugin(start_poll_interval=1.0) as plugin:  # 50 users polling: keep the hub's load low
        await asyncio.gather(*(plugin.launch(u, server, start_request_body(event_tracking_id=server))
                               for u in users))


async def stop_all(hub: Hub, users: list[str], server: str) -> None:
    async with hub.plugin() as plugin:
        await asyncio.gather(*(plugin.stop(u, server) for u in users))


async def set_activity(hub: Hub, user: str, server: str, when: datetime) -> None:
    """What a notebook reports to the hub (POST /users/{u}/activity), as of `when`."""
    stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    async with httpx.AsyncClient(headers={"Authorization": f"token {hub.xnat_token}"}) as client:
        response = await client.post(f"{hub.api_url}/users/{user}/activity",
                                     json={"servers": {server: {"last_activity": stamp}}})
        assert response.status_code == 200, response.text


# -- the user list ----------------------------------------------------------------------------------------------


async def test_get_users_as_the_plugin_sends_it_returns_every_user(hub: Hub) -> None:
    async with hub.plugin() as plugin:
        users = await plugin.list_users()
    assert len(users) >= USERS  # JupyterHub's default api_page_max_limit would cut this at 200
    assert set(hub.names) <= {u["name"] for u in users}


def test_paginated_calls_keep_their_pages(hub: Hub) -> None:
    """The console's calls (pagination header, limit 200) get the same pages as with JupyterHub's defaults."""
    headers = {"Authorization": f"token {hub.console_token}", "Accept": PAGINATION}
    default = httpx.get(f"{hub.api_url}/users", headers=headers, timeout=30).json()
    assert len(default["items"]) == 50 and default["_pagination"]["total"] >= USERS
    page = httpx.get(f"{hub.api_url}/users", params={"limit": 200, "offset": 400}, headers=headers, timeout=30).json()
    assert len(page["items"]) == 200 and page["_pagination"]["next"]["offset"] == 600


# -- the token, the timestamps and user_options -----------------------------------------------------------------


async def test_the_plugins_token_request_is_accepted_and_opens_the_users_servers(hub: Hub) -> None:
    user, server = hub.names[1], "tok"
    async with hub.plugin() as plugin:
        ready = await plugin.launch(user, server, start_request_body(event_tracking_id=server))
        token = await plugin.create_token(user)
        url = plugin.notebook_url(hub.host_url, ready, token)
        await plugin.stop(user, server)
    assert url == f"{hub.host_url}/jupyterhub/user/{user}/{server}/?token={token}"
    async with httpx.AsyncClient(headers={"Authorization": f"token {token}"}) as client:
        me = (await client.get(f"{hub.api_url}/user")).json()
    assert me["name"] == user
    assert f"access:servers!user={user}" in me["scopes"]
    async with httpx.AsyncClient(headers={"Authorization": f"token {hub.xnat_token}"}) as client:
        model = (await client.get(f"{hub.api_url}/users/{user}/tokens/{me['token_id']}")).json()
    expires = datetime.fromisoformat(model["expires_at"])
    created = datetime.fromisoformat(model["created"])
    assert abs((expires - created).total_seconds() - TOKEN_LIFETIME) < 5
    assert model["note"] == "XNAT"


async def test_every_timestamp_parses_and_user_options_stay_flat(hub: Hub) -> None:
    """A server XNAT started and one started by another client with a nested body: the plugin's parse of the
    whole list still succeeds, and every timestamp matches its pattern."""
    xnat_user, other_user, server = hub.names[2], hub.names[3], "ts"
    body = start_request_body(event_tracking_id=server)
    async with hub.plugin() as plugin:
        await plugin.launch(xnat_user, server, body)
        async with httpx.AsyncClient(headers={"Authorization": f"token {hub.console_token}"}) as console:
            nested = {"eventTrackingId": server, "profile": {"cpu": 2}, "tags": ["a", "b"]}
            assert (await console.post(f"{hub.api_url}/users/{other_user}/servers/{server}", json=nested)
                    ).status_code in (201, 202)
        await plugin.wait_ready(other_user, server)
        users = await plugin.list_users()  # raises HubParseError on any timestamp or nested option
        by_name = {u["name"]: u for u in users}
        assert by_name[xnat_user]["servers"][server]["user_options"] == body
        assert by_name[other_user]["servers"][server]["user_options"] == {
            "eventTrackingId": server, "profile": '{"cpu": 2}', "tags": '["a", "b"]'}
        raw = httpx.get(f"{hub.api_url}/users", headers={"Authorization": f"token {hub.xnat_token}"},
                        timeout=60).json()
        stamps = [u[k] for u in raw for k in ("created", "last_activity") if u.get(k)]
        stamps += [s[k] for u in raw for s in u["servers"].values() for k in ("started", "last_activity")]
        assert len(stamps) >= USERS and all(PLUGIN_TIMESTAMP.fullmatch(s) for s in stamps), \
            [s for s in stamps if not PLUGIN_TIMESTAMP.fullmatch(s)][:5]
        await asyncio.gather(plugin.stop(xnat_user, server), plugin.stop(other_user, server))


# -- the start and stop flows -----------------------------------------------------------------------------------


async def test_start_and_stop_flows_as_the_plugin_runs_them(hub: Hub) -> None:
    user, server = hub.names[4], "flow"
    async with hub.plugin() as plugin:
        model = await plugin.launch(user, server, start_request_body(event_tracking_id=server))
        assert model["ready"] is True and model["url"] == f"/jupyterhub/user/{user}/{server}/"
        with pytest.raises(PluginRefusal, match="already has 1 server"):
            await plugin.launch(user, "second", start_request_body(event_tracking_id="second"))
        await plugin.stop(user, server)
        assert await plugin.get_server(user, server) is None
        await plugin.stop(user, server)  # a stop of a gone server: its 404 is ignored


async def test_start_times_out_on_a_spawn_that_never_ends(hub: Hub) -> None:
    user, server = hub.names[5], "hang"
    async with hub.plugin(start_timeout=1.0) as plugin:
        with pytest.raises(TimeoutError, match="not ready after 1s"):
            await plugin.launch(user, server, {**start_request_body(event_tracking_id=server), "hang": True})
        await plugin.stop(user, server)  # a DELETE during a spawn cancels it
        assert await plugin.get_server(user, server) is None


# -- the cullers ------------------------------------------------------------------------------------------------


async def test_culler_stops_idle_servers_and_touches_nothing_else(hub: Hub) -> None:
    idle, busy, server = hub.names[10:13], hub.names[13:16], "cull"
    await start_many(hub, idle + busy, server)
    later = datetime.now(UTC) + timedelta(minutes=61)
    for user in busy:
        await set_activity(hub, user, server, later - timedelta(minutes=10))
    async with hub.plugin() as plugin:
        report = await Culler(plugin, inactivity_timeout=60, max_server_lifetime=48, now=lambda: later).run_pass()
        assert report.aborted_at is None and report.failed == []
        assert sorted(report.stopped) == sorted((u, server, "idle") for u in idle)
        left = {u["name"]: u["servers"] for u in await plugin.list_users() if u["servers"]}
    assert all(server not in left.get(u, {}) for u in idle)
    assert all(left[u][server]["ready"] for u in busy)
    await stop_all(hub, busy, server)


async def test_culler_stops_servers_at_their_lifetime(hub: Hub) -> None:
    users, server = hub.names[20:23], "life"
    await start_many(hub, users, server)
    now = datetime.now(UTC)
    async with hub.plugin() as plugin:
        young = await Culler(plugin, inactivity_timeout=10**6, max_server_lifetime=1,
                             now=lambda: now + timedelta(minutes=59)).run_pass()
        assert young.stopped == []
        old = await Culler(plugin, inactivity_timeout=10**6, max_server_lifetime=1,
                           now=lambda: now + timedelta(minutes=61)).run_pass()
    assert sorted(old.stopped) == sorted((u, server, "lifetime") for u in users)


async def test_culler_pass_over_1000_users_with_50_servers(hub: Hub) -> None:
    users, server = hub.names[100:150], "many"
    await start_many(hub, users, server)
    later = datetime.now(UTC) + timedelta(minutes=61)
    async with hub.plugin() as plugin:
        report = await Culler(plugin, now=lambda: later).run_pass()
        assert report.users >= USERS and report.servers == 50
        assert report.aborted_at is None and report.failed == []
        assert len(report.stopped) == 50
        assert not any(u["servers"] for u in await plugin.list_users())
