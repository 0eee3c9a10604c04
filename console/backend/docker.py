"""The Docker side of the console: a thin, blocking wrapper over the docker SDK that returns our models.

The engine is chosen in `console.backend.docker_endpoint`; a service's log stream is
`console.backend.docker_logs.LogStream`. The client is made lazily and dropped after a connection failure, so a
restarted engine is picked up again. `health()` never raises; every other call raises `DockerUnavailable` with a
message fit for the screen.

Container-level calls (stats) reach only containers on an engine we can talk to: the one we are connected to,
or one named for its node in `node_engines`. Elsewhere stats are "n/a" with the reason.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from console.backend import docker_sdk
from console.backend.docker_endpoint import (
    DockerUnavailable,
    Endpoint,
    _explain,
    _is_ssh_error,
    context_endpoint,
    current_context_name,
    docker_config_dir,
    make_client,
    resolve_endpoint,
)
from console.backend.docker_logs import LogStream
from console.backend.models import (
    REDACTED,
    ComponentHealth,
    ContainerStats,
    DockerEvent,
    Health,
    NodeInfo,
    ServiceInfo,
    TaskInfo,
)
from xjh_contract import (
    NOTEBOOK_PREFIX,
)

__all__ = [
    "REDACTED", "DockerAccess", "DockerUnavailable", "Endpoint", "LogStream", "context_endpoint",
    "current_context_name", "docker_config_dir", "is_secret_name", "parse_docker_time", "redact_env",
    "redact_spec", "resolve_endpoint",
]  # fmt: skip
from console.backend.docker_models import (
    _node,
    _service,
    is_secret_name,
    parse_docker_time,
    redact_env,
    redact_spec,
)

if TYPE_CHECKING:  # the SDK is imported by make_client, when the first client is made (docker_sdk)
    import docker

# -- the wrapper ---------------------------------------------------------------------------------


def _not_found() -> type[Exception]:
    """The SDK's NotFound, for an `except` around a call (the clause is evaluated only when the call raised)."""
    docker_sdk.load()  # loaded already unless the call failed before making a client
    import docker.errors

    return docker.errors.NotFound


