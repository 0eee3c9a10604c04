"""One service's log stream: the engine's multiplexed frames (or a TTY's plain bytes) as LogLines, each prefixed
by the task that wrote it, and a `close()` that stops a blocked follow from any thread."""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from console.backend.docker_endpoint import DockerUnavailable
from console.backend.docker_models import parse_docker_time
from console.backend.models import (
    LogLine,
)

if TYPE_CHECKING:
    from console.backend.docker import DockerAccess


class LogStream:
    """An iterator of LogLine over one service-logs response. `close()` may be called from another thread
    to stop a follow; iteration then ends quietly."""

    def __init__(
        self,
        docker_access: DockerAccess,
        response: Any,
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
        with contextlib.suppress(Exception):
            self._response.close()

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
        except Exception as e:  # a socket, SDK or parse failure: each ends the stream the same way
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
