"""`LiveBackend`: the `console.backend.base.Backend` interface against the real Docker engine, hub and XNAT.

Hub rows are joined with swarm state (`console.backend.swarm_join`); one-shot stats come from the task's
container where its engine is reachable.

Every change (deploy, stop the stack, stop / restart / delete a server, pull images) returns an `ActionResult`:
ok, failed (with the reason) or, in read-only mode, refused. Every change, refused or not, goes to the audit log.
Errors of the read paths: `HubError` and `DockerUnavailable` are both ConnectionErrors, as the fake backend's
faults are. A little over 450 lines: it is the whole interface in one class; what it joins lives in docker*,
hub, swarm_join and xnat_check*.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from console.backend import images as image_pulls
from console.backend.audit import AuditLog
from console.backend.docker import DockerAccess, DockerUnavailable, LogStream
from console.backend.health import hub_health, hub_unreachable
from console.backend.hub import OPTIONAL_SCOPES, HubClient, HubError, missing_scopes
from console.backend.models import (
    READ_ONLY,
    ActionResult,
    CheckStatus,
    CheckStep,
    ComponentHealth,
    ContainerStats,
    DockerEvent,
    Health,
    HubIdentity,
    HubInfo,
    NodeInfo,
    Outcome,
    Overview,
    Progress,
    PullPlan,
    PullProgress,
    ServerRow,
    ServiceInfo,
    TaskInfo,
)
from console.backend.swarm_join import FAILED_TASK_STATES, join_swarm
from console.config import ConsoleConfig

if TYPE_CHECKING:
    from console.backend.stack.settings import StackSettings
    from console.backend.xnat_check import XnatCheckSettings
from xjh_contract import NOTEBOOK_PREFIX, notebook_service_name

STOP_WAIT = 60.0
# /info, the token's scopes, the proxy's route count and the user count change rarely (an upgrade, a new token, a
# login): asked again after INFO_TTL seconds, not every tick.
INFO_TTL = 60.0
STATS_BATCH = 48  # containers sampled per hub_servers() call; the rest show their previous sample
POLL = 0.25


def _quiet(line: str) -> None:
    """Progress nobody asked to see."""


@dataclass(frozen=True)
class _HubRows:
    """The hub's rows for hub_servers(), and the notebook swarm as it was when they were read."""

    when: float
    include_stopped: bool
    swarm: frozenset[tuple[str, ...]]
    rows: list[ServerRow]


def _swarm_state(services: list[ServiceInfo], tasks: list[TaskInfo]) -> frozenset[tuple[str, ...]]:
    """What of the notebook swarm a server's start, stop or failure changes: its services and task states."""
    return frozenset(
        [(s.id, str(s.updated_at)) for s in services] + [(t.id, t.state, t.desired_state) for t in tasks]
    )


