"""The Docker side of the console: a thin, blocking wrapper over the docker SDK that returns our models.

Which engine: an explicit host (flag or config), else `DOCKER_HOST` (with `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`),
else the docker context named by `DOCKER_CONTEXT` or the CLI's current context (`~/.docker/config.json`), read
from `~/.docker/contexts` exactly as the docker CLI stores it, else the local socket. `unix://`, `tcp://` (with
TLS) and `ssh://` (paramiko, reading `~/.ssh/config` and the agent) all work. The API version is
negotiated with the engine.

The client is made lazily and dropped after a connection failure, so a restarted engine is picked up again.
`health()` never raises; every other call raises `DockerUnavailable` with a message fit for the screen.

Container-level calls (stats) reach only containers on an engine we can talk to: the one we are connected to,
or one named for its node in `node_engines`. Elsewhere stats are "n/a" with the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from console.backend.lazy import docker, enable_docker_ssh, requests  # imported on first use, after the first frame
from console.backend.models import (
    REDACTED,
    ComponentHealth,
    ContainerStats,
    DockerEvent,
    Health,
    LogLine,
    NodeInfo,
    ServiceInfo,
    TaskInfo,
)

USER_LABEL = "org.xnat.jupyterhub.user"
SERVER_LABEL = "org.xnat.jupyterhub.server"
STACK_LABEL = "com.docker.stack.namespace"
NOTEBOOK_PREFIX = "jupyter-"

# Env names whose values are secrets. A notebook service's JUPYTERHUB_API_TOKEN sits in plain text in the
# service spec; XNAT_USER/XNAT_PASS are an XNAT alias token and its secret.
_SECRET_WORDS = {"TOKEN", "PASSWORD", "PASSWD", "PASS", "SECRET", "KEY", "CREDENTIAL", "CREDENTIALS", "APIKEY", "AUTH"}
_SECRET_NAMES = {"XNAT_USER", "XNAT_PASS", "JPY_API_TOKEN"}
_SECRET_ARG = re.compile(r"^(--?[\w.\-]*(token|password|secret|key)[\w.\-]*=)(.+)$", re.IGNORECASE)


class DockerUnavailable(ConnectionError):
    """The engine could not be asked, or refused. The message is fit to show."""


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    if upper in _SECRET_NAMES:
        return True
    parts = [p for p in re.split(r"[_\-.]", upper) if p]
    if parts and parts[-1] == "FILE":  # NAME_FILE holds a path to the secret, not the secret
        return False
    return any(p in _SECRET_WORDS or "TOKEN" in p or "SECRET" in p or "PASSWORD" in p for p in parts)


def redact_env(env: list[str]) -> list[str]:
    out = []
    for item in env:
        name, sep, value = item.partition("=")
        out.append(f"{name}={REDACTED}" if sep and value and is_secret_name(name) else item)
    return out


def redact_args(args: list[str]) -> list[str]:
    return [_SECRET_ARG.sub(lambda m: m.group(1) + REDACTED, a) if isinstance(a, str) else a for a in args]


def redact_spec(spec: dict) -> None:
    """Redact, in place, the secret env values and `--x-token=...` arguments of a service spec."""
    container = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
    if isinstance(container.get("Env"), list):
        container["Env"] = redact_env(container["Env"])
    for key in ("Args", "Command"):
        if isinstance(container.get(key), list):
            container[key] = redact_args(container[key])


def parse_docker_time(value: Any) -> datetime | None:
    """Docker's RFC 3339 times carry nanoseconds; Python takes microseconds."""
    if not value or not isinstance(value, str) or value.startswith("0001-"):
        return None
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", value)
    if not m:
        return None
    frac = (m.group(2) or "")[:7]
    tz = m.group(3) or "Z"
    try:
        return datetime.fromisoformat(m.group(1) + frac + ("+00:00" if tz == "Z" else tz))
    except ValueError:
        return None


