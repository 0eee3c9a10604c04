"""The live local stack: the demo under names of its own, for the end-to-end and fault tests (tests/e2e/conftest.py's
`live_stack` brings it up) and for the benchmarks in bench/ (`demo_stack`). Helpers: `bring_up_demo`,
`xnat_launch` (a launch the XNAT way), `login`."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from console.backend.stack import StackSettings
from hub.standin.plugin import XnatPlugin
from tests.helpers.waiting import free_port

REPO = Path(__file__).resolve().parents[2]
STACK = "xjh-e2e"
NETWORK = "xjh-e2e-network"
SECRETS_PREFIX = "xjh_e2e"
STANDIN = "xjh-e2e-standin"
SINGLEUSER_IMAGE = "xnat-jupyterhub/singleuser:dev"
HUB_IMAGE = "xnat-jupyterhub/hub:dev"
# Fixture setup (image builds on a fresh machine) counts against the first test's timeout.
E2E_TIMEOUT = 900


def docker_json(*args: str) -> Any:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


LiveStackT = TypeVar("LiveStackT", bound="LiveStack")


@dataclass
class LiveStack:
    env: dict[str, str]
    standin_port: int
    control_port: int
    work_dir: Path
    allowed_root: Path
    log: Path
    up: bool = True
    created_volumes: list[str] = field(default_factory=list)

    @property
    def hub_url(self) -> str:
        return self.settings.hub_url

    @property
    def api_url(self) -> str:
        return self.settings.hub_api_url

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}/_standin"

    @property
    def secrets_dir(self) -> Path:
        return Path(self.env["XDG_STATE_HOME"]) / "xnat-jupyterhub" / "secrets"

    def secret(self, key: str) -> str:
        # the names come from env, so the fault and console stacks (other prefixes) read their own files
        return (self.secrets_dir / f"{self.env['JH_SECRETS_PREFIX']}_{key}").read_text().strip()

    @property
    def settings(self) -> StackSettings:
        return StackSettings(
            stack_name=self.env["JH_STACK_NAME"],
            variables={k: v for k, v in self.env.items() if k.startswith("JH_")},
            secrets_dir=self.secrets_dir,
        )

    def plugin(self, api_url: str | None = None, timeout: float = 30) -> XnatPlugin:
        """XNAT's side: the plugin's calls with the XNAT service token (to this hub, or another at `api_url`)."""
        return XnatPlugin(api_url or self.api_url, self.secret("xnat_service_token"), timeout=timeout)

    def store_options(self, user: str, server: str, image: str = SINGLEUSER_IMAGE) -> None:
        """What XNAT stores before a launch: no mounts, no reservations (so many fit on one small node)."""
        from hub.standin import options as xnat_options

        document = xnat_options.user_options(
            user, server, image=image, cpu_limit=None, cpu_reservation=None, mem_limit=None, mem_reservation=None
        )
        self.control("PUT", f"/user-options/{user}/{server}", document)

    def control(self, method: str, path: str, body: Any = None) -> Any:
        """The stand-in's control API (users, stored launch options)."""
        response = httpx.request(method, f"{self.control_url}{path}", json=body, timeout=10)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text[:200]}"
        return response.json() if response.content else None

    def demo(self, action: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        with open(self.log, "a") as log:
            log.write(f"\n### scripts/demo.sh {action}\n")
            log.flush()
            result = subprocess.run(
                [str(REPO / "scripts" / "demo.sh"), action], cwd=REPO, env=self.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
            )
            log.write(result.stdout)
        return result

    def notebook_services(self, user: str, server: str | None = None) -> list[dict]:
        args = ["service", "ls", "--format", "{{.Name}}", "--filter", f"label=org.xnat.jupyterhub.user={user}"]
        if server is not None:
            args += ["--filter", f"label=org.xnat.jupyterhub.server={server}"]
        names = subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.split()
        return docker_json("service", "inspect", *names) if names else []


def make_dir(path: Path, owner: tuple[int, int] = (1000, 100)) -> Path:
    """A host directory the notebook (NB_UID 1000, NB_GID 100) can use as a bind source."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, *owner)
    return path


async def xnat_launch(stack: LiveStack, user: str, server: str | None = None, options: dict[str, Any] | None = None,
                      timeout: float = 120) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Launch a named server the way XNAT does: store the launch options in (stand-in) XNAT, make sure the hub
    user exists, POST the camelCase start body, poll until ready. Returns (server, start body, server model)."""
    from hub.standin import options as xnat_options

    server = server or xnat_options.event_tracking_id()
    document = options or xnat_options.user_options(
        user, server, image=SINGLEUSER_IMAGE, cpu_reservation=None, mem_reservation=None
    )
    stack.control("PUT", f"/user-options/{user}/{server}", document)
    body = xnat_options.start_request_body(event_tracking_id=server)
    async with stack.plugin() as plugin:
        await plugin.ensure_user(user)
        await plugin.start_server(user, server, body)
        model = await plugin.wait_ready(user, server, timeout=timeout, interval=0.25)
    return server, body, model


@contextmanager
def launched_notebook(stack: LiveStack, user: str) -> Iterator[tuple[str, str]]:
    """A notebook of `user` launched the XNAT way, with XNAT's token for it: yields (server, token); the server is
    stopped through the plugin's stop flow when the block ends."""

    async def launch() -> tuple[str, str]:
        server, _body, _model = await xnat_launch(stack, user)
        async with stack.plugin() as plugin:
            return server, await plugin.create_token(user)

    async def stop(server: str) -> None:
        async with stack.plugin() as plugin:
            await plugin.stop_server(user, server)
            await plugin.wait_gone(user, server, timeout=60)

    server, token = asyncio.run(launch())
    try:
        yield server, token
    finally:
        asyncio.run(stop(server))


def engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def bring_up_demo(cls: type[LiveStackT], *, stack: str, network: str, secrets_prefix: str, standin: str) -> LiveStackT:
    """`scripts/demo.sh up` under these names, free ports and directories of its own (so an operator's demo and
    the other test stacks are never touched). Raises RuntimeError if it cannot come up; leaves nothing then."""
    if not engine_answers():
        raise RuntimeError("no Docker engine answers: run the tests with scripts/test.sh, which starts one")
    work_dir = Path(tempfile.mkdtemp(prefix=f"{stack}-", dir="/var/tmp"))
    allowed_root = work_dir / "xnat-data"
    allowed_root.mkdir()
    hub_port, standin_port, control_port = free_port("0.0.0.0"), free_port("0.0.0.0"), free_port("0.0.0.0")
    env = {
        **os.environ,
        "JH_STACK_NAME": stack,
        "JH_NETWORK": network,
        "JH_SECRETS_PREFIX": secrets_prefix,
        "JH_PORT": str(hub_port),
        "XJH_STANDIN_NAME": standin,
        "XJH_STANDIN_PORT": str(standin_port),
        "XJH_STANDIN_CONTROL_PORT": str(control_port),
        "XDG_STATE_HOME": str(work_dir / "state"),
        "XDG_CONFIG_HOME": str(work_dir / "config"),
        "JH_MOUNT_ALLOWED_PREFIXES": str(allowed_root),
        "XJH_NO_CONSOLE": "1",
        "XJH_SKIP_BOOTSTRAP": "1",
    }
    live = cls(env, standin_port, control_port, work_dir, allowed_root, work_dir / "demo.log")
    live.demo("down")  # a killed run may have left its stack behind under the same names
    result = live.demo("up")
    if result.returncode != 0:
        live.demo("down")
        shutil.rmtree(work_dir, ignore_errors=True)
        raise RuntimeError(f"scripts/demo.sh up failed (exit {result.returncode}):\n{result.stdout[-3000:]}")
    return live


@contextmanager
def demo_stack(prefix: str) -> Iterator[LiveStack]:
    """The demo under names made from `prefix` (stack PREFIX, network PREFIX-network, secrets PREFIX_*, stand-in
    PREFIX-standin), removed with everything it made when the block ends, also when it fails."""
    stack = bring_up_demo(
        LiveStack,
        stack=prefix,
        network=f"{prefix}-network",
        secrets_prefix=prefix.replace("-", "_"),
        standin=f"{prefix}-standin",
    )
    try:
        yield stack
    finally:
        stack.demo("down")
        shutil.rmtree(stack.work_dir, ignore_errors=True)


@contextmanager
def login(base: str, username: str, password: str) -> Iterator[tuple[httpx.Response, httpx.Client]]:
    """GET the login page (XSRF cookie), POST the form; yields the answer and the client holding the cookies."""
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as client:
        page = client.get("/hub/login")
        assert page.status_code == 200, page.text[:300]
        assert 'name="_xsrf"' in page.text
        xsrf = client.cookies.get("_xsrf")
        assert xsrf, "the login page set no _xsrf cookie"
        answer = client.post("/hub/login", data={"username": username, "password": password, "_xsrf": xsrf})
        yield answer, client
