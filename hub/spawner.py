"""XnatSwarmSpawner: each notebook is a Swarm service built from the launch options XNAT stored for it.

On every spawn the spawner asks XNAT (with the hub's service account) for the server's XnatUserOptions, validates
them (`hub.user_options`) and builds the whole service from scratch: image, command, env, labels, mounts (bind or
volume, read-only honoured), resources, generic resources, placement, network and endpoint mode. Nothing is kept
from an earlier spawn of the same server, and the POST body of the start request (`user_options`) never chooses
anything (CVE-2023-48311); it is left as it came, because XNAT reads `eventTrackingId` back from the server model.

A spawn that cannot go ahead fails before anything is created, with a message the user sees in the spawn
progress ("Spawn failed: ..."): no options stored in XNAT, XNAT unreachable, a refused mount, an invalid value.
A task that Docker rejects or cannot schedule fails the spawn within `rejected_task_timeout` seconds with
Docker's own error text, and the service is removed (dockerspawner waits for `start_timeout`: dockerspawner#330).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator
from typing import Any

from docker.errors import APIError, DockerException, NotFound
from docker.types import ContainerSpec, EndpointSpec, Mount, Placement, Resources, TaskTemplate
from dockerspawner import SwarmSpawner
from requests.exceptions import RequestException
from traitlets import Float, TraitError, Unicode, default, validate

from hub import settings
from hub.launch import SpawnRefused, XnatLaunchMixin
from hub.user_options import LaunchSpec
from xjh_contract import LABEL_SERVER, LABEL_USER

# Task states (swarmkit api.TaskState, lowercased) of a container that is gone. A fresh service's task only gets
# there by failing: exiting (complete, failed) or losing its node (orphaned).
_ENDED_STATES = frozenset({"complete", "failed", "orphaned"})


def _positive_seconds(name: str, default: int) -> int:
    value = settings.env_int(name, default)
    if value is None or value <= 0:
        raise settings.SettingsError(f"{name} must be a number of seconds greater than 0, got {value}")
    return value


class XnatSwarmSpawner(XnatLaunchMixin, SwarmSpawner):
    """Spawns each notebook as a Docker Swarm service from the launch options XNAT stored for the server."""

    # -- options ------------------------------------------------------------------------------------------------

    @default("network_name")
    def _default_network_name(self) -> str:
        return settings.env_str("JH_NETWORK", "jupyterhub-network") or ""

    @default("start_timeout")
    def _default_start_timeout(self) -> int:
        return _positive_seconds("JH_START_TIMEOUT", 180)

    @default("http_timeout")
    def _default_http_timeout(self) -> int:
        # a class starting at once: 10 notebooks booting together on 2 cores took 85 s to answer (bench_class)
        return _positive_seconds("JH_HTTP_TIMEOUT", 150)

    @default("extra_endpoint_spec")
    def _default_extra_endpoint_spec(self) -> dict[str, Any]:
        # The service name resolves straight to the task's address: no virtual IP, which needs IPVS (absent on
        # some kernels) and can go stale (dockerspawner#279). Needs use_internal_ip (no published ports).
        return {"mode": "dnsrr"}

    @validate("allowed_images")
    def _validate_allowed_images(self, proposal: Any) -> Any:  # replaces dockerspawner's validator
        if proposal["value"]:
            raise TraitError(
                "XnatSwarmSpawner.allowed_images must stay empty: the image comes from XNAT's launch options, "
                "never from the start request (CVE-2023-48311)"
            )
        return proposal["value"]

    nb_uid = Unicode(
        help="""Numeric uid the notebook runs as. With nb_gid also set, the container starts as root with
        NB_UID/NB_GID in its environment, and the image's start script (docker-stacks' start.sh, or our
        singleuser image's start-singleuser) switches to them before starting the notebook, as in the original
        image. Either one empty: the image's own user.

        Default: $NB_UID.
        """,
    ).tag(config=True)

    nb_gid = Unicode(help="""Numeric gid for the notebook; see nb_uid. Default: $NB_GID.""").tag(config=True)

    @default("nb_uid")
    def _default_nb_uid(self) -> str:
        return settings.env_str("NB_UID", "") or ""

    @default("nb_gid")
    def _default_nb_gid(self) -> str:
        return settings.env_str("NB_GID", "") or ""

    @validate("nb_uid", "nb_gid")
    def _numeric_id(self, proposal: Any) -> str:
        value: str = proposal["value"].strip()
        if value and not (value.isascii() and value.isdigit()):
            name = "NB_UID" if proposal["trait"].name == "nb_uid" else "NB_GID"
            raise TraitError(f"{name} must be a number, got {value[:20]!r}")
        return value

    rejected_task_timeout = Float(
        2.0,
        help="""Seconds a new notebook service may go on without a running task once one of its tasks went
        wrong: rejected by Docker (a bind source missing on the node, an image that is not there), unschedulable
        (no node satisfies its constraints or resources) or failed to start. Then the spawn fails with Docker's
        error text and the service is removed. 0 fails at the first sight of such a task; a longer window lets
        swarm retry elsewhere. dockerspawner alone would wait for start_timeout (dockerspawner#330).

        Default: $JH_REJECTED_TASK_TIMEOUT, else 2.
        """,
    ).tag(config=True)

    @default("rejected_task_timeout")
    def _default_rejected_task_timeout(self) -> float:
        value = settings.env_float("JH_REJECTED_TASK_TIMEOUT", 2.0)
        if value is None or not 0 <= value < float("inf"):
            raise settings.SettingsError(f"JH_REJECTED_TASK_TIMEOUT must be 0 or more seconds, got {value!r}")
        return value

    @validate("rejected_task_timeout")
    def _check_rejected_task_timeout(self, proposal: Any) -> float:
        value: float = proposal["value"]
        if not 0 <= value < float("inf"):
            raise TraitError("rejected_task_timeout must be 0 or more seconds")
        return value

    task_poll_interval = Float(
        0.5, help="""Seconds between two looks at the new service's task while waiting for it to run."""
    ).tag(config=True)

    # -- per-spawn state ----------------------------------------------------------------------------------------

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._events: list[dict[str, Any]] = []
        self._events_changed = asyncio.Event()

    def _report(self, progress: int, message: str) -> None:
        self._events.append({"progress": progress, "message": message})
        self._events_changed.set()

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        """The steps of the spawn in progress (JupyterHub stops reading when the spawn ends)."""
        sent = 0
        while True:
            sent = min(sent, len(self._events))  # a new spawn started over
            while sent < len(self._events):
                yield self._events[sent]
                sent += 1
            self._events_changed.clear()
            await self._events_changed.wait()

    @property
    def launch_image(self) -> str:
        """XNAT's image, else the configured `image`."""
        return (self.launch.image if self.launch else None) or self.image

    # -- spawning -----------------------------------------------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        """Fetch XNAT's launch, create the service from it, wait for its task to run. Never reads user_options."""
        self._events.clear()
        self.launch = None
        self._report(5, "Fetching the launch options from XNAT")
        self.launch = await self.fetch_launch()

        try:
            if await self.get_object() is not None:
                # a service left from an earlier spawn (the hub died, or its removal failed): never reuse it,
                # it was built from an older launch
                self.log.warning("Removing leftover service %s before spawning", self.service_name)
                await self.remove_object()
                self.object_id = ""
            self._report(20, f"Creating the service {self.service_name} from {self.launch_image}")
            service = await self.create_object()
            self.object_id = service[self.object_id_key]
            self.log.info("Created service %s (id %s) from image %s", self.service_name, self.object_id[:7],
                          self.launch_image)
            await self.start_object()
            address: tuple[str, int] = await self.get_ip_and_port()
            return address
        except BaseException as e:
            # failed, or cancelled by start_timeout: leave nothing behind
            await self._discard_service()
            if isinstance(e, APIError):
                self.log.error("Docker failed while spawning %s: %s", self._log_name, e)
                raise SpawnRefused(500, f"Docker failed while starting the notebook: {e.explanation}") from None
            if isinstance(e, (DockerException, RequestException)):
                self.log.error("Cannot reach Docker to spawn %s: %s", self._log_name, e)
                raise SpawnRefused(
                    503,
                    "The hub cannot reach Docker to start the notebook. Try again later, or tell your administrator.",
                ) from None
            raise

    async def _discard_service(self) -> None:
        """Remove this spawn's service, if it got as far as existing. By name only when it carries our labels:
        a same-named service that is not this spawn's is never touched."""
        try:
            service_id = self.object_id
            if not service_id:
                service = await self.docker("inspect_service", self.service_name)
                labels = service.get("Spec", {}).get("Labels") or {}
                if (labels.get(LABEL_USER), labels.get(LABEL_SERVER)) != (self.user.name, self.name):
                    return
                service_id = service["ID"]
            await self.docker("remove_service", service_id)
            self.log.info("Removed service %s of a failed spawn", self.service_name)
        except NotFound:
            pass
        except (DockerException, RequestException) as e:
            self.log.error("Could not remove service %s of a failed spawn: %s", self.service_name, e)
        finally:
            self.object_id = ""

    async def remove_object(self) -> None:
        if not self.object_id:
            return  # nothing was created (e.g. the spawn was refused)
        try:
            await super().remove_object()
        except NotFound:
            self.log.info("Service %s was already gone", self.service_name)

    async def get_command(self) -> list[str] | None:
        """XNAT's command, else the configured cmd, else the image's own (Docker applies it: no inspect needed,
        so the image need not be on the hub's node)."""
        if self.launch and self.launch.cmd:
            return [*self.launch.cmd, *self.get_args()]
        if self.cmd:
            return [*self.cmd, *self.get_args()]
        if not self.get_args():
            return None
        image = await self.docker("inspect_image", self.launch_image)
        return [*image["Config"]["Cmd"], *self.get_args()]

    def get_env(self) -> dict[str, str]:
        hub_env = super().get_env()
        hub_env["JUPYTER_IMAGE_SPEC"] = self.launch_image
        if self.nb_uid and self.nb_gid:
            hub_env.setdefault("NB_UID", self.nb_uid)
            hub_env.setdefault("NB_GID", self.nb_gid)
        resources = self.effective_resources()
        for name, key in (("MEM_LIMIT", "mem_limit"), ("MEM_GUARANTEE", "mem_reservation")):
            hub_env.pop(name, None)
            if resources.get(key):
                hub_env[name] = str(resources[key])
        for name, key in (("CPU_LIMIT", "cpu_limit"), ("CPU_GUARANTEE", "cpu_reservation")):
            hub_env.pop(name, None)
            if resources.get(key):
                hub_env[name] = f"{resources[key] / 1e9:g}"
        return self.with_xnat_env(hub_env)

    @property
    # SwarmSpawner itself replaces DockerSpawner's `mounts` trait with a read-only property; so do we.
    def mounts(self) -> list[Mount]:  # type: ignore[override]
        """The operator's `volumes` (binds) and XNAT's mounts with their real type and read-only flag.

        SwarmSpawner's own property makes every mount a bind and needs `volumes`, which XNAT's paths would
        pass through `str.format`; this one takes XNAT's mounts as they are, already validated.
        """
        mounts = list(super().mounts)
        driver = self.mount_driver_config
        for mount in self.launch.mounts if self.launch else ():
            mounts.append(
                Mount(
                    target=mount.target,
                    source=mount.source,
                    type=mount.type,
                    read_only=mount.read_only,
                    # a driver on a bind mount is an error in Docker (dockerspawner#263)
                    driver_config=driver if mount.type == "volume" else None,
                )
            )
        return mounts

    @property
    def service_labels(self) -> dict[str, str]:
        """XNAT's labels plus ours, on the service and on its containers (ours win)."""
        launch_labels = dict(self.launch.labels) if self.launch else {}
        return {**launch_labels, LABEL_USER: self.user.name, LABEL_SERVER: self.name}

    def effective_resources(self) -> dict[str, Any]:
        """Docker Resources arguments: the operator's settings, with XNAT's values where XNAT gives them."""
        launch = self.launch or LaunchSpec()
        extra = dict(self.extra_resources_spec)
        operator_generic = extra.pop("generic_resources", None) or {}

        def nano(cpus: float | None) -> int | None:
            return int(cpus * 1e9) if cpus else None

        resources: dict[str, Any] = {
            "mem_limit": self.mem_limit or None,
            "mem_reservation": self.mem_guarantee or None,
            "cpu_limit": nano(self.cpu_limit),
            "cpu_reservation": nano(self.cpu_guarantee),
            **extra,
        }
        for key, value in (
            ("mem_limit", launch.mem_limit),
            ("mem_reservation", launch.mem_reservation),
            ("cpu_limit", nano(launch.cpu_limit)),
            ("cpu_reservation", nano(launch.cpu_reservation)),
        ):
            if value is not None:
                resources[key] = value
        generic = {**dict(operator_generic), **launch.generic_resources}
        if generic:
            resources["generic_resources"] = generic
        return resources

    async def service_spec(self) -> dict[str, Any]:
        """The keyword arguments for `create_service`, built only from configuration and this spawn's launch."""
        launch = self.launch or LaunchSpec()
        labels = self.service_labels
        command = await self.get_command()

        container = dict(self.extra_container_spec)
        container["mounts"] = [*self.mounts, *container.get("mounts", [])]
        container["labels"] = {**container.get("labels", {}), **labels}
        container.update(image=self.launch_image, env=self.get_env(), args=command)
        if self.nb_uid and self.nb_gid:
            # root at start, so the image's start script can switch to NB_UID:NB_GID
            container.setdefault("user", "0")

        placement = dict(self.extra_placement_spec)
        placement["constraints"] = [*(placement.get("constraints") or []), *launch.constraints] or None

        task: dict[str, Any] = {
            "container_spec": ContainerSpec(**container),
            "resources": Resources(**self.effective_resources()),
            "networks": [self.network_name] if self.network_name else [],
            "placement": Placement(**placement),
        }
        task.update(self.extra_task_spec)

        endpoint: dict[str, Any] = {}
        if not self.use_internal_ip:
            endpoint["ports"] = {None: (self.port, "tcp")}
        endpoint.update(self.extra_endpoint_spec)

        extra_create = self._eval_if_callable(self.extra_create_kwargs)
        if inspect.isawaitable(extra_create):
            extra_create = await extra_create
        extra_create = dict(extra_create or {})
        service_labels = {**extra_create.pop("labels", {}), **labels}
        return {
            "task_template": TaskTemplate(**task),
            "endpoint_spec": EndpointSpec(**endpoint),
            "name": self.service_name,
            **extra_create,
            "labels": service_labels,
        }

    async def create_object(self) -> dict[str, Any]:
        """Create the service. Docker's refusal (a bad name, an unknown network) becomes a SpawnRefused."""
        spec = await self.service_spec()
        try:
            created: dict[str, Any] = await self.docker("create_service", **spec)
            return created
        except APIError as e:
            self.log.warning("Docker refused to create service %s: %s", self.service_name, e.explanation)
            raise SpawnRefused(500, f"Docker refused to create the notebook service: {e.explanation}") from None

    async def poll(self) -> int | str | None:
        """None while the notebook's task runs. dockerspawner also counts a pending or preparing task as running:
        after a node is lost, swarm leaves the old task "running" on it with desired state shutdown and makes a
        replacement that may never find a node its placement allows. Outside a spawn (start_object watches the
        tasks then) only a task that runs and should run counts, so the hub sees the server stopped."""
        if self.pending == "spawn":
            status: int | str | None = await super().poll()
            return status
        if await self.get_object() is None:
            return 0
        tasks = sorted(await self.docker("tasks", filters={"service": self.service_name}), key=_created_key)
        if any(_state(t) == "running" and str(t.get("DesiredState", "")).lower() == "running" for t in tasks):
            return None
        newest = _state(tasks[-1]) if tasks else "gone"
        self.log.warning("No task of %s runs (newest: %s): the notebook is not running", self.service_name, newest)
        return f"no running task (newest: {newest})"

    async def start_object(self) -> None:
        """Wait until the service's newest task runs.

        The service is new, so every task it has belongs to this spawn. As soon as one of them has gone wrong
        (rejected, failed, exited, lost, or pending with a scheduler error), the spawn fails with Docker's error
        text unless a task is running within `rejected_task_timeout` seconds. Only the newest task is not enough:
        after a failure swarm at once makes a replacement task, which waits out the restart delay looking fine.
        """
        trouble_since: float | None = None
        last_state = ""
        while True:
            tasks = sorted(await self.docker("tasks", filters={"service": self.service_name}), key=_created_key)
            state = _state(tasks[-1]) if tasks else ""
            if state == "running":
                self._report(90, "The notebook is running; waiting for it to answer")
                return
            troubled = [task for task in tasks if _trouble(task)]
            if troubled:
                now = time.monotonic()
                trouble_since = now if trouble_since is None else trouble_since
                if now - trouble_since >= self.rejected_task_timeout:
                    raise SpawnRefused(500, _trouble_message(troubled[-1]))
            if state and state != last_state:
                if state == "preparing":  # Docker pulls the image now if the node lacks it: minutes for GBs
                    self._report(40, f"Notebook task preparing: pulling {self.launch_image} if its node lacks it")
                else:
                    self._report(40, f"Notebook task {state}")
                last_state = state
            await asyncio.sleep(self.task_poll_interval)


def _state(task: dict[str, Any]) -> str:
    return str((task.get("Status") or {}).get("State", "")).lower()


def _trouble(task: dict[str, Any]) -> bool:
    """A task that went wrong: ended, rejected, or waiting for a node it cannot have."""
    state = _state(task)
    return state in _ENDED_STATES or state == "rejected" or (state == "pending" and bool(task["Status"].get("Err")))


def _trouble_message(task: dict[str, Any]) -> str:
    """What went wrong, in Docker's words (the task's Err, else its status message)."""
    status = task.get("Status") or {}
    state = _state(task)
    reason = str(status.get("Err") or status.get("Message") or state)
    if state == "rejected":
        return f"Docker rejected the notebook: {reason}"
    if state == "pending":
        return f"Docker cannot place the notebook: {reason}"
    return f"The notebook stopped before it was ready ({state}): {reason}"


def _created_key(task: dict[str, Any]) -> tuple[str, str]:
    """Sort key for a task's CreatedAt (RFC 3339, nanoseconds with trailing zeros dropped)."""
    stamp = str(task.get("CreatedAt", "")).rstrip("Z")
    whole, _, fraction = stamp.partition(".")
    return whole, fraction.ljust(9, "0")
