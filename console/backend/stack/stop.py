"""Stop: every server through the hub, the notebook services left on the network, `docker stack rm`, then the
network (and on request the hub's volume and the stack's secrets). Returns an ActionResult naming what it removed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
import docker.errors

from console.backend.hub import HubClient, HubError
from console.backend.models import ActionResult, Outcome
from console.backend.stack.engine import (
    _find_network,
    _find_secret,
    _run_docker,
    _short,
    _stack_services,
    docker_client,
)
from console.backend.stack.settings import (
    POLL,
    Progress,
    StackSettings,
)
from xjh_contract import (
    LABEL_STACK_NAMESPACE,
    LABEL_USER,
    NOTEBOOK_PREFIX,
)


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
        problems = [f"{u}/{s}: {r}" for (u, s), r in zip(targets, results, strict=False) if isinstance(r, Exception)]
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
        stopped = [
            f"{u}/{s}" if s else u for (u, s), r in zip(targets, results, strict=True) if not isinstance(r, Exception)
        ]
        return stopped, "; ".join(problems)


def notebook_services(client: docker.DockerClient, network: str) -> list[Any]:
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
        if LABEL_USER in labels or service.name.startswith(NOTEBOOK_PREFIX):
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
    outcome = Outcome.FAILED if problems else Outcome.OK
    return ActionResult("stop", settings.stack_name, outcome, detail, tuple(removed))


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


def _terminate(container: Any) -> None:
    with contextlib.suppress(docker.errors.APIError):  # exited meanwhile
        container.kill(signal="SIGTERM")


def _remove_network(client: docker.DockerClient, name: str, stack: str, deadline: float) -> str | None:
    """None once the stack's network is gone (or was never there as ours), "" if it is not ours, else the problem."""
    while True:
        network = _find_network(client, name)
        if network is None:
            return None
        if (network.attrs.get("Labels") or {}).get(LABEL_STACK_NAMESPACE) != stack:
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
    for volume in client.volumes.list(filters={"label": f"{LABEL_STACK_NAMESPACE}={stack}"}):
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
