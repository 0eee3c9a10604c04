"""An in-memory backend for UI tests and the demo: deterministic data, a fixed clock, controllable faults.

Every time it reports is derived from `FakeBackend.now`, so snapshots never depend on the wall clock.
Faults: `fail("engine" | "hub" | "xnat", reason)` makes that part unreachable until `heal(...)`.
Nothing here imports Textual. Over 450 lines because it is the whole Backend interface and its demo data in one
place, beside each other, so the fake's answers are read in one file.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from console.backend.models import (
    READ_ONLY,
    ActionResult,
    CheckStatus,
    CheckStep,
    ComponentHealth,
    ContainerStats,
    DockerEvent,
    Health,
    HubInfo,
    ImageHolders,
    LogLine,
    NodeInfo,
    Outcome,
    Overview,
    Progress,
    PullPlan,
    PullProgress,
    PullUpdate,
    ServerRow,
    ServiceInfo,
    TaskInfo,
)
from xjh_contract import CHECK_SERVICE_PREFIX, hub_service_name

FIXED_NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
STACK = "xnat-jupyterhub"
HUB_SERVICE = hub_service_name(STACK)
NOTEBOOK_IMAGE = "xnat-jupyterhub/singleuser:dev"
GIB = 1024**3


class FakeUnreachable(ConnectionError):
    """Raised by a faulted part, like a refused connection would be."""


class FakeLogStream:
    """A blocking log iterator whose `close()` is safe from another thread, as the live one must be."""

    def __init__(self, lines: list[LogLine], follow: bool) -> None:
        self._backlog = list(lines)
        self._follow = follow
        self._queue: queue.Queue[LogLine | None] = queue.Queue()
        self._closed = threading.Event()

    def push(self, line: LogLine) -> None:
        self._queue.put(line)

    def close(self) -> None:
        self._closed.set()
        self._queue.put(None)

    def __iter__(self) -> FakeLogStream:
        return self

    def __next__(self) -> LogLine:
        if self._backlog:
            return self._backlog.pop(0)
        if not self._follow or self._closed.is_set():
            raise StopIteration
        line = self._queue.get()
        if line is None:
            raise StopIteration
        return line


def _ago(**delta: float) -> datetime:
    return FIXED_NOW - timedelta(**delta)


def _demo_servers() -> list[ServerRow]:
    def options(xsi: str, item: str, project: str) -> dict[str, Any]:
        return {"xsiType": xsi, "itemId": item, "projectId": project, "dockerImage": NOTEBOOK_IMAGE}

    return [
        ServerRow(
            user="alice", server="", state="ready", started=_ago(hours=2), last_activity=_ago(minutes=3),
            user_options=options("xnat:projectData", "P001", "P001"),
            xsi_type="xnat:projectData", item_id="P001", project_id="P001",
            service_name="jupyter-alice", service_id="svc-alice", task_state="running", node="manager-1",
            image=NOTEBOOK_IMAGE, cpu_limit=2.0, mem_limit=4 * GIB,
            stats=ContainerStats(cpu_percent=12.5, mem_bytes=int(1.2 * GIB), mem_limit_bytes=4 * GIB),
        ),
        ServerRow(
            user="alice", server="mri", state="ready", started=_ago(minutes=40), last_activity=_ago(minutes=1),
            user_options=options("xnat:mrSessionData", "XNAT_E00042", "P001"),
            xsi_type="xnat:mrSessionData", item_id="XNAT_E00042", project_id="P001",
            service_name="jupyter-alice--mri", service_id="svc-alice-mri", task_state="running", node="worker-1",
            image=NOTEBOOK_IMAGE, cpu_limit=4.0, mem_limit=8 * GIB,
            stats=ContainerStats(unavailable_reason="n/a: task runs on worker-1, whose engine is not reachable"),
        ),
        ServerRow(
            user="bob", server="analysis", state="pending spawn", started=None, last_activity=_ago(seconds=20),
            user_options=options("xnat:subjectData", "XNAT_S00007", "P002"),
            xsi_type="xnat:subjectData", item_id="XNAT_S00007", project_id="P002",
            service_name="jupyter-bob--analysis", service_id="svc-bob-analysis", task_state="preparing",
            node="manager-1", image=NOTEBOOK_IMAGE, cpu_limit=1.0, mem_limit=2 * GIB,
        ),
        ServerRow(
            user="carol", server="", state="failed", started=None, last_activity=_ago(minutes=12),
            user_options=options("xnat:projectData", "P003", "P003"),
            xsi_type="xnat:projectData", item_id="P003", project_id="P003",
            service_name="jupyter-carol", service_id="svc-carol", task_state="rejected",
            task_error='invalid mount config for type "bind": bind source path does not exist: /data/xnat/archive/P003',
            node="manager-1", image=NOTEBOOK_IMAGE, cpu_limit=1.0, mem_limit=2 * GIB,
        ),
        ServerRow(
            user="dave", server="", state="ready", started=_ago(days=1, hours=3), last_activity=_ago(hours=5),
            user_options=options("xnat:projectData", "P002", "P002"),
            xsi_type="xnat:projectData", item_id="P002", project_id="P002",
            service_name="jupyter-dave", service_id="svc-dave", task_state="running", node="manager-1",
            image=NOTEBOOK_IMAGE, cpu_limit=2.0, mem_limit=4 * GIB,
            stats=ContainerStats(cpu_percent=0.4, mem_bytes=310 * 1024**2, mem_limit_bytes=4 * GIB),
        ),
    ]


class FakeBackend:
    """Implements `console.backend.base.Backend` in memory."""

    def __init__(self, *, read_only: bool = False, users: int = 7, restart_step_delay: float = 0.0) -> None:
        self.read_only = read_only
        self.now = FIXED_NOW
        self.user_count = users
        self.restart_step_delay = restart_step_delay
        self.faults: dict[str, str] = {}
        self.actions: list[ActionResult] = []  # what a live backend would write to the audit log
        self._servers: dict[str, ServerRow] = {row.key: row for row in _demo_servers()}
        self._events: list[DockerEvent] = [
            DockerEvent(_ago(minutes=12), "service", "update", "jupyter-carol"),
            DockerEvent(_ago(minutes=5), "container", "start", "jupyter-alice--mri.1.k3j2h1"),
            DockerEvent(_ago(minutes=1), "service", "create", "jupyter-bob--analysis"),
        ]
        self._streams: dict[str, list[FakeLogStream]] = {}
        self.closed = False
        self.hub_network_checks = 0
        # deploy(): None succeeds; a reason makes it fail there, as a missing secret does on a live engine.
        self.deploy_failure: str | None = None
        # pull_images(): the images each node holds already, and nodes whose pulls fail with a reason.
        self.node_images: dict[str, set[str]] = {"manager-1": {NOTEBOOK_IMAGE}, "worker-1": set()}
        self.pull_failures: dict[str, str] = {}

    async def aclose(self) -> None:
        self.closed = True

    # -- test controls -------------------------------------------------------------------------
    def clock(self) -> datetime:
        return self.now

    def fail(self, part: str, reason: str = "connection refused") -> None:
        self.faults[part] = reason
        if part == "engine":  # a dead engine breaks every open log stream
            for streams in self._streams.values():
                for stream in streams:
                    stream.close()

    def heal(self, part: str) -> None:
        self.faults.pop(part, None)

    def add_event(self, type_: str, action: str, actor: str) -> None:
        # Each event a second after the last one, as a `since` filter needs strictly newer times.
        when = max(self.now, max((e.time for e in self._events), default=self.now) + timedelta(seconds=1))
        self._events.append(DockerEvent(when, type_, action, actor))

    def set_server(self, row: ServerRow) -> None:
        self._servers[row.key] = row

    def emit_log(self, service: str, text: str) -> None:
        for stream in self._streams.get(service, []):
            stream.push(LogLine(task=f"{service}.1.abc123@manager-1", text=text, timestamp=self.now))

    def _check(self, part: str) -> None:
        if part in self.faults:
            raise FakeUnreachable(self.faults[part])

    def _refuse_if_read_only(self, action: str, target: str) -> ActionResult | None:
        if self.read_only:
            result = ActionResult(action, target, Outcome.REFUSED, READ_ONLY)
            self.actions.append(result)
            return result
        return None

    # -- Docker ------------------------------------------------------------------------------
    def docker_health(self) -> list[ComponentHealth]:
        if "engine" in self.faults:
            reason = self.faults["engine"]
            return [
                ComponentHealth("engine", Health.DOWN, reason),
                ComponentHealth("swarm", Health.UNKNOWN, "engine unreachable"),
            ]
        return [
            ComponentHealth("engine", Health.OK, "Docker 20.10.24, API 1.41"),
            ComponentHealth("swarm", Health.OK, "2 nodes, 1 manager"),
        ]

    def resolve_service(self, target: str) -> str:
        """As the live backend: `hub`, a service name, or USER[/SERVER]; LookupError when nothing matches."""
        self._check("engine")
        if target in ("hub", "jupyterhub"):
            return HUB_SERVICE
        names = {s.name for s in self.services()}
        if target in names:
            return target
        user, _, server = target.partition("/")
        name = f"jupyter-{user}--{server}" if server else f"jupyter-{user}"
        if name in names:
            return name
        raise LookupError(f"no service for {target!r} (not a service name, nor a user's notebook service)")

    def nodes(self) -> list[NodeInfo]:
        self._check("engine")
        return [
            NodeInfo("n1", "manager-1", "manager", "active", "ready", leader=True, nano_cpus=8 * 10**9,
                     memory_bytes=32 * GIB, address="10.0.0.1"),
            NodeInfo("n2", "worker-1", "worker", "active", "ready", nano_cpus=16 * 10**9,
                     memory_bytes=64 * GIB, address="10.0.0.2", labels={"gpu": "true"}),
        ]

    def services(self) -> list[ServiceInfo]:
        self._check("engine")
        stack = [
            ServiceInfo("svc-hub", HUB_SERVICE, "xnat-jupyterhub/hub:dev", "replicated", 1, 1,
                        _ago(hours=6), stack=STACK),
        ]
        notebooks = [
            ServiceInfo(
                row.service_id, row.service_name, row.image, "replicated",
                1 if row.task_state == "running" else 0, 1,
                row.started or row.last_activity, notebook_user=row.user, notebook_server=row.server,
                cpu_limit=row.cpu_limit, mem_limit=row.mem_limit,
            )
            for row in sorted(self._servers.values(), key=lambda r: r.key)
            if row.service_name
        ]
        return stack + notebooks

    def tasks(self, service: str) -> list[TaskInfo]:
        self._check("engine")
        if service == HUB_SERVICE:
            return [TaskInfo("t-hub-1", "svc-hub", 1, "n1", "manager-1", "running", "running", "started", "",
                             _ago(hours=6), "c0ffee")]
        for row in self._servers.values():
            if row.service_name == service:
                tasks = [TaskInfo(f"t-{row.service_id}-1", row.service_id, 1, "n1", row.node, row.task_state,
                                  "running", row.task_state, row.task_error, row.last_activity)]
                if row.task_state == "rejected":
                    tasks.append(TaskInfo(f"t-{row.service_id}-0", row.service_id, 1, "n1", row.node, "rejected",
                                          "shutdown", "rejected", row.task_error, _ago(minutes=13)))
                return tasks
        return []

    def events(self, since: datetime | None = None, until: datetime | None = None) -> list[DockerEvent]:
        self._check("engine")
        return [
            e for e in self._events if (since is None or e.time > since) and (until is None or e.time <= until)
        ]

    def container_stats(self, task: TaskInfo) -> ContainerStats:
        for row in self._servers.values():
            if row.service_id == task.service_id and row.stats:
                return row.stats
        return ContainerStats(unavailable_reason="n/a: no running container")

    def service_logs(
        self,
        service: str,
        *,
        follow: bool = False,
        since: datetime | None = None,
        tail: int | None = None,
        timestamps: bool = False,
    ) -> FakeLogStream:
        self._check("engine")
        lines = [
            LogLine(
                task=f"{service}.1.abc123@manager-1",
                text=f"[I {(_ago(minutes=30 - i)):%H:%M:%S}] request {i} GET /user/alice/api/status 200",
                timestamp=_ago(minutes=30 - i),
            )
            for i in range(30)
        ]
        if since is not None:
            lines = [line for line in lines if line.timestamp and line.timestamp >= since]
        if tail is not None:
            lines = lines[-tail:] if tail else []
        stream = FakeLogStream(lines, follow)
        self._streams.setdefault(service, []).append(stream)
        return stream

    def inspect_service(self, service: str) -> dict[str, Any]:
        self._check("engine")
        env = ["JUPYTERHUB_API_TOKEN=<redacted>"]
        return {"Spec": {"Name": service, "TaskTemplate": {"ContainerSpec": {"Env": env}}}}

    def deploy(self, progress: Progress | None = None) -> ActionResult:
        if refused := self._refuse_if_read_only("deploy", STACK):
            return refused
        say = progress or (lambda line: None)
        self._check("engine")
        say("check: stack file docker-stack.yml ... ok")
        if self.deploy_failure:
            return self._record(ActionResult("deploy", STACK, Outcome.FAILED, self.deploy_failure))
        say("check: secrets xnat_jupyterhub_xnat_service_token, xnat_jupyterhub_console_token ... ok")
        say("check: network jupyterhub-network ... ok")
        say("check: images xnat-jupyterhub/hub:dev, xnat-jupyterhub/singleuser:dev ... ok")
        say(f"docker stack deploy -c docker-stack.yml {STACK}")
        say(f"converged: {HUB_SERVICE} 1/1")
        return self._record(ActionResult("deploy", STACK, Outcome.OK, f"converged: {HUB_SERVICE} 1/1"))

    def stop_stack(self, progress: Progress | None = None) -> ActionResult:
        if refused := self._refuse_if_read_only("stop", STACK):
            return refused
        self._check("engine")
        servers = tuple(f"server {row.key}" for row in self._servers.values())
        removed = (*servers, f"service {HUB_SERVICE}", "network jupyterhub-network")
        self._servers.clear()
        return self._record(ActionResult("stop", STACK, Outcome.OK, f"removed {len(removed)} resources", removed))

    def pull_plan(self, images: list[str]) -> PullPlan:
        self._check("engine")
        wanted = images or sorted({s.image for s in self.services() if s.notebook_user})
        nodes = [n.hostname for n in self.nodes() if n.state == "ready" and n.availability == "active"]
        return PullPlan(tuple(dict.fromkeys(wanted)), tuple(nodes))

    def pull_images(self, images: list[str], progress: PullProgress | None = None) -> ActionResult:
        """As the live pull: a node holding the image says present, the others pull it (0, 50, 100 %)."""
        if refused := self._refuse_if_read_only("pull", ", ".join(images) or "the launch images"):
            return refused
        say = progress or (lambda update: None)
        plan = self.pull_plan(images)
        if not plan.images:
            return self._record(ActionResult("pull", "the launch images", Outcome.REFUSED, "no image to pull"))
        problems = []
        for node in plan.nodes:
            held = self.node_images.setdefault(node, set())
            for image in plan.images:
                if image in held:
                    say(PullUpdate(image, node, "present"))
                    continue
                for percent in (None, 0.0, 50.0, 100.0):
                    say(PullUpdate(image, node, "pulling", percent, "(3 layers)" if percent is not None else ""))
                if node in self.pull_failures:
                    problems.append(PullUpdate(image, node, "failed", detail=self.pull_failures[node]))
                    say(problems[-1])
                else:
                    held.add(image)
                    say(PullUpdate(image, node, "pulled"))
        holders = tuple(ImageHolders(i, tuple(n for n in plan.nodes if i in self.node_images[n])) for i in plan.images)
        target = ", ".join(plan.images)
        if problems:
            detail = "; ".join(p.describe() for p in problems)
            return self._record(ActionResult("pull", target, Outcome.FAILED, detail, holders=holders))
        detail = f"{len(plan.images)} image(s) on {len(plan.nodes)} node(s): {', '.join(plan.nodes)}"
        return self._record(ActionResult("pull", target, Outcome.OK, detail, holders=holders))

    # -- Hub ---------------------------------------------------------------------------------
    async def hub_info(self) -> HubInfo:
        self._check("hub")
        ready = sum(r.state == "ready" for r in self._servers.values())
        return HubInfo(version="5.5.1", health=Health.OK, authenticator="XnatAuthenticator",
                       spawner="XnatSwarmSpawner", proxy_routes=ready + 1,
                       token_scopes=("admin:users", "admin:servers", "read:hub"))

    async def hub_servers(
        self, *, include_stopped: bool = False, stats: bool = True, hub_max_age: float = 0.0
    ) -> list[ServerRow]:
        self._check("hub")
        rows = sorted(self._servers.values(), key=lambda r: r.key)
        return [r for r in rows if include_stopped or r.state != "stopped"]

    async def overview(self, *, hub_max_age: float = 0.0) -> Overview:
        components = self.docker_health()
        nodes: list[NodeInfo] = []
        failed = 0
        if "engine" not in self.faults:
            nodes = self.nodes()
            failed = sum(r.task_state in ("failed", "rejected") for r in self._servers.values())
        users = running = pending = 0
        version = ""
        try:
            info = await self.hub_info()
            rows = await self.hub_servers()
        except FakeUnreachable as exc:
            components.append(ComponentHealth("hub", Health.DOWN, str(exc)))
        else:
            version = info.version
            components.append(ComponentHealth("hub", info.health, f"JupyterHub {info.version}"))
            users = self.user_count
            running = sum(r.state == "ready" for r in rows)
            pending = sum(r.state.startswith("pending") for r in rows)
        return Overview(tuple(components), users, running, pending, failed, len(nodes),
                        sum(n.role == "manager" for n in nodes), version)

    async def stop_server(self, user: str, server: str) -> ActionResult:
        target = f"{user}/{server}" if server else user
        if refused := self._refuse_if_read_only("stop", target):
            return refused
        self._check("hub")
        row = self._servers.get(target)
        if row is None:
            return self._record(ActionResult("stop", target, outcome=Outcome.FAILED, detail="no such server"))
        self._servers[target] = replace(row, state="stopped", task_state="", node="", stats=None,
                                        service_name="", service_id="")
        return self._record(ActionResult("stop", target, outcome=Outcome.OK, detail="stopped"))

    async def delete_server(self, user: str, server: str) -> ActionResult:
        target = f"{user}/{server}" if server else user
        if refused := self._refuse_if_read_only("delete", target):
            return refused
        self._check("hub")
        if not server:
            return self._record(ActionResult("delete", target, Outcome.FAILED, "only named servers can be deleted"))
        if self._servers.pop(target, None) is None:
            return self._record(ActionResult("delete", target, outcome=Outcome.FAILED, detail="no such server"))
        return self._record(ActionResult("delete", target, outcome=Outcome.OK, detail="deleted"))

    async def restart_server(self, user: str, server: str, progress: Progress | None = None) -> ActionResult:
        target = f"{user}/{server}" if server else user
        if refused := self._refuse_if_read_only("restart", target):
            return refused
        self._check("hub")
        row = self._servers.get(target)
        if row is None:
            return self._record(ActionResult("restart", target, Outcome.FAILED, "no such server"))
        steps = [
            f"stopping {target}",
            "stopped",
            f"starting with the same user_options ({row.xsi_type} {row.item_id})",
            "Service created, waiting for its task",
            "Task preparing on manager-1",
            "Task running",
            f"Server ready at /jupyterhub/user/{user}/{server}".rstrip("/"),
        ]
        for step in steps:
            if self.restart_step_delay:
                await asyncio.sleep(self.restart_step_delay)
            if progress is not None:
                progress(step)
        self._servers[target] = replace(row, state="ready", task_state="running", task_error="",
                                        started=self.now, last_activity=self.now)
        return self._record(ActionResult("restart", target, Outcome.OK, "ready"))

    def _record(self, result: ActionResult) -> ActionResult:
        self.actions.append(result)
        return result

    # -- XNAT --------------------------------------------------------------------------------
    async def xnat_check(self) -> AsyncIterator[CheckStep]:
        if "xnat" in self.faults:
            yield CheckStep("DNS xnat.example.org", CheckStatus.PASS, "10.0.0.5")
            yield CheckStep("TCP 10.0.0.5:443", CheckStatus.FAIL, self.faults["xnat"],
                            "Is XNAT running? Check JH_XNAT_URL and the firewall between this node and XNAT.")
            later = ("TLS", "HTTP", "service account login", "JupyterHub plugin", "hub URL and token", "path roots")
            for name in later:
                yield CheckStep(name, CheckStatus.SKIP, "an earlier step failed")
            return
        yield CheckStep("DNS xnat.example.org", CheckStatus.PASS, "10.0.0.5")
        yield CheckStep("TCP 10.0.0.5:443", CheckStatus.PASS, "connected in 2 ms")
        yield CheckStep("TLS", CheckStatus.PASS, "certificate verified, expires in 83 days")
        yield CheckStep("HTTP", CheckStatus.PASS, "GET / -> 200")
        yield CheckStep("service account login", CheckStatus.PASS, "jupyterhub holds the JupyterHub role")
        yield CheckStep("JupyterHub plugin", CheckStatus.PASS, "/xapi/jupyterhub/preferences -> 200")
        yield CheckStep("hub URL and token", CheckStatus.FAIL,
                        "XNAT's hub URL http://jupyterhub:8000/jupyterhub answers, "
                        "but the hub rejects XNAT's token (403)",
                        "Set the token in XNAT (Administer > Plugin Settings > JupyterHub) to the hub's "
                        "xnat_jupyterhub_xnat_service_token secret.")
        yield CheckStep("path roots", CheckStatus.WARN, "/data/xnat/archive exists; /data/xnat/build is missing",
                        "Create /data/xnat/build on every node, or fix the path translation roots.")

    async def xnat_check_in_hub_network(self) -> list[CheckStep]:
        self.hub_network_checks += 1
        if "engine" in self.faults:
            return [CheckStep("from the hub's network", CheckStatus.FAIL, self.faults["engine"],
                              "Is the stack deployed? The check clones the hub service to run inside its network.")]
        # As the live one does, through a one-off service whose coming and going Docker reports.
        service = f"{CHECK_SERVICE_PREFIX}{self.hub_network_checks:08x}"
        self.add_event("service", "create", service)
        self.add_event("service", "remove", service)
        return [
            CheckStep("DNS xnat (hub network)", CheckStatus.PASS, "10.0.1.7"),
            CheckStep("HTTP (hub network)", CheckStatus.PASS, "GET http://xnat:8080/ -> 200"),
            CheckStep("service account login (hub network)", CheckStatus.PASS, "jupyterhub holds the JupyterHub role"),
        ]
