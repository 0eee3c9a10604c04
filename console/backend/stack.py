"""Deploy and stop the xnat-jupyterhub stack: the logic behind `xnat-jh-console deploy|stop`, scripts/demo.sh,
the end-to-end tests and bench/.

Plain Python, no Textual. `deploy()` is a generator of progress lines (a screen shows them, a terminal prints
them) and raises `StackError` with a message safe to show. `stop()` returns an `ActionResult` naming exactly
what it removed. `docker stack deploy` and `docker stack rm` run through the real docker CLI, as an operator would
type them; everything else asks the engine through the Docker SDK.

Also a script:  python -m console.backend.stack deploy|stop|secrets --help
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets as secrets_module
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import yaml

from console.backend import registry
from console.backend.hub import HubClient, HubError
from console.backend.models import ActionResult
from console.config import ConfigError, read_secret_file

STACK_NAME = "xnat-jupyterhub"
HUB_SERVICE = "jupyterhub"
BASE_URL = "/jupyterhub"
DEFAULT_NETWORK = "jupyterhub-network"
DEFAULT_PORT = 8000
DEFAULT_SECRETS_PREFIX = "xnat_jupyterhub"
# Secret keys of docker-stack.yml; the Docker secret is named PREFIX_KEY.
SECRET_KEYS = ("xnat_service_token", "xnat_password", "console_token")
# How the hub's notebook services are recognised (hub/spawner.py sets the label; the name is dockerspawner's).
USER_LABEL = "org.xnat.jupyterhub.user"
NOTEBOOK_PREFIX = "jupyter-"
STACK_LABEL = "com.docker.stack.namespace"
POLL = 0.2
UP_STATES = ("starting", "running")
REPO_STACK_FILE = Path(__file__).resolve().parents[2] / "docker-stack.yml"


class StackError(Exception):
    """Deploying or stopping cannot go on. The message says why and what to do; it never holds a secret."""


Progress = Callable[[str], None]


@dataclass(frozen=True)
class StackSettings:
    """Where and how the stack runs. `variables` are the `JH_*` values `docker stack deploy` substitutes
    (over the process environment); the derived properties read them the way docker-stack.yml does."""

    stack_file: Path = REPO_STACK_FILE
    stack_name: str = STACK_NAME
    variables: Mapping[str, str] = field(default_factory=dict)
    # Demo and tests: missing secrets are created from files here (a file is generated when missing).
    secrets_dir: Path | None = None
    timeout: float = 120.0

    @classmethod
    def from_env(cls, **overrides: Any) -> StackSettings:
        """Settings from the environment, over the variables file of the last deploy (`JH_STACK_ENV_FILE`,
        default `$XDG_STATE_HOME/xnat-jupyterhub/stack.env`, written by scripts/demo.sh), so a console opened
        later redeploys with the same values."""
        env = os.environ
        recorded = read_env_file(Path(env.get("JH_STACK_ENV_FILE") or default_env_file()))
        values: dict[str, Any] = {
            "stack_file": Path(env.get("JH_STACK_FILE") or recorded.get("JH_STACK_FILE") or REPO_STACK_FILE),
            "stack_name": env.get("JH_STACK_NAME") or recorded.get("JH_STACK_NAME") or STACK_NAME,
            "variables": {name: env.get(name) or value for name, value in recorded.items()},
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def variable(self, name: str, default: str = "") -> str:
        value = self.variables.get(name)
        if value is None:
            value = os.environ.get(name, "")
        return value or default

    @property
    def environment(self) -> dict[str, str]:
        """The environment `docker stack deploy` runs with."""
        env = dict(os.environ)
        env.update({k: str(v) for k, v in self.variables.items()})
        return env

    @property
    def network(self) -> str:
        return self.variable("JH_NETWORK", DEFAULT_NETWORK)

    @property
    def port(self) -> int:
        raw = self.variable("JH_PORT", str(DEFAULT_PORT))
        try:
            return int(raw)
        except ValueError:
            raise StackError(f"JH_PORT must be a port number, got {raw[:20]!r}") from None

    @property
    def hub_url(self) -> str:
        """The hub's public URL on this node (base URL included, no trailing slash)."""
        return f"http://127.0.0.1:{self.port}{BASE_URL}"

    @property
    def hub_api_url(self) -> str:
        return f"{self.hub_url}/hub/api"

    @property
    def hub_service(self) -> str:
        return f"{self.stack_name}_{HUB_SERVICE}"

    def secret_name(self, key: str) -> str:
        return f"{self.variable('JH_SECRETS_PREFIX', DEFAULT_SECRETS_PREFIX)}_{key}"

    @property
    def secret_names(self) -> list[str]:
        return [self.secret_name(key) for key in SECRET_KEYS]


