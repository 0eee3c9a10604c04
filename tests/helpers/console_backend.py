"""Fixtures for the console's backend and CLI tests (tests/console/test_backend*.py and test_cli*.py;
tests/console/conftest.py belongs to the UI tests): a real JupyterHub process on loopback, and Docker helpers.

`LocalHub` starts `jupyterhub` (with configurable-http-proxy) from a throwaway config: DummyAuthenticator,
named servers, and a spawner whose "notebook" is `python -m http.server` (a real process the hub polls until
it answers). Three service tokens: the console's (least-privilege scopes), an admin one for test set-up, and a
limited one for the missing-scope check. bench/bench_refresh.py reuses it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.hub_process import jupyterhub_process
from tests.helpers.waiting import free_port, wait_for

CONSOLE_SCOPES = ["list:users", "read:users", "read:servers", "servers", "read:hub", "proxy"]

HUB_CONFIG = textwrap.dedent(
    """
    import asyncio
    import sys
    from jupyterhub.spawner import SimpleLocalProcessSpawner

    class HTTPServerSpawner(SimpleLocalProcessSpawner):
        '''A "notebook" that is python's http.server: a real process the hub waits for.'''

        async def start(self):
            if self.user_options.get("fail"):
                await asyncio.sleep(0.5)
                raise RuntimeError("told to fail by user_options")
            if self.user_options.get("shared_port"):
                # bench/bench_refresh.py: hundreds of servers share one real http.server, so no process each.
                return ("127.0.0.1", int(self.user_options["shared_port"]))
            return await super().start()

        async def poll(self):
            if self.user_options.get("shared_port"):
                return None
            return await super().poll()

        async def stop(self, now=False):
            if self.user_options.get("shared_port"):
                return
            return await super().stop(now=now)

        def get_args(self):
            return [str(self.port), "--bind", "127.0.0.1"]

    c = get_config()  # noqa
    c.JupyterHub.bind_url = "http://127.0.0.1:{port}/jupyterhub/"
    c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
    c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
    c.ConfigurableHTTPProxy.pid_file = "{dir}/proxy.pid"
    c.JupyterHub.db_url = "sqlite:///{dir}/jupyterhub.sqlite"
    c.JupyterHub.cookie_secret_file = "{dir}/cookie_secret"
    c.JupyterHub.authenticator_class = "dummy"
    c.Authenticator.allow_all = True
    c.JupyterHub.allow_named_servers = True
    # Answer POST .../server at once (202) so spawns go through the progress stream, as on a real swarm.
    c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
    c.JupyterHub.named_server_limit_per_user = 0
    c.JupyterHub.spawner_class = HTTPServerSpawner
    c.Spawner.cmd = [sys.executable, "-m", "http.server"]
    c.Spawner.http_timeout = 20
    c.Spawner.start_timeout = 20
    c.SimpleLocalProcessSpawner.home_dir_template = "{dir}/home/{{username}}"
    c.JupyterHub.services = [
        {{"name": "xnat-console", "api_token": "{console_token}"}},
        {{"name": "test-admin", "api_token": "{admin_token}"}},
        {{"name": "limited", "api_token": "{limited_token}"}},
    ]
    c.JupyterHub.load_roles = [
        {{"name": "console", "scopes": {scopes!r}, "services": ["xnat-console"]}},
        {{"name": "test-admin", "scopes": ["admin:users", "admin:servers", "read:hub", "proxy"],
          "services": ["test-admin"]}},
        {{"name": "limited", "scopes": ["read:hub", "servers!user=alice"], "services": ["limited"]}},
    ]
    """
)


class LocalHub:
    """A real JupyterHub on loopback, started from a throwaway config; `stop()` removes everything."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="xjc-hub-"))
        self.port = free_port()
        self.console_token = secrets.token_hex(24)
        self.admin_token = secrets.token_hex(24)
        self.limited_token = secrets.token_hex(24)
        self.api_url = f"http://127.0.0.1:{self.port}/jupyterhub/hub/api"
        self._running = contextlib.ExitStack()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> LocalHub:
        (self.dir / "home").mkdir()
        config = HUB_CONFIG.format(
            port=self.port,
            hub_port=free_port(),
            proxy_api_port=free_port(),
            dir=self.dir,
            console_token=self.console_token,
            admin_token=self.admin_token,
            limited_token=self.limited_token,
            scopes=CONSOLE_SCOPES,
        )
        try:
            self.process = self._running.enter_context(
                jupyterhub_process(self.dir, config, self.api_url, timeout=timeout)
            )
        except Exception:
            self.stop(keep_log=True)
            raise
        return self

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url + "/", headers={"Authorization": f"token {self.admin_token}"}, timeout=30
        )

    def stop(self, keep_log: bool = False) -> None:
        """Stop the hub (it stops its servers and its proxy first) and remove its directory."""
        self._running.close()
        if keep_log:
            sys.stderr.write((self.dir / "hub.log").read_text(errors="replace")[-4000:])
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def local_hub() -> Iterator[LocalHub]:
    if shutil.which("configurable-http-proxy") is None:
        pytest.skip("configurable-http-proxy is not on PATH: the local JupyterHub cannot start")
    hub = LocalHub().start()
    yield hub
    hub.stop()