class DockerAccess:
    """Blocking Docker calls, returning the console's models. Call from thread workers."""

    def __init__(
        self,
        host: str | None = None,
        *,
        timeout: float = 10.0,
        stack: str = "xnat-jupyterhub",
        network: str | None = None,
        node_engines: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
    ):
        self.timeout = timeout
        self.stack = stack
        # Notebook services count as this deployment's only on its network: other hubs on the same swarm
        # use the same `jupyter-` names and labels.
        self.network = network
        self._host = host
        self._env = env
        self.node_engines = dict(node_engines or {})
        self._client: docker.DockerClient | None = None
        self._node_clients: dict[str, docker.DockerClient] = {}
        self._lock = threading.Lock()
        self._endpoint: Endpoint | None = None
        self._local_node_id: str | None = None
        self._node_names: dict[str, str] = {}
        self._cpu_samples: dict[str, tuple[int, int]] = {}  # container → (cpu total, system) of the last sample

    # connection ----------------------------------------------------------------------------

    @property
    def endpoint(self) -> Endpoint:
        if self._endpoint is None:
            self._endpoint = resolve_endpoint(self._host, self._env)
        return self._endpoint

    def client(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                self._client = self._connect(self.endpoint)
            return self._client

    def _connect(self, endpoint: Endpoint) -> docker.DockerClient:
        try:
            return make_client(endpoint, self.timeout)
        except DockerUnavailable:
            raise
        except Exception as e:
            import docker.errors  # make_client has loaded the SDK
            import requests.exceptions

            if isinstance(e, docker.errors.DockerException):
                cause = e.__context__ if isinstance(e.__context__, Exception) else e
                raise DockerUnavailable(_explain(cause, endpoint)) from None
            if isinstance(e, (OSError, requests.exceptions.RequestException)):
                raise DockerUnavailable(_explain(e, endpoint)) from None
            if isinstance(e, ValueError):  # the SDK's word on an address it cannot parse
                raise DockerUnavailable(f"{endpoint.describe()}: {str(e)[:160]}") from None
            if not _is_ssh_error(e):
                raise
            raise DockerUnavailable(f"ssh to {endpoint.describe()} failed: {str(e)[:200]}") from None

    def _drop(self) -> None:
        with self._lock:
            if self._client is not None:
                with contextlib.suppress(Exception):
                    self._client.close()
            self._client = None
            self._local_node_id = None

    def close(self) -> None:
        self._drop()
        for c in self._node_clients.values():
            c.close()
        self._node_clients.clear()

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one SDK call, turning every failure into DockerUnavailable (and reconnecting next time)."""
        api = self.client().api
        import docker.errors  # loaded by client()
        import requests.exceptions

        try:
            return fn(api, *args, **kwargs)
        except docker.errors.NotFound:
            raise
        except docker.errors.APIError as e:
            raise DockerUnavailable(_explain(e, self.endpoint)) from None
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as e:
            self._drop()
            raise DockerUnavailable(_explain(e, self.endpoint)) from None
        except Exception as e:
            if not _is_ssh_error(e):
                raise
            self._drop()
            raise DockerUnavailable(f"ssh to {self.endpoint.describe()} failed: {str(e)[:200]}") from None

    # health --------------------------------------------------------------------------------

    def health(self) -> list[ComponentHealth]:
        """Engine and swarm. Never raises."""
        return self.health_and_nodes()[0]

    def health_and_nodes(self) -> tuple[list[ComponentHealth], list[NodeInfo]]:
        """Engine and swarm health, with the node list the swarm's health was judged from (empty when it could
        not be read), so a refresh that wants both asks the manager once. Never raises."""
        try:
            version = self._call(lambda api: api.version())
            info = self._call(lambda api: api.info())
        except Exception as e:  # anything at all: health is where a broken engine is reported, not raised
            return [
                ComponentHealth("engine", Health.DOWN, str(e) or type(e).__name__),
                ComponentHealth("swarm", Health.UNKNOWN, "engine not reachable"),
            ], []
        engine = ComponentHealth(
            "engine",
            Health.OK,
            f"Docker {version.get('Version', '?')}, API {version.get('ApiVersion', '?')} at {self.endpoint.host}",
        )
        swarm = info.get("Swarm") or {}
        state = swarm.get("LocalNodeState", "inactive")
        if state != "active":
            return [engine, ComponentHealth("swarm", Health.DOWN, f"this engine's swarm state is {state!r}")], []
        if not swarm.get("ControlAvailable"):
            return [engine, ComponentHealth("swarm", Health.DEGRADED, "this engine is a worker, not a manager")], []
        try:
            nodes = self.nodes()
        except Exception as e:
            return [engine, ComponentHealth("swarm", Health.DEGRADED, str(e) or type(e).__name__)], []
        managers = [n for n in nodes if n.role == "manager"]
        down = [n for n in nodes if n.state != "ready"]
        detail = f"{len(nodes)} node(s), {len(managers)} manager(s)"
        if down:
            names = ", ".join(n.hostname or n.id[:12] for n in down)
            return [engine, ComponentHealth("swarm", Health.DEGRADED, f"{detail}; not ready: {names}")], nodes
        return [engine, ComponentHealth("swarm", Health.OK, detail)], nodes

    # nodes, services, tasks ----------------------------------------------------------------

    def local_node_id(self) -> str:
        if self._local_node_id is None:
            info = self._call(lambda api: api.info())
            self._local_node_id = (info.get("Swarm") or {}).get("NodeID", "")
        return self._local_node_id

    def nodes(self) -> list[NodeInfo]:
        raw = self._call(lambda api: api.nodes())
        nodes = [_node(n) for n in raw]
        self._node_names = {n.id: n.hostname for n in nodes}
        return nodes

    def node_name(self, node_id: str) -> str:
        if node_id and node_id not in self._node_names:
            with contextlib.suppress(DockerUnavailable):
                self.nodes()
        return self._node_names.get(node_id, node_id[:12])

    def services(self, *, all_services: bool = False) -> list[ServiceInfo]:
        """The stack's services and every notebook service (or, with `all_services`, everything)."""
        raw = self._call(lambda api: api.services(status=True))
        network_id = self._our_network_id()
        out = []
        for s in raw:
            info = _service(s)
            notebook = bool(info.notebook_user) or info.name.startswith(NOTEBOOK_PREFIX)
            ours = network_id is None or network_id in info.networks
            if all_services or info.stack == self.stack or (notebook and ours):
                out.append(info)
        return sorted(out, key=lambda s: s.name)

    def _our_network_id(self) -> str | None:
        """The id of the deployment's network, or None (no filtering) when unset or not there."""
        if not self.network:
            return None
        # Not cached: a redeploy recreates the network under a new id.
        found = self._call(lambda api: api.networks(names=[self.network]))
        exact = [n["Id"] for n in found if n.get("Name") == self.network]
        return exact[0] if exact else None

    def tasks(self, service: str | None = None, *, desired_running: bool = False) -> list[TaskInfo]:
        filters: dict[str, Any] = {}
        if service:
            filters["service"] = service
        if desired_running:
            filters["desired-state"] = "running"
        try:
            raw = self._call(lambda api: api.tasks(filters=filters))
        except _not_found():
            raise DockerUnavailable(f"no service {service!r}") from None
        if service:
            # The engine's "service" filter also matches by name prefix; keep this service's tasks only.
            ids = {t.get("ServiceID") for t in raw}
            if len(ids) > 1:
                sid = self.inspect_service(service, redact=False)["ID"]
                raw = [t for t in raw if t.get("ServiceID") == sid]
        tasks = [self._task(t) for t in raw]
        return sorted(tasks, key=lambda t: (t.slot or 0, -(t.timestamp.timestamp() if t.timestamp else 0)))

    def _task(self, t: dict[str, Any]) -> TaskInfo:
        status = t.get("Status") or {}
        container = status.get("ContainerStatus") or {}
        node_id = t.get("NodeID", "")
        return TaskInfo(
            id=t.get("ID", ""),
            service_id=t.get("ServiceID", ""),
            slot=t.get("Slot"),
            node_id=node_id,
            node_name=self.node_name(node_id) if node_id else "",
            state=status.get("State", ""),
            desired_state=t.get("DesiredState", ""),
            message=status.get("Message", ""),
            error=status.get("Err", ""),
            timestamp=parse_docker_time(status.get("Timestamp")),
            container_id=container.get("ContainerID", ""),
        )

    def inspect_service(self, service: str, *, redact: bool = True) -> dict[str, Any]:
        """`docker service inspect`, with secret env values and `--*token=` arguments redacted."""
        try:
            data = self._call(lambda api: api.inspect_service(service))
        except _not_found():
            raise DockerUnavailable(f"no service {service!r}") from None
        if redact:
            for key in ("Spec", "PreviousSpec"):
                if isinstance(data.get(key), dict):
                    redact_spec(data[key])
        inspected: dict[str, Any] = data
        return inspected

    def events(
        self, since: datetime | None = None, until: datetime | None = None, limit: int = 200
    ) -> list[DockerEvent]:
        """Recent events in [since, until] (default: the last 15 minutes up to now). Does not block."""
        now = datetime.now(UTC)
        since = since or datetime.fromtimestamp(now.timestamp() - 900, UTC)
        until = until or now
        filters = {"type": ["service", "node", "container", "network", "secret", "config"]}

        def read(api: Any) -> list[dict[str, Any]]:
            # A fractional `until` (the engine takes seconds.nanoseconds): a whole second in the future would
            # make the engine hold the answer until then.
            stream = api.events(
                since=f"{since.timestamp():.6f}", until=f"{until.timestamp():.6f}", decode=True, filters=filters
            )
            try:
                return list(stream)
            finally:
                stream.close()

        raw = self._call(read)
        out = []
        for e in raw[-limit:]:
            actor = e.get("Actor") or {}
            attributes = actor.get("Attributes") or {}
            when = e.get("timeNano")
            out.append(
                DockerEvent(
                    time=datetime.fromtimestamp(when / 1e9 if when else e.get("time", 0), UTC),
                    type=e.get("Type", ""),
                    action=e.get("Action", ""),
                    actor=attributes.get("name")
                    or attributes.get("com.docker.swarm.service.name")
                    or actor.get("ID", "")[:12],
                )
            )
        return out

    # stats ---------------------------------------------------------------------------------

    def _engine_for(self, task: TaskInfo) -> docker.APIClient | None:
        try:
            if task.node_id == self.local_node_id():
                return self.client().api
        except DockerUnavailable:
            return None
        url = self.node_engines.get(task.node_id) or self.node_engines.get(task.node_name)
        if not url:
            return None
        if url not in self._node_clients:
            try:
                self._node_clients[url] = self._connect(Endpoint(url, source="node_engines"))
            except DockerUnavailable:
                return None
        return self._node_clients[url].api

    def container_stats(self, task: TaskInfo) -> ContainerStats:
        """One-shot stats of the task's container; CPU % from our previous sample (or the engine's precpu)."""
        if task.state != "running" or not task.container_id:
            return ContainerStats(unavailable_reason=f"n/a: task is {task.state or 'not running'}")
        api = self._engine_for(task)
        if api is None:
            where = task.node_name or task.node_id[:12]
            return ContainerStats(unavailable_reason=f"n/a: task runs on {where}, whose engine is not reachable")
        import docker.errors  # loaded with the client `api` belongs to
        import requests.exceptions

        try:
            raw = api.stats(task.container_id, stream=False, one_shot=True)
        except docker.errors.NotFound:
            return ContainerStats(unavailable_reason="n/a: container is gone")
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as e:
            return ContainerStats(unavailable_reason=f"n/a: {str(e)[:120]}")
        return self._compute_stats(task.container_id, raw)

    def _compute_stats(self, container_id: str, raw: dict[str, Any]) -> ContainerStats:
        cpu = raw.get("cpu_stats") or {}
        total = (cpu.get("cpu_usage") or {}).get("total_usage")
        system = cpu.get("system_cpu_usage")
        cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
        previous = self._cpu_samples.get(container_id)
        pre = raw.get("precpu_stats") or {}
        pre_total = (pre.get("cpu_usage") or {}).get("total_usage")
        pre_system = pre.get("system_cpu_usage")
        if pre_total is not None and pre_system:
            previous = (pre_total, pre_system)
        cpu_percent = None
        if total is not None and system and previous:
            d_cpu, d_sys = total - previous[0], system - previous[1]
            if d_sys > 0 and d_cpu >= 0:
                cpu_percent = round(d_cpu / d_sys * cpus * 100.0, 1)
        if total is not None and system:
            self._cpu_samples[container_id] = (total, system)
        mem = raw.get("memory_stats") or {}
        usage = mem.get("usage")
        if usage is not None:
            # As the docker CLI: page cache is not the container's own memory.
            stats = mem.get("stats") or {}
            usage -= stats.get("total_inactive_file", stats.get("inactive_file", 0)) or 0
        return ContainerStats(cpu_percent=cpu_percent, mem_bytes=usage, mem_limit_bytes=mem.get("limit"))

    # logs ----------------------------------------------------------------------------------

    def service_logs(
        self,
        service: str,
        *,
        follow: bool = False,
        since: datetime | None = None,
        tail: int | None = None,
        timestamps: bool = False,
    ) -> LogStream:
        """Every task's lines, merged by the manager, each with its task prefix. Close the stream to stop."""
        spec = self.inspect_service(service, redact=False)
        params = {
            "details": True,  # the engine adds the task/node ids the prefix is made from, as the CLI does
            "follow": follow,
            "stdout": True,
            "stderr": True,
            "timestamps": timestamps,
            "tail": "all" if tail is None else str(max(0, tail)),
        }
        if since is not None:
            params["since"] = f"{since.timestamp():.9f}"

        def open_stream(api: Any) -> tuple[Any, Any]:
            url = api._url("/services/{0}/logs", spec["ID"])
            response = api._get(url, params=params, stream=True)
            # The raw socket (or SSH channel) under the response: shutting it down is what wakes a reader
            # blocked on a silent follow; closing the response alone waits for that reader.
            return response, api._get_raw_response_socket(response)

        response, sock = self._call(open_stream)
        tty = bool(((spec.get("Spec") or {}).get("TaskTemplate") or {}).get("ContainerSpec", {}).get("TTY"))
        name = (spec.get("Spec") or {}).get("Name", service)
        return LogStream(self, response, name, spec["ID"], tty=tty, timestamps=timestamps, sock=sock)