def default_env_file() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "xnat-jupyterhub" / "stack.env"


def read_env_file(path: Path) -> dict[str, str]:
    """`NAME=value` lines (no quoting, # comments); {} when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise StackError(f"cannot read {path}: {e.strerror}") from None
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip().isidentifier():
            raise StackError(f"{path}:{number}: expected NAME=value")
        values[name.strip()] = value.strip()
    return values


# -- helpers ---------------------------------------------------------------------------------------------------


def docker_client(timeout: float = 30.0) -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except docker.errors.DockerException as e:
        raise StackError(f"the Docker engine does not answer ({_short(e)}); start it (scripts/engine.sh up)") from None
    return client


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[-1][:300] if text else type(error).__name__


def _run_docker(args: list[str], env: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    if shutil.which("docker") is None:
        raise StackError("the docker command-line client is not installed")
    try:
        return subprocess.run(
            ["docker", *args], env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise StackError(f"`docker {' '.join(args[:2])}` did not finish within {timeout:g} s") from None


def stack_config(settings: StackSettings) -> dict:
    """The stack file as `docker stack config` resolves it (variables substituted), or StackError."""
    if not settings.stack_file.is_file():
        raise StackError(f"stack file {settings.stack_file} not found")
    result = _run_docker(["stack", "config", "-c", str(settings.stack_file)], settings.environment, 30)
    if result.returncode != 0:
        raise StackError(f"{settings.stack_file.name} is not accepted: {result.stderr.strip()[-500:]}")
    try:
        config = yaml.safe_load(result.stdout)
    except yaml.YAMLError as e:
        raise StackError(f"cannot read `docker stack config` output: {e}") from None
    if not isinstance(config, dict) or not config.get("services"):
        raise StackError(f"{settings.stack_file.name} defines no services")
    return config


def write_secret_files(directory: Path, names: list[str]) -> list[Path]:
    """Make sure DIR/NAME holds a random value for each name (0600, directory 0700); returns the new files."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    created = []
    for name in names:
        path = directory / name
        if path.exists() and path.stat().st_size > 0:
            os.chmod(path, 0o600)
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets_module.token_hex(32) + "\n")
        created.append(path)
    return created


def _find_secret(client: docker.DockerClient, name: str):
    # The engine's name filter matches prefixes: keep the exact name only.
    return next((s for s in client.secrets.list(filters={"name": name}) if s.name == name), None)


def _find_network(client: docker.DockerClient, name: str):
    return next((n for n in client.networks.list(names=[name]) if n.name == name), None)


def _stack_services(client: docker.DockerClient, stack: str) -> list:
    return client.services.list(filters={"label": f"{STACK_LABEL}={stack}"})


def _hub_answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/hub/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


# -- deploy ----------------------------------------------------------------------------------------------------


