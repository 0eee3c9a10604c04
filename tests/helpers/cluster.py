"""The multi-node tests' cluster (scripts/cluster.sh): three managers, two workers (w1 with gpu=1), a TLS registry,
the hub stack with PostgreSQL, and the XNAT stand-in. One cluster for the whole session: brought up when it is not
already up, taken down at the end only if this session brought it up (test_zz_down takes it down and checks it).

Everything is driven as XNAT drives the hub (hub.standin.plugin.XnatPlugin), and looked at through the nodes' own
engines, never the machine's shared one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.standin import options as xnat_options
from hub.standin.plugin import XnatPlugin
from tests.helpers.waiting import wait_for
from xjh_contract import LABEL_SERVER, LABEL_USER

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "scripts" / "cluster.sh"
STATE_DIR = Path(os.environ.get("XJC_CLUSTER_DIR", "/var/tmp/xjc-cluster"))
ADDRESSES = {"m1": "10.98.0.11", "m2": "10.98.0.12", "m3": "10.98.0.13", "w1": "10.98.0.21", "w2": "10.98.0.22"}
MANAGERS = ("m1", "m2", "m3")
HUB_SERVICE = "xjc_jupyterhub"
NOTEBOOK_LIMITS: dict[str, Any] = {
    "cpu_limit": 0.5, "cpu_reservation": None, "mem_limit": "512M", "mem_reservation": None,
}


def socket_of(node: str) -> str:
    return f"unix://{STATE_DIR}/{node}/sock/docker.sock"


def api_of(node: str, timeout: float = 10) -> Any:
    import docker

    return docker.APIClient(base_url=socket_of(node), version="1.41", timeout=int(timeout))


def cluster_sh(*args: str, timeout: float = 600) -> str:
    done = subprocess.run([str(CLUSTER), *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"cluster.sh {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@dataclass
class Cluster:
    env: dict[str, str]
    stopped: set[str] = field(default_factory=set)  # nodes whose engine a test killed
    node_ids: dict[str, str] = field(default_factory=dict)  # xjh.node label -> swarm node id

    def secret(self, key: str) -> str:
        return (Path(self.env["XJC_SECRETS_DIR"]) / f"xjc_{key}").read_text().strip()

    def secret_file(self, key: str) -> str:
        return str(Path(self.env["XJC_SECRETS_DIR"]) / f"xjc_{key}")

    @property
    def image(self) -> str:
        return self.env["XJC_SINGLEUSER_IMAGE"]

    def manager(self) -> Any:
        """An API client on a live manager that can answer swarm calls."""
        for node in MANAGERS:
            if node in self.stopped:
                continue
            api = api_of(node)
            try:
                if api.info()["Swarm"].get("ControlAvailable"):
                    return api
            except Exception:
                pass
            api.close()
        pytest.fail("no manager answers")

    def label_of(self, node_id: str) -> str:
        return {v: k for k, v in self.node_ids.items()}.get(node_id, node_id)

    def running_tasks(self, service: str) -> list[dict]:
        api = self.manager()
        try:
            return [t for t in api.tasks(filters={"service": service, "desired-state": "running"})
                    if t["Status"]["State"] == "running"]
        finally:
            api.close()

    def hub_node(self) -> str | None:
        tasks = self.running_tasks(HUB_SERVICE)
        return self.label_of(tasks[0]["NodeID"]) if tasks else None

    def hub_url_on(self, node: str) -> str:
        return f"http://{ADDRESSES[node]}:{self.env['XJC_HUB_PORT']}/jupyterhub"

    def hub_answers_on(self, node: str) -> bool:
        try:
            return httpx.get(f"{self.hub_url_on(node)}/hub/api/", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_hub(self, timeout: float = 120, not_on: str | None = None) -> str:
        """The node whose hub answers (a site's load balancer would find it the same way: the published port)."""
        def found() -> str | None:
            node = self.hub_node()
            if node and node != not_on and self.hub_answers_on(node):
                return node
            return None

        node = wait_for(found, timeout, f"the hub to answer on a manager{f' other than {not_on}' if not_on else ''}")
        assert node is not None
        return node

    @property
    def hub_url(self) -> str:
        return self.hub_url_on(self.wait_hub())

    def plugin(self) -> XnatPlugin:
        return XnatPlugin(f"{self.hub_url}/hub/api", self.secret("xnat_service_token"), timeout=30)

    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, f"{self.env['XJC_STANDIN_CONTROL']}{path}", json=body, timeout=10)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text[:200]}"
        return response.json() if response.content else None

    async def launch(self, user: str, *, constraints: list[str] | None = None,
                     generic_resources: dict[str, str] | None = None, server: str | None = None,
                     timeout: float = 180) -> tuple[str, float]:
        """XNAT's launch: store the options, ensure the user, POST the start, poll until ready.
        Returns (server name, seconds to ready)."""
        server = server or xnat_options.event_tracking_id()
        document = xnat_options.user_options(user, server, image=self.image, constraints=constraints,
                                             generic_resources=generic_resources, **NOTEBOOK_LIMITS)
        self.control("PUT", f"/user-options/{user}/{server}", document)
        body = xnat_options.start_request_body(event_tracking_id=server)
        started = time.monotonic()
        async with self.plugin() as plugin:
            await plugin.ensure_user(user)
            await plugin.start_server(user, server, body)
            await plugin.wait_ready(user, server, timeout=timeout, interval=0.25)
        return server, time.monotonic() - started

    async def token(self, user: str) -> str:
        async with self.plugin() as plugin:
            return await plugin.create_token(user)

    def notebook_answers(self, user: str, server: str, token: str, hub_url: str | None = None) -> dict | None:
        """GET /jupyterhub/user/USER/SERVER/api through the hub's proxy: the notebook's version, or None."""
        url = f"{hub_url or self.hub_url}/user/{user}/{server}/api"
        try:
            response = httpx.get(url, headers={"Authorization": f"token {token}"}, timeout=10)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    def notebook_service(self, user: str, server: str) -> dict:
        api = self.manager()
        try:
            found = api.services(filters={"label": [f"{LABEL_USER}={user}", f"{LABEL_SERVER}={server}"]})
        finally:
            api.close()
        assert len(found) == 1, f"expected one service for {user}/{server}, found {[s['Spec']['Name'] for s in found]}"
        return found[0]

    def notebook_node(self, user: str, server: str) -> str | None:
        tasks = self.running_tasks(self.notebook_service(user, server)["Spec"]["Name"])
        return self.label_of(tasks[0]["NodeID"]) if tasks else None

    def stop_node(self, node: str) -> None:
        cluster_sh("stop", node, timeout=60)
        self.stopped.add(node)

    def start_node(self, node: str) -> None:
        cluster_sh("start", node, timeout=120)
        self.stopped.discard(node)

    def console(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`xnat-jh-console` against this cluster (its manager's engine, the hub the task runs on)."""
        manager = next(n for n in MANAGERS if n not in self.stopped)
        command = [str(REPO / ".venv" / "bin" / "xnat-jh-console"), "--docker-host", socket_of(manager),
                   "--stack", "xjc", "--hub-url", f"{self.hub_url}/hub/api",
                   "--token-file", self.secret_file("console_token"), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              env={**os.environ, "XDG_CONFIG_HOME": str(STATE_DIR / "console-config")})


def _cluster_up() -> bool:
    done = subprocess.run([str(CLUSTER), "status"], capture_output=True, text=True, timeout=60)
    return all(f"{n}: engine" in done.stdout for n in ADDRESSES) and "stand-in: http" in done.stdout


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    if os.geteuid() != 0:
        pytest.skip("the cluster needs root (network namespaces and extra Docker engines)")
    for tool in ("dockerd", "nsenter", "unshare", "docker-registry", "openssl"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is missing: scripts/test.sh installs it (apt-get install docker.io docker-registry)")
    started_here = not _cluster_up()
    started = time.monotonic()
    out = cluster_sh("up", timeout=900)
    print(f"\n[multinode] scripts/cluster.sh up: {time.monotonic() - started:.0f} s\n{out[-600:]}")
    env_text = cluster_sh("env")
    env = dict(line.removeprefix("export ").split("=", 1) for line in env_text.splitlines() if "=" in line)
    the = Cluster(env)
    api = the.manager()
    try:
        the.node_ids = {n["Spec"]["Labels"]["xjh.node"]: n["ID"] for n in api.nodes()}
    finally:
        api.close()
    try:
        yield the
    finally:
        if started_here and os.environ.get("XJC_KEEP_CLUSTER") != "1":
            subprocess.run([str(CLUSTER), "down"], capture_output=True, text=True, timeout=300)


def docker_json(node: str, *args: str) -> Any:
    out = subprocess.run(["docker", "-H", socket_of(node), *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out)
