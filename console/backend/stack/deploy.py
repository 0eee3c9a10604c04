"""Deploy: pre-flight checks that fail fast before anything changes, `docker stack deploy`, then convergence
until the hub answers. A generator of progress lines; raises StackError with a message safe to show."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors

from console.backend import registry
from console.backend.stack.engine import (
    _find_network,
    _find_secret,
    _hub_answers,
    _port_in_use,
    _run_docker,
    _stack_services,
    docker_client,
    stack_config,
    write_secret_files,
)
from console.backend.stack.settings import (
    POLL,
    UP_STATES,
    StackError,
    StackSettings,
)
from xjh_contract import (
    LABEL_STACK,
    LABEL_STACK_NAMESPACE,
)


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
        owner = (attrs.get("Labels") or {}).get(LABEL_STACK_NAMESPACE)
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


def _ensure_secrets(settings: StackSettings, client: docker.DockerClient, config: dict[str, Any]) -> Iterator[str]:
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
            client.secrets.create(name=name, data=data, labels={LABEL_STACK: settings.stack_name})
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
        old = {str(c.id) for c in containers if c.attrs.get("Image") != current}
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