def preflight(settings: StackSettings, client: docker.DockerClient) -> Iterator[str]:
    """Checks that fail fast with a clear message, before anything is changed (except demo secrets)."""
    info = client.info()
    swarm = info.get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active":
        raise StackError("this engine is not part of a swarm: run `docker swarm init` first")
    if not swarm.get("ControlAvailable"):
        raise StackError("this node is not a swarm manager: deploy from a manager node")
    yield f"engine {info.get('ServerVersion', '?')}, swarm manager"

    if not settings.variable("JH_XNAT_URL"):
        raise StackError("JH_XNAT_URL is not set: the URL the hub reaches XNAT at, e.g. https://xnat.example.org")
    config = stack_config(settings)
    yield f"stack file {settings.stack_file} accepted by `docker stack config`"

    missing_images = []
    for name, service in sorted(config["services"].items()):
        image = service.get("image", "")
        if registry.registry_of(image):  # every node pulls it: ask its registry, not this engine
            problem = registry.check_image(client, image)
            missing_images += [f"{image} (service {name}): {problem}"] if problem else []
            continue
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            missing_images.append(f"{image} (service {name})")
    if missing_images:
        raise StackError(
            "images not present on this node: " + ", ".join(missing_images)
            + ". Build them (scripts/build-images.sh) or load them (docker load)"
        )
    yield "images present: " + ", ".join(sorted({s.get("image", "") for s in config["services"].values()}))

    yield from _ensure_secrets(settings, client, config)

    for network in (config.get("networks") or {}).values():
        name = network.get("name", "")
        existing = _find_network(client, name) if name else None
        if existing is None or network.get("external"):
            continue
        attrs = existing.attrs
        owner = (attrs.get("Labels") or {}).get(STACK_LABEL)
        if owner != settings.stack_name:
            raise StackError(
                f"network {name} exists but was not created by stack {settings.stack_name} "
                f"({'stack ' + owner if owner else 'created by hand'}): remove it or pick another JH_NETWORK"
            )
        if attrs.get("Driver") != "overlay" or not attrs.get("Attachable"):
            raise StackError(f"network {name} must be an attachable overlay network")
    yield f"network {settings.network}: " + (
        "present" if _find_network(client, settings.network) else "will be created"
    )

    hub_running = any(
        t["Status"]["State"] in UP_STATES
        for s in _stack_services(client, settings.stack_name)
        if s.name == settings.hub_service
        for t in s.tasks(filters={"desired-state": "running"})
    )
    if not hub_running and _port_in_use(settings.port):
        raise StackError(f"port {settings.port} is in use by another program on this node (set JH_PORT)")


def _ensure_secrets(settings: StackSettings, client: docker.DockerClient, config: dict) -> Iterator[str]:
    wanted = [s["name"] for s in (config.get("secrets") or {}).values() if s.get("external") and s.get("name")]
    missing = [name for name in wanted if _find_secret(client, name) is None]
    if missing and settings.secrets_dir is None:
        raise StackError(
            "Docker secrets missing: " + ", ".join(missing)
            + ". Create each, e.g. `openssl rand -hex 32 | docker secret create NAME -`"
        )
    if settings.secrets_dir is not None:
        write_secret_files(settings.secrets_dir, wanted)
        for name in missing:
            data = (settings.secrets_dir / name).read_bytes().rstrip(b"\n")
            client.secrets.create(name=name, data=data, labels={"org.xnat.jupyterhub.stack": settings.stack_name})
            yield f"created Docker secret {name} from {settings.secrets_dir / name}"
    yield "secrets present: " + ", ".join(wanted)


def _task_failure(client: docker.DockerClient, stack: str, since: float) -> str | None:
    """The error of a stack task that failed or was rejected after `since`, with the hub's last log lines."""
    for service in _stack_services(client, stack):
        for task in service.tasks():
            status = task.get("Status", {})
            if status.get("State") not in ("failed", "rejected"):
                continue
            if _task_time(status.get("Timestamp", "")) < since:
                continue
            error = status.get("Err") or status.get("Message") or status.get("State")
            logs = ""
            try:
                raw = service.logs(stdout=True, stderr=True, tail=8)
                logs = b"".join(raw).decode(errors="replace").strip()
            except docker.errors.APIError:
                pass
            detail = f"service {service.name}: task {status.get('State')}: {error}"
            return detail + (f"\nlast log lines:\n{logs}" if logs else "")
    return None


def _task_time(stamp: str) -> float:
    # Docker's RFC 3339 timestamps carry nanoseconds; seconds are enough here.
    from datetime import datetime

    try:
        return datetime.fromisoformat(stamp[:19] + "+00:00").timestamp()
    except ValueError:
        return 0.0


