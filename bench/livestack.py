"""A live stack for the deployment benchmarks (bench_launch, bench_deploy, bench_stop), under names of its own
(stack `xjh-bench`, network `xjh-bench-network`, secrets `xjh_bench_*`) so it never touches a running demo.

It uses the same code as the demo: scripts/build-images.sh for the images, console.backend.stack for deploy,
the stand-in and stop. Everything it creates is removed on exit, also when a run fails.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from console.backend.stack import StackSettings, deploy, stop
from hub.standin import options as xnat_options
from hub.standin.container import StandinSettings, remove_standin, start_standin
from hub.standin.plugin import HubError, XnatPlugin
from tests.helpers.waiting import free_port

REPO = Path(__file__).resolve().parents[1]
STACK = "xjh-bench"
NETWORK = "xjh-bench-network"
SECRETS_PREFIX = "xjh_bench"
STANDIN = "xjh-bench-standin"
HUB_IMAGE = "xnat-jupyterhub/hub:dev"
SINGLEUSER_IMAGE = "xnat-jupyterhub/singleuser:dev"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class BenchStack:
    settings: StackSettings
    standin: StandinSettings
    secrets_dir: Path

    @property
    def service_token(self) -> str:
        return (self.secrets_dir / f"{SECRETS_PREFIX}_xnat_service_token").read_text().strip()

    @property
    def console_token(self) -> str:
        return (self.secrets_dir / f"{SECRETS_PREFIX}_console_token").read_text().strip()

    def plugin(self, api_url: str | None = None) -> XnatPlugin:
        return XnatPlugin(api_url or self.settings.hub_api_url, self.service_token, timeout=60)

    def deploy(self) -> None:
        for _line in deploy(self.settings):
            pass

    def start_standin(self) -> None:
        start_standin(self.standin, self.settings.network)

    def store_options(self, user: str, server: str, image: str = SINGLEUSER_IMAGE) -> None:
        """What XNAT stores before a launch: no mounts, no reservations (so many fit on one small node)."""
        import httpx

        document = xnat_options.user_options(user, server, image=image, cpu_limit=None, cpu_reservation=None,
                                             mem_limit=None, mem_reservation=None)
        httpx.put(f"{self.standin.control_url}/user-options/{user}/{server}", json=document,
                  timeout=10).raise_for_status()

    def teardown(self) -> None:
        remove_standin(self.standin.name)
        stop(self.settings, token=self.console_token if self.secrets_dir.exists() else None,
             remove_data=True, remove_secrets=True)


def build_images() -> None:
    print("building images (cached): scripts/build-images.sh", flush=True)
    subprocess.run([str(REPO / "scripts" / "build-images.sh")], check=True, stdout=subprocess.DEVNULL)


@contextmanager
def bench_stack(*, deployed: bool = True) -> Iterator[BenchStack]:
    """A bench stack with the XNAT stand-in (when `deployed`), removed on exit."""
    work = Path(tempfile.mkdtemp(prefix="xjh-bench-", dir="/var/tmp"))
    secrets_dir = work / "secrets"
    variables = {
        "JH_NETWORK": NETWORK,
        "JH_PORT": str(free_port("0.0.0.0")),
        "JH_SECRETS_PREFIX": SECRETS_PREFIX,
        "JH_IMAGE": HUB_IMAGE,
        "JH_XNAT_URL": f"http://{STANDIN}:8080",
        "NB_UID": "1000",
        "NB_GID": "100",
        "JH_UID": "",
        "JH_GID": "",
    }
    settings = StackSettings(stack_name=STACK, variables=variables, secrets_dir=secrets_dir, timeout=180)
    standin = StandinSettings(name=STANDIN, image=HUB_IMAGE, demo_image=SINGLEUSER_IMAGE,
                              xnat_port=free_port("0.0.0.0"), control_port=free_port("0.0.0.0"),
                              password_file=secrets_dir / f"{SECRETS_PREFIX}_xnat_password")
    stack = BenchStack(settings, standin, secrets_dir)
    stack.teardown()  # leftovers of an interrupted run
    try:
        if deployed:
            stack.deploy()
            stack.start_standin()
        yield stack
    finally:
        stack.teardown()
        shutil.rmtree(work, ignore_errors=True)


async def launch_and_wait(plugin: XnatPlugin, user: str, server: str, interval: float = 0.05) -> float:
    """XNAT's launch from the start request to `ready: true`, in seconds (the user exists already)."""
    started = time.perf_counter()
    await plugin.start_server(user, server, xnat_options.start_request_body(event_tracking_id=server))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            model = await plugin.get_server(user, server)
        except HubError as e:
            # The proxy closes idle keep-alive connections; a poll that meets one is simply repeated.
            if e.status is not None:
                raise
            continue
        if model and model.get("ready"):
            return time.perf_counter() - started
        await asyncio.sleep(interval)
    raise TimeoutError(f"{user}/{server} was not ready within 180 s")


async def stop_and_wait(plugin: XnatPlugin, user: str, server: str) -> None:
    await plugin.stop_server(user, server)
    await plugin.wait_gone(user, server, timeout=120, interval=0.1)


def run(coro):
    return asyncio.run(coro)
