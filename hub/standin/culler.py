"""XNAT's two cullers, run as the plugin runs them (xnat-plugin-client-facts.md, "Cullers").

Every `interval` seconds (the plugin: 5 minutes) one `GET /users`, sent as the plugin sends it; then, server by
server, a stop through the plugin's stop flow when

- whole minutes since `last_activity` exceed `inactivity_timeout` (the preference inactivityTimeout, 60), or
- whole hours since `started` reach `max_server_lifetime` (maxServerLifetime, 48).

Like the plugin, a pass ends at the first server whose `last_activity` or `started` is null: the servers before
it have been handled, the rest wait for the next pass. A stop that fails is logged and the pass goes on.

    culler = Culler(plugin, inactivity_timeout=60, max_server_lifetime=48)
    report = await culler.run_pass()        # one pass: report.stopped, report.failed, report.aborted_at
    await culler.run_forever()              # what XNAT does, every `interval` seconds
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hub.standin.plugin import HubError, XnatPlugin, parse_timestamp

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def whole_minutes(since: datetime, now: datetime) -> int:
    """Java's ChronoUnit.MINUTES.between: complete minutes, truncated."""
    return int((now - since).total_seconds() // 60)


def whole_hours(since: datetime, now: datetime) -> int:
    return int((now - since).total_seconds() // 3600)


@dataclass
class PassReport:
    users: int = 0
    servers: int = 0
    stopped: list[tuple[str, str, str]] = field(default_factory=list)  # (user, server, "idle" | "lifetime")
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (user, server, error)
    aborted_at: tuple[str, str] | None = None  # the server with a null timestamp that ended the pass


@dataclass
class Culler:
    plugin: XnatPlugin
    inactivity_timeout: int = 60  # minutes
    max_server_lifetime: int = 48  # hours
    interval: float = 300.0  # seconds between passes
    now: Callable[[], datetime] = _utcnow

    def reason(self, server: dict[str, Any]) -> str | None:
        """Why the plugin would stop this server now ("idle", "lifetime"), or None. Raises ValueError on a null
        timestamp, where the plugin's pass fails."""
        last_activity = parse_timestamp(server.get("last_activity"))
        started = parse_timestamp(server.get("started"))
        if last_activity is None or started is None:
            raise ValueError("null last_activity or started")
        now = self.now()
        if whole_minutes(last_activity, now) > self.inactivity_timeout:
            return "idle"
        if whole_hours(started, now) >= self.max_server_lifetime:
            return "lifetime"
        return None

    async def run_pass(self) -> PassReport:
        """One pass. A failed `GET /users` (transport, status, or an answer the plugin cannot parse) raises."""
        users = await self.plugin.list_users()
        report = PassReport(users=len(users))
        for user in users:
            for name, server in user["servers"].items():
                report.servers += 1
                try:
                    why = self.reason(server)
                except ValueError:
                    report.aborted_at = (user["name"], name)
                    log.warning("culler pass aborted at %s/%s: null last_activity or started", user["name"], name)
                    return report
                if why is None:
                    continue
                try:
                    await self.plugin.stop(user["name"], name)
                except HubError as e:
                    report.failed.append((user["name"], name, str(e)))
                    log.warning("culler could not stop %s/%s: %s", user["name"], name, e)
                else:
                    report.stopped.append((user["name"], name, why))
        return report

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_pass()
            except HubError as e:
                log.warning("culler pass failed: %s", e)
            await asyncio.sleep(self.interval)