def deploy(settings: StackSettings, client: docker.DockerClient | None = None) -> Iterator[str]:
    """Pre-flight checks, `docker stack deploy`, then wait until every service runs and the hub answers."""
    started = time.monotonic()
    client = client or docker_client()
    yield from (f"pre-flight: {line}" for line in preflight(settings, client))

    since = time.time() - 1
    result = _run_docker(
        ["stack", "deploy", "--resolve-image", "never", "-c", str(settings.stack_file), settings.stack_name],
        settings.environment,
        120,
    )
    if result.returncode != 0:
        raise StackError(f"`docker stack deploy` failed: {result.stderr.strip()[-800:]}")
    yield f"docker stack deploy -c {settings.stack_file.name} {settings.stack_name}: done"
    for name, old_containers in _stale_services(client, settings.stack_name).items():
        # Same tag, new build (no registry digest to tell them apart): swarm would keep the old container.
        result = _run_docker(["service", "update", "--quiet", "--detach", "--force", name], settings.environment, 60)
        if result.returncode != 0:
            raise StackError(f"could not restart {name} on its rebuilt image: {result.stderr.strip()[-300:]}")
        since = time.time() - 1
        yield f"{name}: its image was rebuilt; restarting it on the new one"
        deadline = time.monotonic() + settings.timeout
        while {c.id for c in client.containers.list()} & old_containers:
            if time.monotonic() > deadline:
                raise StackError(f"the old container of {name} did not stop within {settings.timeout:g} s")
            time.sleep(POLL)

    deadline = time.monotonic() + settings.timeout
    converged = False
    while time.monotonic() < deadline:
        failure = _task_failure(client, settings.stack_name, since)
        if failure:
            raise StackError(f"the stack did not start: {failure}")
        if not converged:
            pending = _unconverged(client, settings.stack_name)
            if not pending:
                converged = True
                yield "services converged: " + ", ".join(s.name for s in _stack_services(client, settings.stack_name))
        if converged and _hub_answers(settings.hub_url):
            yield f"hub answers at {settings.hub_url}/hub/health ({time.monotonic() - started:.1f} s)"
            return
        time.sleep(POLL)
    what = "the hub did not answer /hub/health" if converged else "services did not converge: " + ", ".join(
        _unconverged(client, settings.stack_name)
    )
    raise StackError(
        f"{what} within {settings.timeout:g} s; see `docker service logs {settings.hub_service}`"
    )


def _stale_services(client: docker.DockerClient, stack: str) -> dict[str, set[str]]:
    """Stack services whose containers on this node run an older build of the image's tag, with those containers."""
    stale = {}
    for service in _stack_services(client, stack):
        image = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0]
        try:
            current = client.images.get(image).id
        except docker.errors.ImageNotFound:
            continue
        containers = client.containers.list(filters={"label": f"com.docker.swarm.service.name={service.name}"})
        old = {c.id for c in containers if c.attrs.get("Image") != current}
        if old:
            stale[service.name] = old
    return stale


def _unconverged(client: docker.DockerClient, stack: str) -> list[str]:
    pending = []
    for service in _stack_services(client, stack):
        replicas = (service.attrs["Spec"].get("Mode", {}).get("Replicated") or {}).get("Replicas", 1)
        # "starting": the container runs and its HEALTHCHECK has not passed yet; /hub/health is polled after this
        running = sum(
            1 for t in service.tasks(filters={"desired-state": "running"}) if t["Status"]["State"] in UP_STATES
        )
        if running < replicas:
            pending.append(f"{service.name} {running}/{replicas}")
    return pending


# -- stop ------------------------------------------------------------------------------------------------------


async def _stop_servers(api_url: str, token: str, deadline: float, say: Progress) -> tuple[list[str], str]:
    """Stop every running server through the hub; returns (servers stopped, problem or "")."""
    stopped: list[str] = []
    async with HubClient(api_url, token, timeout=10.0) as hub:
        try:
            users = await hub.users(state="active")
        except HubError as e:
            return stopped, f"could not list the hub's servers: {e}"
        targets = [(u["name"], name) for u in users for name in (u.get("servers") or {})]
        if not targets:
            say("hub: no running servers")
            return stopped, ""
        say(f"hub: stopping {len(targets)} server(s)")
        results = await asyncio.gather(
            *(hub.stop_server(user, server) for user, server in targets), return_exceptions=True
        )
        problems = [f"{u}/{s}: {r}" for (u, s), r in zip(targets, results) if isinstance(r, Exception)]
        while time.monotonic() < deadline:
            try:
                remaining = {(u["name"], n) for u in await hub.users(state="active") for n in (u.get("servers") or {})}
            except HubError as e:
                problems.append(f"hub stopped answering: {e}")
                break
            if not remaining & set(targets):
                break
            await asyncio.sleep(POLL)
        else:
            problems.append("some servers were still stopping at the deadline")
        stopped = [f"{u}/{s}" if s else u for (u, s), r in zip(targets, results) if not isinstance(r, Exception)]
        return stopped, "; ".join(problems)