# -- which engine --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """Where the engine is and how to reach it; `source` says which setting chose it (for messages)."""

    host: str
    tls: docker.tls.TLSConfig | None = None
    source: str = "default"

    def describe(self) -> str:
        return f"{self.host} (from {self.source})"


def docker_config_dir(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("DOCKER_CONFIG") or Path.home() / ".docker")


def current_context_name(env: dict[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    if env.get("DOCKER_CONTEXT"):
        return env["DOCKER_CONTEXT"]
    config = docker_config_dir(env) / "config.json"
    try:
        return json.loads(config.read_text()).get("currentContext") or "default"
    except (OSError, ValueError, AttributeError):
        return "default"


def context_endpoint(name: str, env: dict[str, str] | None = None) -> Endpoint:
    """A docker context's endpoint, read from `contexts/meta/<sha256(name)>/meta.json` and its TLS files."""
    base = docker_config_dir(env) / "contexts"
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta_file = base / "meta" / digest / "meta.json"
    try:
        meta = json.loads(meta_file.read_text())
        endpoint = meta["Endpoints"]["docker"]
        host = endpoint["Host"]
    except FileNotFoundError:
        raise DockerUnavailable(f"docker context {name!r} does not exist (no {meta_file})") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DockerUnavailable(f"docker context {name!r}: cannot read {meta_file}: {e}") from None
    tls_dir = base / "tls" / digest / "docker"
    ca, cert, key = (tls_dir / f for f in ("ca.pem", "cert.pem", "key.pem"))
    tls = None
    if host.startswith("tcp://") and (ca.exists() or cert.exists()):
        tls = docker.tls.TLSConfig(
            client_cert=(str(cert), str(key)) if cert.exists() and key.exists() else None,
            ca_cert=str(ca) if ca.exists() else None,
            verify=not endpoint.get("SkipTLSVerify", False),
        )
    return Endpoint(host=host, tls=tls, source=f"docker context {name!r}")


def resolve_endpoint(host: str | None = None, env: dict[str, str] | None = None) -> Endpoint:
    """The engine to use, in the docker CLI's order of precedence."""
    env = dict(os.environ) if env is None else env
    if host:
        return Endpoint(host=host, tls=_env_tls(host, env), source="--docker-host/config")
    if env.get("DOCKER_HOST"):
        return Endpoint(host=env["DOCKER_HOST"], tls=_env_tls(env["DOCKER_HOST"], env), source="DOCKER_HOST")
    name = current_context_name(env)
    if name != "default":
        return context_endpoint(name, env)
    return Endpoint(host="unix:///var/run/docker.sock", source="default socket")


def _env_tls(host: str, env: dict[str, str]) -> docker.tls.TLSConfig | None:
    if not host.startswith("tcp://"):
        return None
    verify = env.get("DOCKER_TLS_VERIFY", "") not in ("", "0")
    cert_path = env.get("DOCKER_CERT_PATH") or str(docker_config_dir(env))
    ca, cert, key = (os.path.join(cert_path, f) for f in ("ca.pem", "cert.pem", "key.pem"))
    if not verify and not os.path.exists(cert):
        return None
    return docker.tls.TLSConfig(
        client_cert=(cert, key) if os.path.exists(cert) else None,
        ca_cert=ca if verify else None,
        verify=verify,
    )


def make_client(endpoint: Endpoint, timeout: float) -> docker.DockerClient:
    # A larger pool than the SDK's 10: screens' thread workers and the stats sampler share one client.
    kwargs: dict[str, Any] = {"base_url": endpoint.host, "timeout": timeout, "version": "auto", "max_pool_size": 24}
    if endpoint.tls is not None:
        kwargs["tls"] = endpoint.tls
    if endpoint.host.startswith("ssh://"):
        # In-process SSH (paramiko, docker's "ssh" extra), which reads ~/.ssh/config and uses the agent. The
        # system-ssh mode would write ssh's own errors onto the terminal, under a full-screen console.
        try:
            enable_docker_ssh()  # imports paramiko
        except ImportError:
            raise DockerUnavailable(
                f"{endpoint.host}: ssh:// needs the docker SDK's ssh support: pip install 'docker[ssh]'"
            ) from None
        kwargs["use_ssh_client"] = False
    return docker.DockerClient(**kwargs)


def _is_ssh_error(error: Exception) -> bool:
    return type(error).__module__.startswith("paramiko")


def _explain(error: Exception, endpoint: Endpoint) -> str:
    text = str(error)
    if isinstance(error, docker.errors.APIError):
        explanation = getattr(error, "explanation", None) or text
        if "not a swarm manager" in str(explanation) or "This node is not a swarm manager" in str(explanation):
            return f"the engine at {endpoint.host} is not a swarm manager; run the console on a manager"
        return f"the engine refused: {explanation}"
    if "Permission denied" in text:
        return f"no permission to use {endpoint.describe()}; is this user in the docker group?"
    if (
        "No such file" in text
        or "Connection refused" in text
        or "ConnectionRefused" in text
        or "Unable to connect" in text
    ):
        return f"no Docker engine answers at {endpoint.describe()}"
    if isinstance(error, requests.exceptions.Timeout) or "timed out" in text.lower():
        return f"the Docker engine at {endpoint.describe()} did not answer in time"
    return f"cannot reach the Docker engine at {endpoint.describe()}: {text[:200]}"


# -- the wrapper ---------------------------------------------------------------------------------


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
                try:
                    self._client = make_client(self.endpoint, self.timeout)
                except docker.errors.DockerException as e:
                    raise DockerUnavailable(_explain(e.__context__ or e, self.endpoint)) from None
                except (OSError, requests.exceptions.RequestException) as e:
                    raise DockerUnavailable(_explain(e, self.endpoint)) from None
                except ValueError as e:  # the SDK's word on an address it cannot parse
                    raise DockerUnavailable(f"{self.endpoint.describe()}: {str(e)[:160]}") from None
                except Exception as e:
                    if not _is_ssh_error(e):
                        raise
                    raise DockerUnavailable(f"ssh to {self.endpoint.describe()} failed: {str(e)[:200]}") from None
            return self._client

    def _drop(self) -> None:
        with self._lock:
            if self._client is not None:
                try:
                    self._client.close()
                except Exception:
                    pass
            self._client = None
            self._local_node_id = None

    def close(self) -> None:
        self._drop()
        for c in self._node_clients.values():
            c.close()
        self._node_clients.clear()

    def _call(self, fn, *args, **kwargs):
        """Run one SDK call, turning every failure into DockerUnavailable (and reconnecting next time)."""
        api = self.client().api
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
            try:
                self.nodes()
            except DockerUnavailable:
                pass
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
        except docker.errors.NotFound:
            raise DockerUnavailable(f"no service {service!r}") from None
        if service:
            # The engine's "service" filter also matches by name prefix; keep this service's tasks only.
            ids = {t.get("ServiceID") for t in raw}
            if len(ids) > 1:
                sid = self.inspect_service(service, redact=False)["ID"]
                raw = [t for t in raw if t.get("ServiceID") == sid]
        tasks = [self._task(t) for t in raw]
        return sorted(tasks, key=lambda t: (t.slot or 0, -(t.timestamp.timestamp() if t.timestamp else 0)))

    def _task(self, t: dict) -> TaskInfo:
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

    def inspect_service(self, service: str, *, redact: bool = True) -> dict:
        """`docker service inspect`, with secret env values and `--*token=` arguments redacted."""
        try:
            data = self._call(lambda api: api.inspect_service(service))
        except docker.errors.NotFound:
            raise DockerUnavailable(f"no service {service!r}") from None
        if redact:
            for key in ("Spec", "PreviousSpec"):
                if isinstance(data.get(key), dict):
                    redact_spec(data[key])
        return data

    def events(
        self, since: datetime | None = None, until: datetime | None = None, limit: int = 200
    ) -> list[DockerEvent]:
        """Recent events in [since, until] (default: the last 15 minutes up to now). Does not block."""
        now = datetime.now(timezone.utc)
        since = since or datetime.fromtimestamp(now.timestamp() - 900, timezone.utc)
        until = until or now
        filters = {"type": ["service", "node", "container", "network", "secret", "config"]}

        def read(api):
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
                    time=datetime.fromtimestamp(when / 1e9 if when else e.get("time", 0), timezone.utc),
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
                self._node_clients[url] = make_client(Endpoint(url, source="node_engines"), self.timeout)
            except docker.errors.DockerException:
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
        try:
            raw = api.stats(task.container_id, stream=False, one_shot=True)
        except docker.errors.NotFound:
            return ContainerStats(unavailable_reason="n/a: container is gone")
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as e:
            return ContainerStats(unavailable_reason=f"n/a: {str(e)[:120]}")
        return self._compute_stats(task.container_id, raw)

    def _compute_stats(self, container_id: str, raw: dict) -> ContainerStats:
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

        def open_stream(api):
            url = api._url("/services/{0}/logs", spec["ID"])
            response = api._get(url, params=params, stream=True)
            # The raw socket (or SSH channel) under the response: shutting it down is what wakes a reader
            # blocked on a silent follow; closing the response alone waits for that reader.
            return response, api._get_raw_response_socket(response)

        response, sock = self._call(open_stream)
        tty = bool(((spec.get("Spec") or {}).get("TaskTemplate") or {}).get("ContainerSpec", {}).get("TTY"))
        name = (spec.get("Spec") or {}).get("Name", service)
        return LogStream(self, response, name, spec["ID"], tty=tty, timestamps=timestamps, sock=sock)


class LogStream:
    """An iterator of LogLine over one service-logs response. `close()` may be called from another thread
    to stop a follow; iteration then ends quietly."""

    def __init__(
        self,
        docker_access: DockerAccess,
        response,
        name: str,
        service_id: str,
        *,
        tty: bool,
        timestamps: bool,
        sock: Any = None,
    ):
        self._docker = docker_access
        self._response = response
        self._sock = sock
        self._name = name
        self._service_id = service_id
        self._tty = tty
        self._timestamps = timestamps
        self._prefixes: dict[str, str] = {}
        self._closed = False
        self._gen = self._lines()
        self._last_refresh = 0.0

    def __iter__(self) -> LogStream:
        return self

    def __next__(self) -> LogLine:
        return next(self._gen)

    def close(self) -> None:
        """Stop now, from any thread: a reader blocked in a silent follow wakes up and ends quietly."""
        if self._closed:
            return
        self._closed = True
        raw_socket = getattr(self._sock, "_sock", self._sock)  # SocketIO wraps the socket
        try:
            if hasattr(raw_socket, "shutdown"):
                raw_socket.shutdown(socket.SHUT_RDWR)
            elif hasattr(raw_socket, "close"):  # an SSH channel
                raw_socket.close()
        except OSError:
            pass  # already gone
        try:
            self._response.close()
        except Exception:
            pass

    def __enter__(self) -> LogStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _prefix(self, task_id: str, node_id: str) -> str:
        if task_id not in self._prefixes and time.monotonic() - self._last_refresh > 1.0:
            self._last_refresh = time.monotonic()
            try:
                for t in self._docker.tasks(self._service_id):
                    self._prefixes[t.id] = f"{self._name}.{t.slot or t.node_id[:12]}.{t.id[:12]}@{t.node_name}"
            except DockerUnavailable:
                pass
        return self._prefixes.get(task_id) or f"{self._name}.{task_id[:12]}@{self._docker.node_name(node_id)}"

    def _frames(self) -> Iterator[tuple[str, bytes]]:
        raw = self._response.raw
        if self._tty:
            # No frames: whatever has arrived (read1 does not wait to fill the buffer, so a follow stays live).
            while not self._closed and (chunk := raw.read1(4096)):
                yield "stdout", chunk
            return
        while not self._closed:
            header = raw.read(8)
            if len(header) < 8:
                return
            kind, length = struct.unpack(">BxxxL", header)
            data = raw.read(length) if length else b""
            yield ("stderr" if kind == 2 else "stdout"), data

    def _lines(self) -> Iterator[LogLine]:
        pending = {"stdout": b"", "stderr": b""}
        try:
            for stream, data in self._frames():
                buf = pending[stream] + data
                *lines, pending[stream] = buf.split(b"\n")
                for line in lines:
                    yield self._parse(line, stream)
            for stream, rest in pending.items():
                if rest:
                    yield self._parse(rest, stream)
        except (OSError, ValueError, AttributeError, requests.exceptions.RequestException, Exception) as e:
            if self._closed:
                return
            raise DockerUnavailable(f"log stream of {self._name} broke: {str(e)[:160]}") from None
        finally:
            self.close()

    def _parse(self, raw: bytes, stream: str) -> LogLine:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        timestamp = None
        if self._timestamps:
            stamp, _, text = text.partition(" ")
            timestamp = parse_docker_time(stamp)
        details, _, message = text.partition(" ")
        attrs = dict(kv.split("=", 1) for kv in details.split(",") if "=" in kv)
        if "com.docker.swarm.task.id" not in attrs:  # no details block: the whole line is the message
            return LogLine(task=self._name, text=text, timestamp=timestamp, stream=stream)
        prefix = self._prefix(attrs.get("com.docker.swarm.task.id", ""), attrs.get("com.docker.swarm.node.id", ""))
        return LogLine(task=prefix, text=message, timestamp=timestamp, stream=stream)


def _node(n: dict) -> NodeInfo:
    spec = n.get("Spec") or {}
    desc = n.get("Description") or {}
    res = desc.get("Resources") or {}
    status = n.get("Status") or {}
    manager = n.get("ManagerStatus") or {}
    return NodeInfo(
        id=n.get("ID", ""),
        hostname=desc.get("Hostname", ""),
        role=spec.get("Role", ""),
        availability=spec.get("Availability", ""),
        state=status.get("State", ""),
        leader=bool(manager.get("Leader")),
        nano_cpus=int(res.get("NanoCPUs") or 0),
        memory_bytes=int(res.get("MemoryBytes") or 0),
        labels=dict(spec.get("Labels") or {}),
        address=status.get("Addr", ""),
    )


def _service(s: dict) -> ServiceInfo:
    spec = s.get("Spec") or {}
    labels = dict(spec.get("Labels") or {})
    template = spec.get("TaskTemplate") or {}
    image = (template.get("ContainerSpec") or {}).get("Image", "")
    image = image.split("@sha256:")[0]
    mode = spec.get("Mode") or {}
    status = s.get("ServiceStatus") or {}
    limits = (template.get("Resources") or {}).get("Limits") or {}
    if "Replicated" in mode:
        mode_name, desired = "replicated", int((mode["Replicated"] or {}).get("Replicas") or 0)
    else:
        mode_name, desired = "global", int(status.get("DesiredTasks") or 0)
    return ServiceInfo(
        id=s.get("ID", ""),
        name=spec.get("Name", ""),
        image=image,
        mode=mode_name,
        replicas_running=int(status.get("RunningTasks") or 0),
        replicas_desired=desired,
        updated_at=parse_docker_time(s.get("UpdatedAt")),
        labels=labels,
        stack=labels.get(STACK_LABEL, ""),
        notebook_user=labels.get(USER_LABEL, ""),
        notebook_server=labels.get(SERVER_LABEL, ""),
        cpu_limit=(limits["NanoCPUs"] / 1e9) if limits.get("NanoCPUs") else None,
        mem_limit=int(limits["MemoryBytes"]) if limits.get("MemoryBytes") else None,
        networks=tuple(n.get("Target", "") for n in (template.get("Networks") or spec.get("Networks") or [])),
    )
