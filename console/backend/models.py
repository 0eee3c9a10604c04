"""Typed models the backend returns and the screens and CLI render.

Every change the backend makes ends in an `ActionResult` whose `outcome` is ok, failed or refused, with the
reason in `detail`: screens and the CLI read the outcome, never the wording of a progress line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

# What stands in for a secret wherever one was scrubbed: service specs, the audit log.
REDACTED = "<redacted>"
# The reason of every change a read-only console refuses.
READ_ONLY = "refused: the console is read-only"


class Health(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ComponentHealth:
    """Health of one part of the deployment (engine, swarm, hub, proxy, XNAT)."""

    name: str
    health: Health
    detail: str = ""  # human-readable, never holds a secret


@dataclass(frozen=True)
class NodeInfo:
    id: str
    hostname: str
    role: str  # manager | worker
    availability: str  # active | pause | drain
    state: str  # ready | down | unknown
    leader: bool = False
    nano_cpus: int = 0
    memory_bytes: int = 0
    labels: dict[str, str] = field(default_factory=dict[str, Any])
    address: str = ""


@dataclass(frozen=True)
class TaskInfo:
    id: str
    service_id: str
    slot: int | None
    node_id: str
    node_name: str
    state: str  # Docker task state: running, rejected, failed, ...
    desired_state: str
    message: str
    error: str  # Docker's Status.Err, e.g. "invalid mount config ..."
    timestamp: datetime | None
    container_id: str = ""


@dataclass(frozen=True)
class ServiceInfo:
    id: str
    name: str
    image: str
    mode: str  # replicated | global
    replicas_running: int
    replicas_desired: int
    updated_at: datetime | None
    labels: dict[str, str] = field(default_factory=dict[str, Any])
    stack: str = ""  # com.docker.stack.namespace
    notebook_user: str = ""  # set on services the hub spawned
    notebook_server: str = ""
    cpu_limit: float | None = None  # CPUs
    mem_limit: int | None = None  # bytes
    networks: tuple[str, ...] = ()  # network ids the tasks attach to


@dataclass(frozen=True)
class ContainerStats:
    """One-shot stats computed by the console, or the reason there are none."""

    cpu_percent: float | None = None
    mem_bytes: int | None = None
    mem_limit_bytes: int | None = None
    unavailable_reason: str = ""  # e.g. "n/a: task runs on node2, whose engine is not reachable"


@dataclass(frozen=True)
class ServerRow:
    """One hub server (default or named) joined with its swarm service and task."""

    user: str
    server: str  # "" for the default server
    state: str  # ready | pending spawn | pending stop | failed | stopped
    started: datetime | None
    last_activity: datetime | None
    url: str = ""
    progress_url: str = ""
    user_options: dict[str, Any] = field(default_factory=dict[str, Any])
    # From user_options: the XNAT item it was launched for.
    xsi_type: str = ""
    item_id: str = ""
    project_id: str = ""
    # From the swarm.
    service_name: str = ""
    service_id: str = ""
    task_state: str = ""
    task_error: str = ""
    node: str = ""
    image: str = ""
    cpu_limit: float | None = None
    mem_limit: int | None = None
    stats: ContainerStats | None = None

    @property
    def key(self) -> str:
        """Stable row key: USER or USER/SERVER."""
        return f"{self.user}/{self.server}" if self.server else self.user


@dataclass(frozen=True)
class HubInfo:
    version: str
    health: Health
    authenticator: str = ""
    spawner: str = ""
    proxy_routes: int | None = None
    token_scopes: tuple[str, ...] = ()
    missing_scopes: tuple[str, ...] = ()
    excess_scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class HubIdentity:
    """Who the console's token is (`GET /hub/api/user`) and what it may do."""

    name: str
    kind: str  # user | service
    scopes: tuple[str, ...] = ()
    missing_scopes: tuple[str, ...] = ()  # needed by the console, not held (or held only with a filter)
    excess_scopes: tuple[str, ...] = ()  # held, and broader than the console needs (e.g. admin:users)


@dataclass(frozen=True)
class Overview:
    components: tuple[ComponentHealth, ...]
    users: int
    running_servers: int
    pending_servers: int
    failed_tasks: int
    nodes: int
    managers: int
    hub_version: str = ""


@dataclass(frozen=True)
class DockerEvent:
    time: datetime
    type: str  # service, node, container, ...
    action: str
    actor: str


@dataclass(frozen=True)
class LogLine:
    """One log line of a service, prefixed by the task that wrote it."""

    task: str  # e.g. "jupyter-alice--x.1.abc123@node1"
    text: str
    timestamp: datetime | None = None
    stream: str = "stdout"


class LogStream(Protocol):
    """What `Backend.service_logs` returns: log lines to iterate, and `close()` (safe from another thread) to stop
    a follow."""

    def __iter__(self) -> Iterator[LogLine]: ...

    def __next__(self) -> LogLine: ...

    def close(self) -> None: ...


class CheckStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    SKIP = "skip"


@dataclass(frozen=True)
class CheckStep:
    """One step of the XNAT connectivity check."""

    name: str
    status: CheckStatus
    reason: str = ""
    hint: str = ""


# Where an action reports its progress lines (a screen's log, a terminal); called from the action's thread or task.
Progress = Callable[[str], None]


class Outcome(StrEnum):
    """How a change ended: it was made, it was tried and failed, or it was refused before anything changed."""

    OK = "ok"
    FAILED = "failed"
    REFUSED = "refused"


@dataclass(frozen=True)
class ImageHolders:
    """After an image pull: the nodes that hold one image (hostnames, sorted)."""

    image: str
    nodes: tuple[str, ...]  # as PullUpdate.node names them


@dataclass(frozen=True)
class ActionResult:
    """The outcome of a change (deploy, stop the stack, stop / restart / delete a server, pull images), also
    written to the audit log."""

    action: str
    target: str
    outcome: Outcome
    detail: str = ""  # the reason when failed or refused; what happened when ok
    removed: tuple[str, ...] = ()
    holders: tuple[ImageHolders, ...] = ()  # an image pull's: which nodes hold each image

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


@dataclass(frozen=True)
class PullPlan:
    """What an image pull would do: these images onto these nodes (those that may run notebooks: ready and
    active)."""

    images: tuple[str, ...]
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class PullUpdate:
    """One step of an image pull on one node."""

    image: str
    node: str  # its hostname; "hostname (id)" when another node has the same hostname
    state: str  # present | pulling | pulled | failed | unreachable
    percent: float | None = None
    detail: str = ""

    def describe(self) -> str:
        if self.state == "pulling":
            done = f" {self.percent:.0f}%" if self.percent is not None else ""
            return f"{self.node}: {self.image}: pulling{done} {self.detail}".rstrip()
        tail = f": {self.detail}" if self.detail else ""
        return f"{self.node}: {self.image}: {self.state}{tail}"


# Where an image pull reports each node's steps; called from the pull's worker threads, one at a time.
PullProgress = Callable[[PullUpdate], None]