def notebook_services(client: docker.DockerClient, network: str) -> list:
    """Notebook services on the stack's network: the hub's label, or dockerspawner's `jupyter-` name."""
    net = _find_network(client, network)
    if net is None:
        return []
    found = []
    for service in client.services.list():
        spec = service.attrs.get("Spec", {})
        targets = {n.get("Target") for n in spec.get("TaskTemplate", {}).get("Networks") or []}
        if not targets & {net.id, net.name}:
            continue
        labels = spec.get("Labels") or {}
        if USER_LABEL in labels or service.name.startswith(NOTEBOOK_PREFIX):
            found.append(service)
    return found


def stop(
    settings: StackSettings,
    *,
    token: str | None = None,
    remove_data: bool = False,
    remove_secrets: bool = False,
    client: docker.DockerClient | None = None,
    progress: Progress | None = None,
) -> ActionResult:
    """Stop every server through the hub, remove the notebook services left on the network, `docker stack rm`,
    and wait until the network is gone. With `remove_data` the hub's volume goes too (users, servers, cookie
    secret); with `remove_secrets` the stack's Docker secrets."""
    say = progress or (lambda line: None)
    started = time.monotonic()
    deadline = started + settings.timeout
    client = client or docker_client()
    removed: list[str] = []
    problems: list[str] = []

    notebooks = {s.name for s in notebook_services(client, settings.network)}
    hub_up = any(s.name == settings.hub_service for s in _stack_services(client, settings.stack_name))
    if hub_up and token:
        stopped, problem = asyncio.run(_stop_servers(settings.hub_api_url, token, started + 30, say))
        removed += [f"server {name}" for name in stopped]
        if problem:
            problems.append(problem)
            say(f"hub: {problem}")
    elif hub_up:
        say("hub: no token given; notebook services are removed directly")

    for service in notebook_services(client, settings.network):
        try:
            service.remove()
            removed.append(f"service {service.name}")
            say(f"removed notebook service {service.name} (the hub did not)")
        except docker.errors.NotFound:
            pass  # the hub removed it meanwhile
        except docker.errors.APIError as e:
            problems.append(f"could not remove {service.name}: {_short(e)}")

    stack_services = [s.name for s in _stack_services(client, settings.stack_name)]
    if stack_services:
        result = _run_docker(["stack", "rm", settings.stack_name], settings.environment, 60)
        if result.returncode != 0 and "in use" not in result.stderr:
            problems.append(f"`docker stack rm` failed: {result.stderr.strip()[-300:]}")
        removed += [f"service {name}" for name in stack_services]
        say(f"docker stack rm {settings.stack_name}: removed {', '.join(stack_services)}")
    _signal_removed(client, notebooks | set(stack_services))

    network_problem = _remove_network(client, settings.network, settings.stack_name, deadline)
    if network_problem is None:
        if removed or stack_services:
            removed.append(f"network {settings.network}")
            say(f"network {settings.network} removed")
    elif network_problem:
        problems.append(network_problem)

    if remove_data:
        removed += _remove_volumes(client, settings.stack_name, deadline, problems)
    if remove_secrets:
        for name in settings.secret_names:
            secret = _find_secret(client, name)
            if secret is None:
                continue
            try:
                secret.remove()
                removed.append(f"secret {name}")
            except docker.errors.APIError as e:
                problems.append(f"could not remove secret {name}: {_short(e)}")

    seconds = time.monotonic() - started
    detail = f"{len(removed)} removed in {seconds:.1f} s" + (f"; {'; '.join(problems)}" if problems else "")
    return ActionResult(action="stop", target=settings.stack_name, ok=not problems, detail=detail, removed=tuple(removed))


def _signal_removed(client: docker.DockerClient, services: set[str]) -> None:
    """SIGTERM this node's containers of services already removed. Docker would send it too, but only after
    first waiting some seconds for load balancers to forget the task, which nothing here needs (dnsrr, and
    the whole stack is going away)."""
    if not services:
        return
    gone = services - {s.name for s in client.services.list()}
    containers = [
        c for c in client.containers.list()
        if c.labels.get("com.docker.swarm.service.name") in gone
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(_terminate, containers))


