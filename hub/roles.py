"""The hub's API clients: XNAT's plugin and the operator's console, each a service with least-privilege scopes.

A service whose token is not set is not registered (a warning says so); the hub still starts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from hub.settings import SettingsError, env_secret

# What XNAT's plugin calls (xnat-integration-spec §6.2), and the scope each call needs:
#   GET /info                                     read:hub
#   GET /users, GET /users/{name}                 list:users, read:users       (in admin:users)
#   POST /users/{name} (create on first launch)   admin:users                  (no narrower scope creates users)
#   servers{} in the user model                   read:servers                 (in servers)
#   POST/DELETE /users/{name}/server[s/{s}]       servers, delete:servers      (in servers)
#   POST /users/{name}/tokens                     tokens
# `servers` rather than the original's `admin:servers`: XNAT never reads spawner state (admin:server_state).
XNAT_SCOPES: tuple[str, ...] = ("admin:users", "servers", "tokens", "read:hub")

# The console lists users and servers, starts, stops and deletes servers, reads hub info and counts the proxy's
# routes. No admin:users: it never creates or deletes users. JupyterHub has no read-only proxy scope; `proxy`
# also allows re-syncing the routing table, which is harmless.
CONSOLE_SCOPES: tuple[str, ...] = ("list:users", "read:users", "servers", "read:hub", "proxy")

MIN_TOKEN_CHARS = 16


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    role: str
    token_variable: str
    scopes: tuple[str, ...]
    description: str


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("xnat", "xnat-service", "JH_XNAT_SERVICE_TOKEN", XNAT_SCOPES,
                "XNAT's JupyterHub plugin: creates users, starts and stops their servers, issues their tokens"),
    ServiceSpec("console", "console-service", "JH_CONSOLE_TOKEN", CONSOLE_SCOPES,
                "xnat-jh-console: lists users and servers, starts and stops servers, reads hub info"),
)


def _check_token(variable: str, token: str) -> None:
    """Refuse tokens the hub could not use, without ever echoing them."""
    if len(token) < MIN_TOKEN_CHARS:
        raise SettingsError(
            f"{variable} must be at least {MIN_TOKEN_CHARS} characters (make one with `openssl rand -hex 32`)"
        )
    if any(ch.isspace() or not ch.isprintable() for ch in token):
        raise SettingsError(f"{variable} must not contain spaces or control characters")


def services_and_roles(log: logging.Logger) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`JupyterHub.services` and `JupyterHub.load_roles` for every service whose token is set.

    Raises SettingsError for an unusable token, or when two services share one.
    """
    services: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for spec in SERVICES:
        token = env_secret(spec.token_variable)
        if token is None:
            log.warning(
                "%s (or %s_FILE) is not set: the %r service is not registered",
                spec.token_variable, spec.token_variable, spec.name,
            )
            continue
        _check_token(spec.token_variable, token)
        if token in seen:
            raise SettingsError(f"{spec.token_variable} and {seen[token]} must be different tokens")
        seen[token] = spec.token_variable
        services.append({"name": spec.name, "api_token": token})
        roles.append({
            "name": spec.role,
            "description": spec.description,
            "scopes": list(spec.scopes),
            "services": [spec.name],
        })
    return services, roles
