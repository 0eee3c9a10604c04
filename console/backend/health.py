"""The health rules: one place says what check results mean for the hub's and XNAT's health, so the TUI's
top bar and `xnat-jh-console status` always agree. Engine and swarm health come from `DockerAccess.health()`."""

from __future__ import annotations

from collections.abc import Iterable

from console.backend.models import (
    CheckStatus,
    CheckStep,
    ComponentHealth,
    Health,
    HubInfo,
)

# Steps whose failure means XNAT cannot be reached at all (no usable URL, no name, no port, no TLS, no HTTP), as
# opposed to reached but misconfigured (service account, plugin, hub URL and token, path roots).
XNAT_REACH_STEPS = ("configuration", "dns", "tcp", "tls", "http")
# Steps run from inside the hub's network carry this suffix; they are shown, but judged by `check` alone.
HUB_NETWORK_SUFFIX = " (hub network)"


def xnat_health(steps: Iterable[CheckStep]) -> ComponentHealth:
    """DOWN when a reach step failed, DEGRADED on any other failure or a warning, OK when none; UNKNOWN with no
    steps at all. Steps from the hub's network are not counted."""
    ours = [s for s in steps if not s.name.endswith(HUB_NETWORK_SUFFIX)]
    if not ours:
        return ComponentHealth("xnat", Health.UNKNOWN, "not checked")
    failed = [s for s in ours if s.status == CheckStatus.FAIL]
    warned = [s for s in ours if s.status == CheckStatus.WARN]
    if any(_is_reach_step(s) for s in failed):
        first = next(s for s in failed if _is_reach_step(s))
        return ComponentHealth("xnat", Health.DOWN, f"{first.name}: {first.reason}")
    if failed or warned:
        first = (failed or warned)[0]
        return ComponentHealth("xnat", Health.DEGRADED, f"{first.name}: {first.reason}")
    passed = sum(s.status == CheckStatus.PASS for s in ours)
    return ComponentHealth("xnat", Health.OK, f"{passed} checks passed, {len(ours) - passed} skipped")


def _is_reach_step(step: CheckStep) -> bool:
    return step.name.lower().split(" ", 1)[0] in XNAT_REACH_STEPS


def hub_health(info: HubInfo) -> ComponentHealth:
    """The hub's /hub/health, degraded while the console's token lacks a scope it needs."""
    detail = f"JupyterHub {info.version}, /hub/health {'ok' if info.health == Health.OK else 'failing'}"
    if info.proxy_routes is not None:
        detail += f", {info.proxy_routes} proxy routes"
    health = info.health
    if info.missing_scopes:
        health = Health.DEGRADED if health == Health.OK else health
        detail += f"; token lacks {', '.join(info.missing_scopes)}"
    if info.excess_scopes:
        detail += f"; token holds more than needed: {', '.join(info.excess_scopes)}"
    return ComponentHealth("hub", health, detail)


def hub_unreachable(error: BaseException) -> ComponentHealth:
    return ComponentHealth("hub", Health.DOWN, str(error) or type(error).__name__)