def _terminate(container) -> None:
    try:
        container.kill(signal="SIGTERM")
    except docker.errors.APIError:
        pass  # exited meanwhile


def _remove_network(client: docker.DockerClient, name: str, stack: str, deadline: float) -> str | None:
    """None once the stack's network is gone (or was never there as ours), "" if it is not ours, else the problem."""
    while True:
        network = _find_network(client, name)
        if network is None:
            return None
        if (network.attrs.get("Labels") or {}).get(STACK_LABEL) != stack:
            return ""  # someone else's network of that name: not ours to remove
        try:
            network.remove()
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as e:
            if time.monotonic() >= deadline:
                network.reload()
                users = ", ".join(c.get("Name", "?") for c in (network.attrs.get("Containers") or {}).values())
                return f"network {name} is still in use{' by ' + users if users else ''}: {_short(e)}"
            time.sleep(POLL)


def _remove_volumes(client: docker.DockerClient, stack: str, deadline: float, problems: list[str]) -> list[str]:
    removed = []
    for volume in client.volumes.list(filters={"label": f"{STACK_LABEL}={stack}"}):
        while True:
            try:
                volume.remove()
                removed.append(f"volume {volume.name}")
                break
            except docker.errors.NotFound:
                break
            except docker.errors.APIError as e:
                # The hub's container may still be going away.
                if time.monotonic() >= deadline:
                    problems.append(f"could not remove volume {volume.name}: {_short(e)}")
                    break
                time.sleep(POLL)
    return removed


# -- the demo's XNAT stand-in ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StandinSettings:
    """The XNAT stand-in as a container on the stack's network, reached by the hub at `hub_xnat_url` as it would
    reach a real XNAT, and by this machine on loopback ports (the control API has no authentication)."""

    name: str = "xnat-jupyterhub-standin"
    image: str = "xnat-jupyterhub/hub:dev"
    demo_image: str = "xnat-jupyterhub/singleuser:dev"
    xnat_port: int = 8090
    control_port: int = 8091
    password_file: Path | None = None  # the hub's XNAT password (the `jupyterhub` service account)

    @property
    def hub_xnat_url(self) -> str:
        return f"http://{self.name}:8080"

    @property
    def xnat_url(self) -> str:
        return f"http://127.0.0.1:{self.xnat_port}"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}/_standin"


