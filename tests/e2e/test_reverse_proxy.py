"""The real nginx (Debian's package) in front of the live stack at /jupyterhub, with the shipped
deploy/nginx/xnat-jupyterhub.conf: login and a notebook page work through it, and websocket upgrades pass."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from tests.helpers.live import E2E_TIMEOUT, REPO, LiveStack, xnat_launch
from tests.helpers.waiting import free_port, wait_for

from .test_login import login

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(E2E_TIMEOUT)]

USER = "alice"


def site_config(port: int, hub_port: int, xnat_port: int) -> str:
    """The shipped site file, with the listen address and the two upstreams pointed at this run's ports."""
    text = (REPO / "deploy" / "nginx" / "xnat-jupyterhub.conf").read_text()
    for old, new in (
        ("listen 80;", f"listen 127.0.0.1:{port};"),
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{hub_port};"),
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{xnat_port};"),
    ):
        assert text.count(old) == 1, f"deploy/nginx/xnat-jupyterhub.conf no longer has {old!r}"
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def nginx(live_stack: LiveStack) -> Iterator[str]:
    """nginx on a free loopback port, in the foreground, with everything under a directory of its own."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        pytest.fail("nginx is not installed: scripts/engine.sh up installs it")
    root = live_stack.work_dir / "nginx"
    root.mkdir()
    port = free_port("0.0.0.0")
    (root / "site.conf").write_text(site_config(port, live_stack.settings.port, live_stack.standin_port))
    (root / "nginx.conf").write_text(f"""
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    include {root}/site.conf;
}}
""")
    check = subprocess.run([binary, "-t", "-e", str(root / "error.log"), "-c", str(root / "nginx.conf")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen([binary, "-e", str(root / "error.log"), "-c", str(root / "nginx.conf"),
                                "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            stderr = process.stderr.read() if process.stderr else b""
            pytest.fail(f"nginx exited: {stderr.decode()[-500:]}")
        try:
            return httpx.get(f"{base}/jupyterhub/hub/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answers, 30, "nginx to answer")
    try:
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_login_through_nginx(nginx: str):
    with login(f"{nginx}/jupyterhub", "alice", "alice-password") as (answer, client):
        assert answer.status_code == 302, answer.text[:300]
        # the hub saw the prefix unchanged and the public host: its redirect stays on nginx's /jupyterhub
        assert answer.headers["location"].startswith("/jupyterhub/"), answer.headers["location"]
        home = client.get("/hub/home")
        assert home.status_code == 200 and "alice" in home.text


async def test_notebook_page_and_kernel_websocket_through_nginx(live_stack: LiveStack, nginx: str):
    server, _body, _model = await xnat_launch(live_stack, USER)
    async with live_stack.plugin() as plugin:
        token = await plugin.create_token(USER)
    headers = {"Authorization": f"token {token}"}
    prefix = f"/jupyterhub/user/{USER}/{server}"
    try:
        async with httpx.AsyncClient(base_url=nginx, headers=headers, timeout=30) as client:
            page = await client.get(f"{prefix}/lab")
            assert page.status_code == 200, page.text[:300]
            assert "JupyterLab" in page.text
            kernel = await client.post(f"{prefix}/api/kernels", json={"name": "python3"})
            assert kernel.status_code == 201, kernel.text[:300]
            kernel_id = kernel.json()["id"]

            # The kernel's websocket: nginx must pass Upgrade/Connection, or the notebook answers 400, not 101.
            request = HTTPRequest(f"ws://127.0.0.1:{nginx.rsplit(':', 1)[1]}{prefix}/api/kernels/{kernel_id}/channels",
                                  headers=headers, request_timeout=30)
            connection = await websocket_connect(request)
            try:
                message = await connection.read_message()
                assert message is not None, "the kernel websocket closed at once"
                assert '"msg_type"' in message
            finally:
                connection.close()
            assert (await client.delete(f"{prefix}/api/kernels/{kernel_id}")).status_code == 204
    finally:
        async with live_stack.plugin() as plugin:
            await plugin.stop_server(USER, server)
            await plugin.wait_gone(USER, server, timeout=60)
