"""The interface screens talk to. `console.backend.live.LiveBackend` implements it against Docker, the hub
and XNAT; `console.backend.fake.FakeBackend` implements it in memory for UI tests.

Docker's SDK blocks, so the Docker methods are plain functions that the UI calls from thread workers.
The hub and XNAT methods are coroutines that the UI calls from async workers.
Every change ends in an `ActionResult` (ok, failed or refused, with the reason); progress lines go to the
optional `progress` callback, never into the result's meaning.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Protocol

from console.backend.models import (
    ActionResult,
    CheckStep,
    ComponentHealth,
    ContainerStats,
    DockerEvent,
    HubInfo,
    LogStream,
    NodeInfo,
    Overview,
    Progress,
    PullPlan,
    PullProgress,
    ServerRow,
    ServiceInfo,
    TaskInfo,
)


class Backend(Protocol):
    read_only: bool

    # -- Docker (blocking: call from a thread worker) ------------------------------------------
    def docker_health(self) -> list[ComponentHealth]:
        """Engine and swarm health; never raises, a dead engine is a DOWN component."""

    def nodes(self) -> list[NodeInfo]: ...

    def services(self) -> list[ServiceInfo]:
        """The stack's services and every notebook service the hub spawned."""

    def resolve_service(self, target: str) -> str:
        """The service name for `hub`, a service name, or `USER[/SERVER]`; LookupError if none."""

    def tasks(self, service: str) -> list[TaskInfo]: ...

    def events(self, since: datetime | None = None, until: datetime | None = None) -> list[DockerEvent]: ...

    def container_stats(self, task: TaskInfo) -> ContainerStats: ...

    def service_logs(
        self,
        service: str,
        *,
        follow: bool = False,
        since: datetime | None = None,
        tail: int | None = None,
        timestamps: bool = False,
    ) -> LogStream:
        """Lines of every task of the service, across nodes. With follow, blocks until `close()`d."""

    def inspect_service(self, service: str) -> dict[str, Any]:
        """`docker service inspect`, with env values that hold secrets redacted."""

    def deploy(self, progress: Progress | None = None) -> ActionResult:
        """Pre-flight checks, then `docker stack deploy`, then convergence; each step's line goes to `progress`."""

    def stop_stack(self, progress: Progress | None = None) -> ActionResult: ...

    def pull_plan(self, images: list[str]) -> PullPlan:
        """The images a pull would fetch (`images`, or with none named the images of the notebook services running
        now) and the nodes that may run notebooks (ready and active)."""

    def pull_images(self, images: list[str], progress: PullProgress | None = None) -> ActionResult:
        """Pull onto every node that may run notebooks (none named: as `pull_plan`); each node's steps go to
        `progress`; the result's `holders` say which nodes hold each image."""

    # -- Hub (async) -------------------------------------------------------------------------
    async def hub_info(self) -> HubInfo: ...

    async def hub_servers(
        self, *, include_stopped: bool = False, stats: bool = True, hub_max_age: float = 0.0
    ) -> list[ServerRow]:
        """Every server of every user, with the swarm columns joined in. With `hub_max_age` (seconds), the hub's
        previous answer may be reused that long while the swarm shows no change (the Docker side is always read)."""

    async def overview(self, *, hub_max_age: float = 0.0) -> Overview:
        """Health of every part and the counts; a dead part is DOWN, never an exception. `hub_max_age`: as for
        hub_servers, for the running and pending counts."""

    async def stop_server(self, user: str, server: str) -> ActionResult: ...

    async def delete_server(self, user: str, server: str) -> ActionResult: ...

    async def restart_server(self, user: str, server: str, progress: Progress | None = None) -> ActionResult:
        """Stop, then start with the same user_options; spawn progress messages go to `progress` live."""

    # -- XNAT (async) ------------------------------------------------------------------------
    def xnat_check(self) -> AsyncIterator[CheckStep]:
        """The connectivity check, one step at a time."""

    async def xnat_check_in_hub_network(self) -> list[CheckStep]:
        """The same check, run once from inside the hub's overlay network."""

    async def aclose(self) -> None:
        """Close the hub and XNAT clients."""
