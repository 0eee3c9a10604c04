"""The XNAT plugin's JSON documents, built the way XNAT builds them (integration spec §6.1, §6.2, §6.4).

- `user_options(...)`: the XnatUserOptions that `GET .../user-options` returns (top-level nulls dropped; the
  nested task_template objects always carry every key, nulls included).
- `start_request_body(...)`: the camelCase body XNAT POSTs to start a server (task_template null).
- `event_tracking_id(now)`: the browser's launch id, also used as the server name.
- `project_mounts(...)`: the mounts XNAT adds for a project launch (workspace + archive).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

DEFAULT_IMAGE = "xnat/datascience-notebook:latest"
DEFAULT_XNAT_HOST = "http://xnat.example.org"


def event_tracking_id(now: datetime | None = None) -> str:
    """An ISO-8601 UTC timestamp with `-`, `:` and `.` removed: `20240615T101530123Z`."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"


def mount(source: str, target: str, *, read_only: bool = False, type: str = "bind") -> dict[str, Any]:
    """One task_template mount, keys in XNAT's order."""
    return {"target": target, "source": source, "type": type, "read_only": read_only}


def project_mounts(
    user: str, project_id: str = "PRJ1", *, workspace_root: str = "/data/xnat/workspaces",
    archive_root: str = "/data/xnat/archive",
) -> list[dict[str, Any]]:
    """The mounts of a project launch: the user's workspace (rw) and the project's archive folders (ro)."""
    archive = f"{archive_root}/{project_id}"
    data = f"/data/projects/{project_id}"
    return [
        mount(f"{workspace_root}/users/{user}", f"/workspace/{user}"),
        mount(f"{archive}/arc001", f"{data}/experiments", read_only=True),
        mount(f"{archive}/resources", f"{data}/resources", read_only=True),
        mount(f"{archive}/subjects", f"{data}/subjects", read_only=True),
    ]


def xnat_env(
    user: str, *, xnat_host: str = DEFAULT_XNAT_HOST, xsi_type: str = "xnat:projectData", item_id: str = "PRJ1",
    alias_token: str | None = None, alias_secret: str | None = None,
) -> dict[str, str]:
    """The environment XNAT always puts in container_spec.env (an alias token pair stands in for the user)."""
    return {
        "XNAT_HOST": xnat_host,
        "XNAT_USER": alias_token or str(uuid.uuid4()),
        "XNAT_PASS": alias_secret or uuid.uuid4().hex,
        "XNAT_DATA": "/data",
        "XNAT_XSI_TYPE": xsi_type,
        "XNAT_ITEM_ID": item_id,
        "JUPYTERHUB_ROOT_DIR": f"/workspace/{user}",
        "XDG_CONFIG_HOME": f"/workspace/{user}",
    }


def user_options(
    user: str,
    server: str,
    *,
    image: str | None = DEFAULT_IMAGE,
    command: str | None = None,
    env: Mapping[str, Any] | None = None,
    labels: Mapping[str, Any] | None = None,
    mounts: Iterable[Mapping[str, Any]] | None = None,
    cpu_limit: float | None = 2.0,
    cpu_reservation: float | None = 2.0,
    mem_limit: str | None = "2G",
    mem_reservation: str | None = "2G",
    generic_resources: Mapping[str, Any] | None = None,
    constraints: Iterable[str] | None = None,
    xsi_type: str = "xnat:projectData",
    item_id: str = "PRJ1",
    project_id: str = "PRJ1",
    user_id: int | None = 3,
    event_tracking_id: str | None = None,
    dashboard_config_id: int | None = None,
    xnat_host: str = DEFAULT_XNAT_HOST,
    alias_token: str | None = None,
    alias_secret: str | None = None,
) -> dict[str, Any]:
    """The XnatUserOptions JSON XNAT stores for (`user`, `server`) and serves to the hub.

    `env` is merged over XNAT's own variables (XNAT_HOST, XNAT_USER, ... as `xnat_env` builds them), as XNAT merges
    the compute environment's and hardware's env. `mounts` defaults to none, so a test spawn needs no host paths;
    pass `project_mounts(user)` for XNAT's usual set. The event tracking id defaults to the server name, as XNAT's
    UI uses one for the other.
    """
    tracking = event_tracking_id or server or _now_id()
    document: dict[str, Any] = {
        "userId": user_id,
        "servername": server,
        "xsiType": xsi_type,
        "itemId": item_id,
        "projectId": project_id,
        "eventTrackingId": tracking,
        "dashboardConfigId": dashboard_config_id,
        "task_template": {
            "container_spec": {
                "image": image,
                "command": command,
                "env": {**xnat_env(user, xnat_host=xnat_host, xsi_type=xsi_type, item_id=item_id,
                                   alias_token=alias_token, alias_secret=alias_secret), **(env or {})},
                "labels": dict(labels or {}),
                "mounts": [dict(m) for m in mounts or ()],
            },
            "resources": {
                "cpu_limit": cpu_limit,
                "cpu_reservation": cpu_reservation,
                "mem_limit": mem_limit,
                "mem_reservation": mem_reservation,
                "generic_resources": dict(generic_resources) if generic_resources is not None else None,
            },
            "placement": {"constraints": list(constraints or ())},
        },
    }
    # XNAT's object mapper drops top-level nulls (NON_NULL); the nested classes use ALWAYS.
    return {key: value for key, value in document.items() if value is not None}


def start_request_body(
    *,
    user_id: int | None = 3,
    xsi_type: str = "xnat:projectData",
    item_id: str = "PRJ1",
    item_label: str = "PRJ1",
    project_id: str = "PRJ1",
    event_tracking_id: str | None = None,
    dashboard_config_id: int | None = None,
) -> dict[str, Any]:
    """The body XNAT POSTs to `/users/{u}/server[s/{s}]`: camelCase, nulls kept, servername and task_template null.

    The hub must ignore it for spawning and echo it back as the server's `user_options` (XNAT's UI reads
    `eventTrackingId` from there).
    """
    return {
        "userId": user_id,
        "servername": None,
        "xsiType": xsi_type,
        "itemId": item_id,
        "itemLabel": item_label,
        "projectId": project_id,
        "eventTrackingId": event_tracking_id or _now_id(),
        "dashboardConfigId": dashboard_config_id,
        "task_template": None,
    }


def _now_id() -> str:
    return event_tracking_id(datetime.now(UTC))
