"""HubClient against a real JupyterHub process (tests/console/conftest.py `local_hub`)."""

from __future__ import annotations

import asyncio
import http.server
import logging
import threading
from typing import ClassVar

import pytest

from console.backend.hub import CONSOLE_SCOPES, HubClient, HubError, missing_scopes

pytestmark = pytest.mark.timeout(120)


async def wait_until(condition, timeout: float, what: str):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        result = await condition()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def hub(local_hub):
    client = HubClient(local_hub.api_url, local_hub.console_token, timeout=10)
    yield client
    await client.aclose()


@pytest.fixture
def users(local_hub):
    """Create users through the admin token; remove them (and their servers) afterwards."""
    created: list[str] = []

    def make(*names: str) -> list[str]:
        with local_hub.admin() as admin:
            r = admin.post("users", json={"usernames": list(names)})
            assert r.status_code in (201, 409), r.text
        created.extend(names)
        return list(names)

    yield make
    with local_hub.admin() as admin:
        for name in created:
            admin.delete(f"users/{name}")


async def test_version_info_health(hub):
    assert (await hub.version()).startswith("5.")
    info = await hub.info()
    assert info["spawner"]["class"].endswith("HTTPServerSpawner")
    assert await hub.health() is True


async def test_whoami_reports_scopes_and_nothing_missing(hub):
    me = await hub.whoami()
    assert me.name == "xnat-console" and me.kind == "service"
    assert "list:users" in me.scopes and "delete:servers" in me.scopes  # expanded from `servers`
    assert me.missing_scopes == () and me.excess_scopes == ()


async def test_whoami_warns_of_a_token_broader_than_needed(local_hub):
    async with HubClient(local_hub.api_url, local_hub.admin_token) as admin:
        me = await admin.whoami()
    assert "admin:users" in me.excess_scopes and me.missing_scopes == ()


async def test_whoami_names_missing_and_filtered_scopes(local_hub):
    async with HubClient(local_hub.api_url, local_hub.limited_token) as limited:
        me = await limited.whoami()
    assert "list:users" in me.missing_scopes
    assert "servers (only servers!user=alice)" in me.missing_scopes
    assert "read:hub" not in me.missing_scopes


def test_missing_scopes_pure():
    assert missing_scopes(list(CONSOLE_SCOPES)) == []
    assert missing_scopes(["read:hub"])[0] == "list:users"


async def test_bad_token_is_a_clear_error_without_the_token(local_hub):
    token = "not-a-real-token-0123456789"
    async with HubClient(local_hub.api_url, token) as bad:
        with pytest.raises(HubError) as err:
            await bad.info()
    assert err.value.status in (401, 403)
    assert token not in str(err.value) and token not in repr(err.value)


async def test_users_follows_pagination_past_one_page(hub, users, local_hub):
    names = users(*[f"page{i:03d}" for i in range(120)])
    # Force small pages so the client must follow `next` several times.
    seen: list[str] = []
    totals: set[int] = set()
    async for items, total in hub._paged("users", {"limit": 25}):
        seen.extend(u["name"] for u in items)
        totals.add(total)
    assert set(names) <= set(seen) and totals == {len(seen)}
    every = await hub.users()
    assert set(names) <= {u["name"] for u in every}
    assert await hub.user_count() == total


async def test_start_progress_servers_and_stop(hub, users):
    (user,) = users("alice-hub")
    options = {"xsiType": "xnat:projectData", "itemId": "PRJ1", "projectId": "PRJ1"}
    assert await hub.start_server(user, "nb1", options) in ("started", "pending")
    events = [e async for e in hub.progress(user, "nb1")]
    assert events[-1].ready and events[-1].url.endswith(f"/user/{user}/nb1/")
    rows = {r.key: r for r in await hub.servers()}
    row = rows[f"{user}/nb1"]
    assert row.state == "ready" and row.started is not None
    assert (row.xsi_type, row.item_id, row.project_id) == ("xnat:projectData", "PRJ1", "PRJ1")
    assert row.user_options == options

    assert await hub.stop_server(user, "nb1") in ("stopped", "stopping")

    async def gone():
        return f"{user}/nb1" not in {r.key for r in await hub.servers()}

    await wait_until(gone, 20, "the server to stop")
    # Stopped but not removed: still listed with include_stopped.
    stopped = {r.key: r for r in await hub.servers(include_stopped=True)}
    assert stopped[f"{user}/nb1"].state == "stopped"
    assert await hub.stop_server(user, "nb1", remove=True) == "stopped"
    assert f"{user}/nb1" not in {r.key for r in await hub.servers(include_stopped=True)}


async def test_failed_spawn_shows_in_progress(hub, users):
    (user,) = users("bob-hub")
    await hub.start_server(user, "bad", {"fail": True})
    events = [e async for e in hub.progress(user, "bad")]
    assert events[-1].failed and "told to fail" in events[-1].message


async def test_progress_of_idle_server_is_a_hub_error(hub, users):
    (user,) = users("carol-hub")
    with pytest.raises(HubError, match="progress") as err:
        async for _ in hub.progress(user, ""):
            pass
    assert err.value.status in (400, 404)


async def test_proxy_routes(hub):
    routes = await hub.proxy_routes()
    assert "/" in routes or any(k.startswith("/jupyterhub") for k in routes)


async def test_dead_hub_is_a_hub_error():
    async with HubClient("http://127.0.0.1:9/hub/api", "t0ken", timeout=2) as dead:
        with pytest.raises(HubError, match="cannot connect"):
            await dead.version()


def test_bad_url_is_refused():
    with pytest.raises(HubError, match="http"):
        HubClient("ftp://x/hub/api", "t")


class _Redirector(http.server.BaseHTTPRequestHandler):
    target = ""
    seen_auth: ClassVar[list[str | None]] = []

    def do_GET(self):
        type(self).seen_auth.append(self.headers.get("Authorization"))
        self.send_response(302)
        self.send_header("Location", self.target)
        self.end_headers()

    def log_message(self, *args):
        pass


async def test_cross_origin_redirect_does_not_carry_the_token():
    # Two real servers on loopback: the first redirects to the second (another origin).
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    first = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    _Redirector.target = f"http://localhost:{other.server_port}/steal"
    _Redirector.seen_auth = []
    for server in (other, first):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        async with HubClient(f"http://127.0.0.1:{first.server_port}/hub/api", "s3cret-token") as client:
            with pytest.raises(HubError, match="another origin") as err:
                await client.info()
        assert "s3cret-token" not in str(err.value)
        assert _Redirector.seen_auth == ["token s3cret-token"]  # only the first origin saw it
    finally:
        for server in (other, first):
            server.shutdown()
            server.server_close()


async def test_token_never_in_repr_or_logs(local_hub, caplog):
    caplog.set_level(logging.DEBUG)
    client = HubClient(local_hub.api_url, local_hub.console_token)
    try:
        await client.info()
        assert local_hub.console_token not in repr(client)
    finally:
        await client.aclose()
    assert local_hub.console_token not in caplog.text