class LiveBackend:
    """The real thing. Docker methods block (thread workers); hub and XNAT methods are coroutines."""

    def __init__(
        self,
        config: ConsoleConfig,
        *,
        docker: DockerAccess | None = None,
        hub: HubClient | None = None,
        audit: AuditLog | None = None,
    ):
        self.config = config
        self.read_only = config.read_only
        self.docker = docker or DockerAccess(
            config.docker_host,
            timeout=config.timeout,
            stack=config.stack,
            network=config.network,
            node_engines=config.node_engines,
        )
        self._hub = hub
        self.audit = audit or AuditLog(config.audit_log, secrets=config.secrets())
        self._stats_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="xjc-stats")
        self._static: tuple[float, dict[str, Any], HubIdentity] | None = None
        self._route_count: tuple[float, int | None] | None = None
        self._user_count: tuple[float, int] | None = None
        self._hub_rows: _HubRows | None = None  # the last hub answer for hub_servers(), reused while it holds
        self._stats: dict[str, tuple[float, ContainerStats]] = {}  # container id -> (when sampled, sample)

    @property
    def hub(self) -> HubClient:
        if self._hub is None:
            if not self.config.token:
                raise HubError(
                    "no hub token: set JH_CONSOLE_TOKEN or JH_CONSOLE_TOKEN_FILE, or token_file in the config"
                )
            self._hub = HubClient(
                self.config.hub_url,
                self.config.token,
                verify=self.config.verify,
                ca_bundle=self.config.ca_bundle,
                timeout=self.config.timeout,
            )
        return self._hub

    async def aclose(self) -> None:
        if self._hub is not None:
            await self._hub.aclose()
        self._stats_pool.shutdown(wait=False, cancel_futures=True)
        self.docker.close()

    def _refuse(self, action: str, target: str) -> ActionResult | None:
        if not self.read_only:
            return None
        return self.audit.result(ActionResult(action, target, Outcome.REFUSED, READ_ONLY))

    # -- Docker ------------------------------------------------------------------------------

    def docker_health(self) -> list[ComponentHealth]:
        return self.docker.health()

    def nodes(self) -> list[NodeInfo]:
        return self.docker.nodes()

    def services(self) -> list[ServiceInfo]:
        return self.docker.services()

    def tasks(self, service: str) -> list[TaskInfo]:
        return self.docker.tasks(self.resolve_service(service))

    def events(self, since: datetime | None = None, until: datetime | None = None) -> list[DockerEvent]:
        """Events in [since, until] (default: the last 15 minutes, up to now); never waits for new ones."""
        return self.docker.events(since, until)

    def container_stats(self, task: TaskInfo) -> ContainerStats:
        return self.docker.container_stats(task)

    def resolve_service(self, target: str) -> str:
        """A service name from what an operator types: a service name or id, `hub`, or USER[/SERVER].
        Raises LookupError when nothing matches."""
        if target in ("hub", "jupyterhub"):
            return self.config.hub_service
        services = self.docker.services(all_services=True)
        for s in services:
            if target in (s.name, s.id):
                return s.name
        user, _, server = target.partition("/")
        for s in services:
            if s.notebook_user == user and s.notebook_server == server:
                return s.name
        name = notebook_service_name(user, server)
        if any(s.name == name for s in services):
            return name
        raise LookupError(f"no service for {target!r} (not a service name, nor a user's notebook service)")

    def service_logs(
        self,
        service: str,
        *,
        follow: bool = False,
        since: datetime | None = None,
        tail: int | None = None,
        timestamps: bool = False,
    ) -> LogStream:
        return self.docker.service_logs(
            self.resolve_service(service), follow=follow, since=since, tail=tail, timestamps=timestamps
        )

    def inspect_service(self, service: str) -> dict[str, Any]:
        return self.docker.inspect_service(self.resolve_service(service))

    def _stack_settings(self) -> StackSettings:
        from console.backend import stack

        return stack.StackSettings.from_env(stack_name=self.config.stack)

    def deploy(self, progress: Progress | None = None) -> ActionResult:
        if refused := self._refuse("deploy", self.config.stack):
            return refused
        from console.backend import stack

        say = progress or _quiet
        last = ""
        try:
            for line in stack.deploy(self._stack_settings()):
                last = line
                say(line)
        except stack.StackError as e:
            return self.audit.result(ActionResult("deploy", self.config.stack, Outcome.FAILED, str(e)))
        except DockerUnavailable as e:
            return self.audit.result(ActionResult("deploy", self.config.stack, Outcome.FAILED, str(e)))
        return self.audit.result(ActionResult("deploy", self.config.stack, Outcome.OK, last))

    def stop_stack(self, progress: Progress | None = None) -> ActionResult:
        if refused := self._refuse("stop", self.config.stack):
            return refused
        from console.backend import stack

        try:
            result = stack.stop(self._stack_settings(), token=self.config.token, progress=progress)
        except stack.StackError as e:
            result = ActionResult("stop", self.config.stack, Outcome.FAILED, str(e))
        self.audit.record(
            "stop",
            self.config.stack,
            result.outcome.value,
            result.detail + (f"; removed: {', '.join(result.removed)}" if result.removed else ""),
        )
        return result

    def pull_plan(self, images: list[str]) -> PullPlan:
        return image_pulls.plan(self.docker, images)

    def pull_images(self, images: list[str], progress: PullProgress | None = None) -> ActionResult:
        if refused := self._refuse("pull", ", ".join(images) or "the launch images"):
            return refused
        return self.audit.result(image_pulls.pull(self.docker, images, progress or (lambda update: None)))

    # -- Hub ---------------------------------------------------------------------------------

    async def _hub_static(self) -> tuple[dict[str, Any] | BaseException, HubIdentity | BaseException]:
        """/info and the token's scopes change only with a hub upgrade or a new token: asked again every
        INFO_TTL seconds, or at once after the hub refused us."""
        now = time.monotonic()
        if self._static is None or now - self._static[0] > INFO_TTL:
            info, me = await asyncio.gather(self.hub.info(), self.hub.whoami(), return_exceptions=True)
            if isinstance(info, BaseException) or isinstance(me, BaseException):
                return info, me  # not cached: ask again next time
            self._static = (now, info, me)
        return self._static[1], self._static[2]

    async def hub_info(self) -> HubInfo:
        hub = self.hub
        healthy, static = await asyncio.gather(hub.health(), self._hub_static(), return_exceptions=True)
        if isinstance(healthy, BaseException):
            self._static = None
            raise healthy
        info, me = static if not isinstance(static, BaseException) else (static, static)
        version = ""
        authenticator = spawner = ""
        if isinstance(info, dict):
            version = str(info.get("version", ""))
            authenticator = str((info.get("authenticator") or {}).get("class", ""))
            spawner = str((info.get("spawner") or {}).get("class", ""))
        else:
            try:
                version = await hub.version()
            except HubError:
                version = "?"
        scopes: tuple[str, ...] = ()
        missing: tuple[str, ...] = ()
        excess: tuple[str, ...] = ()
        if isinstance(me, HubIdentity):
            scopes, missing, excess = me.scopes, me.missing_scopes, me.excess_scopes
        elif isinstance(me, HubError) and me.status in (401, 403):
            missing = ("the token is not accepted",)
        routes = None
        if scopes and not missing_scopes(scopes, OPTIONAL_SCOPES):
            routes = await self._proxy_route_count()
        health = Health.OK if healthy else Health.DEGRADED
        return HubInfo(
            version=version,
            health=health,
            authenticator=authenticator,
            spawner=spawner,
            proxy_routes=routes,
            token_scopes=scopes,
            missing_scopes=missing,
            excess_scopes=excess,
        )

    async def _proxy_route_count(self) -> int | None:
        """The proxy's routes, asked every INFO_TTL: the hub answers it by fetching every route from the proxy."""
        now = time.monotonic()
        if self._route_count is None or now - self._route_count[0] > INFO_TTL:
            try:
                count: int | None = await self.hub.proxy_route_count()
            except HubError:
                count = None
            self._route_count = (now, count)
        return self._route_count[1]

    async def user_count(self) -> int:
        """How many users the hub has, asked every INFO_TTL."""
        now = time.monotonic()
        if self._user_count is None or now - self._user_count[0] > INFO_TTL:
            self._user_count = (now, await self.hub.user_count())
        return self._user_count[1]

    async def hub_servers(
        self, *, include_stopped: bool = False, stats: bool = True, hub_max_age: float = 0.0
    ) -> list[ServerRow]:
        """Every active server (with `include_stopped`, stopped named ones too), joined with the swarm.

        With `hub_max_age`, the hub's last answer is reused while it is younger than that, no server in it was
        pending, and the notebook services and their tasks are as they were then (a server that starts, stops or
        fails changes them): the Docker side is read every time, the hub only when something may have changed.
        """
        swarm = asyncio.ensure_future(asyncio.to_thread(self._notebook_swarm_or_none))
        # The containers are sampled while the hub answers: they depend on the swarm only.
        sampling = asyncio.ensure_future(self._sample_stats(swarm)) if stats else None
        try:
            rows = await self._current_hub_rows(include_stopped, hub_max_age, swarm)
        except BaseException:
            if sampling is not None:
                sampling.cancel()
            raise
        services, tasks = await swarm
        joined = join_swarm(rows, services, tasks)
        if sampling is not None:
            await sampling
            joined = self._with_stats(joined, tasks)
        return joined

    async def _current_hub_rows(
        self,
        include_stopped: bool,
        hub_max_age: float,
        swarm_read: Awaitable[tuple[list[ServiceInfo], list[TaskInfo]]],
    ) -> list[ServerRow]:
        """The hub's rows: its last answer while that holds (see hub_servers), else asked now. When the last
        answer is too old the hub is asked while the swarm is read, so the refresh waits for the slower only."""
        cached = self._hub_rows
        reusable = (
            cached is not None
            and cached.include_stopped == include_stopped
            and time.monotonic() - cached.when < hub_max_age
            and not any(row.state.startswith("pending") for row in cached.rows)
        )
        asked = None if reusable else asyncio.ensure_future(self.hub.servers(include_stopped=include_stopped))
        try:
            swarm = _swarm_state(*await swarm_read)
        except BaseException:
            if asked is not None:
                asked.cancel()
            raise
        if asked is None and cached is not None and cached.swarm == swarm:
            return cached.rows
        rows = await (asked or self.hub.servers(include_stopped=include_stopped))
        self._hub_rows = _HubRows(time.monotonic(), include_stopped, swarm, rows)
        return rows

    def _notebook_swarm_or_none(self) -> tuple[list[ServiceInfo], list[TaskInfo]]:
        """The notebook swarm, or nothing when the engine cannot be asked (the hub's rows still show)."""
        try:
            return self._notebook_swarm()
        except DockerUnavailable:
            return [], []

    def _notebook_swarm(self) -> tuple[list[ServiceInfo], list[TaskInfo]]:
        services = [s for s in self.docker.services() if s.notebook_user or s.name.startswith(NOTEBOOK_PREFIX)]
        ids = {s.id for s in services}
        tasks = [t for t in self.docker.tasks() if t.service_id in ids]
        return services, tasks

    async def _sample_stats(self, swarm_read: Awaitable[tuple[list[ServiceInfo], list[TaskInfo]]]) -> None:
        """Sample at most STATS_BATCH of the running notebook containers per call (never-sampled and oldest
        first); the rest keep their last sample, so a refresh costs the same with 500 servers."""
        _, tasks = await swarm_read
        wanted = {t.container_id: t for t in tasks if t.state == "running" and t.desired_state == "running"}
        due = sorted(wanted, key=lambda c: self._stats[c][0] if c in self._stats else 0.0)[:STATS_BATCH]
        loop = asyncio.get_running_loop()
        jobs = [loop.run_in_executor(self._stats_pool, self.docker.container_stats, wanted[c]) for c in due]
        now = time.monotonic()
        for container, value in zip(due, await asyncio.gather(*jobs, return_exceptions=True), strict=True):
            if isinstance(value, BaseException):
                value = ContainerStats(unavailable_reason=f"n/a: {value}")
            self._stats[container] = (now, value)
        for gone in set(self._stats) - set(wanted):
            self._stats.pop(gone, None)  # a refresh running beside this one may have dropped it

    def _with_stats(self, rows: list[ServerRow], tasks: list[TaskInfo]) -> list[ServerRow]:
        """Each row with its running container's last sample."""
        running = {t.service_id: t for t in tasks if t.state == "running" and t.desired_state == "running"}
        out = []
        for row in rows:
            task = running.get(row.service_id)
            stats = self._stats[task.container_id][1] if task and task.container_id in self._stats else None
            out.append(replace(row, stats=stats) if stats is not None else row)
        return out

    async def overview(self, *, hub_max_age: float = 0.0) -> Overview:
        """Counts for the status line / `status` command. Parts that fail show in `components`. `hub_max_age`:
        as for hub_servers, for the running and pending counts."""
        # The engine's side runs in a worker while the hub is asked, so a refresh waits for the slower, not both.
        docker_side = asyncio.ensure_future(asyncio.to_thread(self._overview_docker))

        async def notebook_swarm() -> tuple[list[ServiceInfo], list[TaskInfo]]:
            *_, services, tasks = await docker_side
            return services, tasks

        swarm = asyncio.ensure_future(notebook_swarm())
        hub_component, users, running, pending, version = await self._overview_hub(hub_max_age, swarm)
        components, nodes, failed_tasks, _, _ = await docker_side
        components.append(hub_component)
        return Overview(
            components=tuple(components),
            users=users,
            running_servers=running,
            pending_servers=pending,
            failed_tasks=failed_tasks,
            nodes=len(nodes),
            managers=sum(1 for n in nodes if n.role == "manager"),
            hub_version=version,
        )

    def _overview_docker(
        self,
    ) -> tuple[list[ComponentHealth], list[NodeInfo], int, list[ServiceInfo], list[TaskInfo]]:
        """Engine and swarm health, the nodes (read once, for the health and the counts), failed tasks, and the
        notebook services and tasks they were counted from."""
        components, nodes = self.docker.health_and_nodes()
        services: list[ServiceInfo] = []
        tasks: list[TaskInfo] = []
        if components[0].health == Health.OK:
            services, tasks = self._notebook_swarm_or_none()
        failed_tasks = sum(1 for t in tasks if t.state in FAILED_TASK_STATES and t.desired_state == "running")
        return components, nodes, failed_tasks, services, tasks

    async def _overview_hub(
        self, hub_max_age: float, swarm_read: Awaitable[tuple[list[ServiceInfo], list[TaskInfo]]]
    ) -> tuple[ComponentHealth, int, int, int, str]:
        users = running = pending = 0
        version = ""
        try:
            info = await self.hub_info()
            version = info.version
            component = hub_health(info)
            users, rows = await asyncio.gather(
                self.user_count(), self._current_hub_rows(False, hub_max_age, swarm_read)
            )
            running = sum(1 for r in rows if r.state == "ready")
            pending = sum(1 for r in rows if r.state.startswith("pending"))
        except HubError as e:
            component = hub_unreachable(e)
        return component, users, running, pending, version

    async def _wait_gone(self, user: str, server: str, *, timeout: float = STOP_WAIT) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = await self.hub.server(user, server)
            if row is None or row.state == "stopped":
                return True
            await asyncio.sleep(POLL)
        return False

    async def stop_server(self, user: str, server: str) -> ActionResult:
        self._hub_rows = None  # what the hub says about this server is about to change
        target = f"{user}/{server}" if server else user
        if refused := self._refuse("stop", target):
            return refused
        try:
            outcome = await self.hub.stop_server(user, server)
            if outcome == "stopping" and not await self._wait_gone(user, server):
                result = ActionResult("stop", target, Outcome.FAILED, f"still stopping after {STOP_WAIT:g} s")
            else:
                result = ActionResult("stop", target, outcome=Outcome.OK, detail="stopped")
        except HubError as e:
            result = ActionResult("stop", target, outcome=Outcome.FAILED, detail=str(e))
        return self.audit.result(result)

    async def delete_server(self, user: str, server: str) -> ActionResult:
        self._hub_rows = None  # what the hub says about this server is about to change
        target = f"{user}/{server}" if server else user
        if refused := self._refuse("delete", target):
            return refused
        if not server:
            return self.audit.result(
                ActionResult("delete", target, Outcome.FAILED, "the default server cannot be deleted; stop it")
            )
        try:
            outcome = await self.hub.stop_server(user, server, remove=True)
            if outcome == "stopping":
                await self._wait_gone(user, server)
            result = ActionResult("delete", target, outcome=Outcome.OK, detail="deleted")
        except HubError as e:
            result = ActionResult("delete", target, outcome=Outcome.FAILED, detail=str(e))
        return self.audit.result(result)

    async def restart_server(self, user: str, server: str, progress: Progress | None = None) -> ActionResult:
        """Stop, then start with the same user_options, passing the spawn's progress messages on as they come."""
        self._hub_rows = None  # what the hub says about this server is about to change
        target = f"{user}/{server}" if server else user
        if refused := self._refuse("restart", target):
            return refused
        say = progress or _quiet
        try:
            row = await self.hub.server(user, server, include_stopped=True)
            if row is None:
                raise HubError(f"{target} has no server to restart")
            options = dict(row.user_options)
            if row.state != "stopped":
                say(f"stopping {target}")
                if await self.hub.stop_server(user, server) == "stopping" and not await self._wait_gone(user, server):
                    raise HubError(f"{target} is still stopping after {STOP_WAIT:g} s")
                say("stopped")
            what = " ".join(str(options[k]) for k in ("xsiType", "itemId") if options.get(k))
            say(f"starting with the same user_options{f' ({what})' if what else ''}")
            await self.hub.start_server(user, server, options)
            last = None
            async for event in self.hub.progress(user, server):
                last = event
                percent = f"[{event.progress:3d}%] " if event.progress is not None else ""
                say(percent + event.message)
            if last is None or not last.ready:
                raise HubError(last.message if last else "the spawn ended without a ready event")
        except HubError as e:
            return self.audit.result(ActionResult("restart", target, Outcome.FAILED, str(e)))
        return self.audit.result(ActionResult("restart", target, Outcome.OK, "ready"))

    # -- XNAT --------------------------------------------------------------------------------

    def _xnat_settings(self, check_paths: bool = True) -> XnatCheckSettings:
        from console.backend.xnat_check import XnatCheckSettings  # with httpx: imported when first checked

        c = self.config
        return XnatCheckSettings(
            xnat_url=c.xnat_url,
            username=c.xnat_username,
            password=c.xnat_password,
            verify=c.verify,
            ca_bundle=c.ca_bundle,
            timeout=c.timeout,
            check_paths=check_paths,
        )

    async def xnat_check(self) -> AsyncIterator[CheckStep]:
        from console.backend.xnat_check import check

        async for step in check(self._xnat_settings()):
            yield step

    async def xnat_check_in_hub_network(self) -> list[CheckStep]:
        """The same check from a one-off service on the hub's network, with the hub's own settings."""
        from console.backend.xnat_check_hub_network import check_in_hub_network

        try:
            steps = await asyncio.to_thread(check_in_hub_network, self.docker, self.config.hub_service)
        except DockerUnavailable as e:
            return [
                CheckStep(
                    "from the hub's network",
                    CheckStatus.FAIL,
                    str(e),
                    "Is the stack deployed? The check clones the hub service to run inside its network.",
                )
            ]
        return [replace(s, name=f"{s.name} (hub network)") for s in steps]