# -- Docker -------------------------------------------------------------------------------------

TEST_PREFIX = "xjc-test-"
# A console under test names these, never the defaults a demo on the same swarm uses.
TEST_STACK = "xjc-test-stack"
TEST_NETWORK = "xjc-test-net"
TINY_IMAGE = "xjc-test/tiny:latest"
TINY_BINARIES = ["/bin/dash", "/bin/sleep", "/bin/cat", "/usr/bin/seq", "/usr/bin/head", "/usr/bin/yes"]


def _tiny_rootfs_tar() -> bytes:
    """A ~3 MB root filesystem: dash and a few coreutils with their shared libraries, copied from this host."""
    import io
    import tarfile

    files: dict[str, str] = {}
    for binary in TINY_BINARIES:
        files[binary] = binary
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
        for token in out.split():
            if token.startswith("/"):
                files[token] = os.path.realpath(token)
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for target, source in files.items():
            tar.add(source, arcname=target.lstrip("/"))
        link = tarfile.TarInfo("bin/sh")
        link.type, link.linkname = tarfile.SYMTYPE, "dash"
        tar.addfile(link)
    return data.getvalue()


@pytest.fixture(scope="session")
def docker_client():
    import docker

    try:
        client = docker.from_env(timeout=30)
        info = client.info()
    except Exception as e:
        pytest.skip(f"no Docker engine answers ({e}); start one with scripts/engine.sh up")
    if (info.get("Swarm") or {}).get("LocalNodeState") != "active":
        pytest.skip("the Docker engine is not in swarm mode; run scripts/engine.sh up")
    yield client
    client.close()


@pytest.fixture(scope="session")
def tiny_image(docker_client) -> Iterator[str]:
    """A tiny local image (no registry here): `sh -c` with sleep, seq, cat... Removed at the end."""
    repository, tag = TINY_IMAGE.split(":")
    docker_client.api.import_image_from_data(_tiny_rootfs_tar(), repository=repository, tag=tag)
    yield TINY_IMAGE
    with contextlib.suppress(Exception):
        docker_client.images.remove(TINY_IMAGE, force=True)


@pytest.fixture(scope="session")
def test_network(docker_client) -> Iterator[str]:
    """The tests' own overlay network, standing for a deployment's: a console configured with it (and with
    TEST_STACK) counts the test services as its notebooks and nothing of a demo that may be up on the same swarm."""
    import docker.errors

    for leftover in docker_client.networks.list(names=[TEST_NETWORK]):  # of an interrupted run
        with contextlib.suppress(docker.errors.APIError):
            leftover.remove()
    network = docker_client.networks.create(TEST_NETWORK, driver="overlay", attachable=True, check_duplicate=True)
    yield TEST_NETWORK

    def removed() -> bool:
        try:
            network.remove()
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError:
            return False  # still in use while the last tasks' endpoints go
        return True

    wait_for(removed, 60, f"the network {TEST_NETWORK} to be removed")


@pytest.fixture
def make_service(docker_client, tiny_image, test_network):
    """Create swarm services named xjc-test-* on the test network; every one is removed after the test."""
    import docker.types

    created = []

    def make(name: str, script: str, *, labels=None, env=None, mounts=None, limits=None, **kwargs):
        service = docker_client.services.create(
            tiny_image,
            command=["sh", "-c", script],
            name=TEST_PREFIX + name,
            labels=labels or {},
            container_labels={"xjc-test": "1"},
            env=env or [],
            mounts=mounts or [],
            resources=docker.types.Resources(**limits) if limits else None,
            networks=[test_network],
            # No IPVS here, so no virtual IP: as the spawner does for notebooks.
            endpoint_spec=docker.types.EndpointSpec(mode="dnsrr"),
            **kwargs,
        )
        created.append(service)
        return service

    yield make
    for service in created:
        with contextlib.suppress(Exception):
            service.remove()
    # Wait for the containers to go, so nothing is left behind.
    wait_for(
        lambda: not docker_client.containers.list(all=True, filters={"label": "xjc-test=1"}),
        30,
        "the test services' containers to be removed",
    )


def task_state(docker_client, service, states) -> dict | None:
    """The service's first task once it is in one of `states`, else None."""
    for task in service.tasks():
        if task["Status"]["State"] in states:
            return task
    return None


@pytest.fixture
def xnat_standin_thread():
    """The XNAT stand-in served from its own thread, so a subprocess can reach it; a JupyterHub-role service
    account, and a hub URL preference that does not answer."""
    import asyncio
    import threading

    from hub.standin.server import XnatStandin

    loop = asyncio.new_event_loop()
    standin = XnatStandin()
    ready = threading.Event()

    def serve():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(standin.start(host="127.0.0.1", port=0, control_port=0))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    standin.add_user("jupyterhub", "svc-pw-thread", ["JupyterHub"])
    standin.set_preferences({"jupyterHubApiUrl": "http://127.0.0.1:9/hub/api"})
    yield standin.url, ("jupyterhub", "svc-pw-thread")
    asyncio.run_coroutine_threadsafe(standin.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()
