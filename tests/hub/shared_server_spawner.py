"""XnatSwarmSpawner with only Docker replaced: every server is one shared, real HTTP server on loopback.

For tests that need many running servers in a real JupyterHub (the hub's API, its proxy routes, its database,
our spawner's options and progress): the hub starts, polls and stops these servers as any others, but no
container is created. Loaded by the hub process (tests/hub is on its PYTHONPATH).

`user_options` `{"hang": true}` keeps the spawn pending until the server is stopped.
"""

from __future__ import annotations

import asyncio

from traitlets import Integer

from hub.spawner import XnatSwarmSpawner


class SharedServerSpawner(XnatSwarmSpawner):
    shared_port = Integer(help="Port of the shared HTTP server on 127.0.0.1 that stands in for every notebook.").tag(
        config=True
    )

    async def start(self) -> tuple[str, int]:
        self._events.clear()
        self._report(20, "Starting on the shared server")
        if self.user_options.get("hang"):
            await asyncio.Event().wait()
        self._running = True
        return ("127.0.0.1", self.shared_port)

    async def poll(self) -> int | None:
        return None if getattr(self, "_running", False) else 0

    async def stop(self, now: bool = False) -> None:
        self._running = False