def start_standin(
    standin: StandinSettings, network: str, client: docker.DockerClient | None = None, timeout: float = 30.0
) -> str:
    """Run (or keep) the stand-in container on `network`, seeded with the demo cast; wait until it answers."""
    client = client or docker_client()
    if standin.password_file is None or not standin.password_file.is_file():
        raise StackError(f"the stand-in needs the hub's XNAT password file (got {standin.password_file})")
    if _find_network(client, network) is None:
        raise StackError(f"network {network} does not exist: deploy the stack first")
    try:
        container = client.containers.get(standin.name)
        if container.status != "running":
            container.remove(force=True)
            container = None
    except docker.errors.NotFound:
        container = None
    if container is None:
        client.containers.run(
            standin.image,
            ["python", "-m", "hub.standin", "--host", "0.0.0.0", "--port", "8080", "--control-host", "0.0.0.0",
             "--control-port", "8081", "--seed-demo", "--demo-image", standin.demo_image],
            name=standin.name,
            detach=True,
            network=network,
            ports={"8080/tcp": ("127.0.0.1", standin.xnat_port), "8081/tcp": ("127.0.0.1", standin.control_port)},
            volumes={str(standin.password_file.resolve()): {"bind": "/run/secrets/xnat_password", "mode": "ro"}},
            environment={"JH_XNAT_PASSWORD_FILE": "/run/secrets/xnat_password"},
            labels={"org.xnat.jupyterhub.component": "xnat-standin"},
            restart_policy={"Name": "unless-stopped"},
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(standin.control_url + "/", timeout=2.0).status_code == 200:
                return f"XNAT stand-in {standin.name} answers at {standin.xnat_url} (hub: {standin.hub_xnat_url})"
        except httpx.HTTPError:
            pass
        time.sleep(POLL)
    logs = client.containers.get(standin.name).logs(tail=10).decode(errors="replace").strip()
    raise StackError(f"the XNAT stand-in did not answer within {timeout:g} s; its last lines:\n{logs}")


def remove_standin(name: str, client: docker.DockerClient | None = None) -> list[str]:
    client = client or docker_client()
    try:
        client.containers.get(name).remove(force=True)
    except docker.errors.NotFound:
        return []
    return [f"container {name}"]


# -- command line ----------------------------------------------------------------------------------------------


def _read_token(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return read_secret_file(path, "token file", check_private=False)
    except ConfigError as e:
        raise StackError(str(e)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m console.backend.stack",
        description="Deploy or stop the xnat-jupyterhub stack. Stack variables (JH_XNAT_URL, JH_NETWORK, JH_PORT, "
        "JH_IMAGE, ...) come from the environment, as for `docker stack deploy`.",
    )
    parser.add_argument("--stack-file", type=Path, help=f"default: $JH_STACK_FILE or {REPO_STACK_FILE}")
    parser.add_argument("--stack-name", help=f"default: $JH_STACK_NAME or {STACK_NAME}")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (default 120)")
    sub = parser.add_subparsers(dest="command", required=True)
    dep = sub.add_parser("deploy", help="pre-flight checks, docker stack deploy, wait until the hub answers")
    dep.add_argument("--secrets-dir", type=Path, help="create missing Docker secrets from files here (demo)")
    stp = sub.add_parser("stop", help="stop every server, remove notebook services, docker stack rm")
    stp.add_argument("--token-file", default=os.environ.get("JH_CONSOLE_TOKEN_FILE"),
                     help="file holding a hub token that may stop servers (default: $JH_CONSOLE_TOKEN_FILE)")
    stp.add_argument("--remove-data", action="store_true", help="also remove the hub's volume (database)")
    stp.add_argument("--remove-secrets", action="store_true", help="also remove the stack's Docker secrets")
    sec = sub.add_parser("secrets", help="write a random value for each missing secret file (0600)")
    sec.add_argument("--dir", type=Path, required=True)
    std = sub.add_parser("standin", help="the demo's XNAT stand-in container on the stack's network")
    std.add_argument("action", choices=["up", "down"])
    defaults = StandinSettings()
    std.add_argument("--name", default=defaults.name)
    std.add_argument("--image", default=os.environ.get("JH_IMAGE") or defaults.image)
    std.add_argument("--demo-image", default=defaults.demo_image, help="image in the demo users' launch options")
    std.add_argument("--xnat-port", type=int, default=defaults.xnat_port, help="loopback port of its XNAT API")
    std.add_argument("--control-port", type=int, default=defaults.control_port, help="loopback port of its control API")
    std.add_argument("--password-file", type=Path, help="the hub's XNAT password (service account `jupyterhub`)")
    args = parser.parse_args(argv)

    settings = StackSettings.from_env(stack_file=args.stack_file, stack_name=args.stack_name, timeout=args.timeout)
    try:
        if args.command == "secrets":
            for path in write_secret_files(args.dir, settings.secret_names):
                print(f"wrote {path}")
            return 0
        if args.command == "standin":
            if args.action == "down":
                for item in remove_standin(args.name):
                    print(f"removed {item}")
                return 0
            standin = StandinSettings(
                name=args.name, image=args.image, demo_image=args.demo_image, xnat_port=args.xnat_port,
                control_port=args.control_port, password_file=args.password_file,
            )
            print(start_standin(standin, settings.network))
            return 0
        if args.command == "deploy":
            settings = StackSettings.from_env(
                stack_file=args.stack_file, stack_name=args.stack_name, timeout=args.timeout,
                secrets_dir=args.secrets_dir,
            )
            for line in deploy(settings):
                print(line, flush=True)
            return 0
        result = stop(
            settings,
            token=_read_token(args.token_file),
            remove_data=args.remove_data,
            remove_secrets=args.remove_secrets,
            progress=lambda line: print(line, flush=True),
        )
    except StackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except docker.errors.DockerException as e:
        print(f"error: Docker: {_short(e)}", file=sys.stderr)
        return 1
    for item in result.removed:
        print(f"removed {item}")
    print(("stopped: " if result.ok else "stopped with problems: ") + result.detail)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
