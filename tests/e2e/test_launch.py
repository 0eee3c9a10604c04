"""An XNAT-style launch on the live swarm, with the stand-in playing XNAT: XNAT stores the launch options, creates
the hub user, POSTs a named server with the plugin's camelCase body and polls until ready; the notebook then
answers through the proxy, and DELETE with {"remove": true} removes its service."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from hub.standin import options as xnat_options
from tests.helpers.live import E2E_TIMEOUT, SINGLEUSER_IMAGE, LiveStack, make_dir, xnat_launch
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(E2E_TIMEOUT)]

USER = "Alice.Smith"
SCRATCH_VOLUME = "xjh-e2e-scratch"


@pytest.fixture(scope="module")
def launched(live_stack: LiveStack):
    """One server launched for a mixed-case user with everything XNAT can put in a launch."""
    workspace = make_dir(live_stack.allowed_root / "workspaces" / "users" / USER)
    archive = make_dir(live_stack.allowed_root / "archive" / "PRJ1" / "arc001")
    (archive / "scan.dcm").write_text("not really DICOM\n")
    live_stack.created_volumes.append(SCRATCH_VOLUME)
    server = xnat_options.event_tracking_id()
    document = xnat_options.user_options(
        USER, server,
        image=SINGLEUSER_IMAGE,
        env={"E2E_MARK": "launch"},
        labels={"org.example.e2e": "yes"},
        mounts=[
            xnat_options.mount(str(workspace), f"/workspace/{USER}"),
            xnat_options.mount(str(archive), "/data/projects/PRJ1/experiments", read_only=True),
            xnat_options.mount(SCRATCH_VOLUME, "/scratch", type="volume"),
            xnat_options.mount(SCRATCH_VOLUME, "/scratch-ro", type="volume", read_only=True),
        ],
        cpu_limit=1.0, cpu_reservation=0.1, mem_limit="512M", mem_reservation="64M",
        constraints=["node.role==manager"],
    )
    server, body, model = asyncio.run(xnat_launch(live_stack, USER, server, document))
    yield {"server": server, "body": body, "model": model, "workspace": workspace}

    async def stop_if_running() -> None:
        async with live_stack.plugin() as plugin:
            if await plugin.get_server(USER, server):
                await plugin.stop_server(USER, server)
                await plugin.wait_gone(USER, server, timeout=60)

    asyncio.run(stop_if_running())


def test_launch_gets_ready_and_user_options_come_back_unchanged(launched):
    model = launched["model"]
    assert model["ready"] is True
    assert model["url"] == f"/jupyterhub/user/{USER}/{launched['server']}/"
    # XNAT reads eventTrackingId back from here: the camelCase body, nulls included, as it was sent.
    assert model["user_options"] == launched["body"]


def test_service_is_built_from_xnats_launch_options(live_stack: LiveStack, launched):
    services = live_stack.notebook_services(USER, launched["server"])
    assert len(services) == 1, services
    spec = services[0]["Spec"]
    container = spec["TaskTemplate"]["ContainerSpec"]
    assert container["Image"].split("@")[0] == SINGLEUSER_IMAGE

    mounts = {m["Target"]: m for m in container["Mounts"]}
    workspace = mounts[f"/workspace/{USER}"]
    assert (workspace["Type"], workspace["Source"], workspace.get("ReadOnly", False)) == (
        "bind", str(launched["workspace"]), False)
    archive = mounts["/data/projects/PRJ1/experiments"]
    assert (archive["Type"], archive.get("ReadOnly", False)) == ("bind", True)
    assert (mounts["/scratch"]["Type"], mounts["/scratch"]["Source"], mounts["/scratch"].get("ReadOnly", False)) == (
        "volume", SCRATCH_VOLUME, False)
    assert (mounts["/scratch-ro"]["Type"], mounts["/scratch-ro"].get("ReadOnly", False)) == ("volume", True)

    env = dict(item.split("=", 1) for item in container["Env"])
    assert env["E2E_MARK"] == "launch"
    assert env["XNAT_ITEM_ID"] == "PRJ1"
    assert env["JUPYTERHUB_ROOT_DIR"] == f"/workspace/{USER}"

    for labels in (spec["Labels"], container["Labels"]):
        assert labels["org.example.e2e"] == "yes"
        assert labels["org.xnat.jupyterhub.user"] == USER
        assert labels["org.xnat.jupyterhub.server"] == launched["server"]

    resources = spec["TaskTemplate"]["Resources"]
    assert resources["Limits"] == {"NanoCPUs": 1_000_000_000, "MemoryBytes": 512 * 1024**2}
    assert resources["Reservations"] == {"NanoCPUs": 100_000_000, "MemoryBytes": 64 * 1024**2}
    assert "node.role==manager" in spec["TaskTemplate"]["Placement"]["Constraints"]
    assert spec["EndpointSpec"]["Mode"] == "dnsrr"


async def test_notebook_answers_through_the_proxy_with_a_user_scoped_token(live_stack: LiveStack, launched):
    async with live_stack.plugin() as plugin:
        token = await plugin.create_token(USER)
    headers = {"Authorization": f"token {token}"}
    async with httpx.AsyncClient(timeout=30) as client:
        identity = (await client.get(f"{live_stack.api_url}/user", headers=headers)).json()
        assert identity["name"] == USER
        assert f"access:servers!user={USER}" in identity["scopes"]
        answer = await client.get(f"{live_stack.hub_url}/user/{USER}/{launched['server']}/api", headers=headers)
        assert answer.status_code == 200, answer.text[:300]
        assert "version" in answer.json()
        # The workspace is XNAT's bind mount, writable by the notebook's user.
        contents = await client.get(
            f"{live_stack.hub_url}/user/{USER}/{launched['server']}/api/contents/", headers=headers
        )
        assert contents.status_code == 200
        created = await client.put(
            f"{live_stack.hub_url}/user/{USER}/{launched['server']}/api/contents/e2e.txt",
            headers=headers, json={"type": "file", "format": "text", "content": "written by the notebook"},
        )
        assert created.status_code in (200, 201), created.text[:300]
    assert (launched["workspace"] / "e2e.txt").read_text() == "written by the notebook"
    assert (launched["workspace"] / "e2e.txt").stat().st_uid == 1000  # NB_UID


async def test_the_notebook_opens_with_the_url_the_plugin_builds(live_stack: LiveStack, launched):
    """XNAT's "open notebook": the plugin's token request (its Token body, `expires_in` two days), then a browser
    GET of jupyterHubHostUrl + server.url + `?token=`, with no cookie and no header. It reaches the real Jupyter
    server through the hub's proxy: JupyterLab's page, then `/api/status` on the session that URL opened."""
    server = launched["server"]
    async with live_stack.plugin() as plugin:
        token = await plugin.create_token(USER)
        model = await plugin.get_server(USER, server)
        assert model is not None
        host_url = live_stack.hub_url.removesuffix("/jupyterhub")  # server.url carries the /jupyterhub prefix
        url = plugin.notebook_url(host_url, model, token)
        wrong = plugin.notebook_url(host_url, model, token[::-1])
    assert url == f"{host_url}/jupyterhub/user/{USER}/{server}/?token={token}"
    async with httpx.AsyncClient(timeout=30, follow_redirects=True) as browser:
        page = await browser.get(url)
        assert page.status_code == 200, page.text[:300]
        assert page.url.path == f"/jupyterhub/user/{USER}/{server}/lab", page.url  # not the hub's login
        assert "<title>JupyterLab</title>" in page.text and "jupyter-config-data" in page.text
        status = await browser.get(f"{live_stack.hub_url}/user/{USER}/{server}/api/status")
        assert status.status_code == 200, status.text[:300]
        assert {"started", "last_activity", "kernels", "connections"} <= set(status.json())
    async with httpx.AsyncClient(timeout=30, follow_redirects=True) as stranger:
        refused = await stranger.get(wrong)  # a token the hub never issued: the hub's login, not the notebook
        assert "/hub/login" in str(refused.url) or refused.status_code in (401, 403), refused.url
        assert "jupyter-config-data" not in refused.text
        assert (await stranger.get(f"{live_stack.hub_url}/user/{USER}/{server}/api/status")).status_code != 200


async def test_delete_with_remove_removes_the_service(live_stack: LiveStack, launched):
    async with live_stack.plugin() as plugin:
        await plugin.stop_server(USER, launched["server"])
        await plugin.wait_gone(USER, launched["server"], timeout=60)
        user = await plugin.get_user(USER)
    assert user is not None and launched["server"] not in user["servers"]
    wait_for(lambda: not live_stack.notebook_services(USER, launched["server"]), 30, "the service to be removed")
