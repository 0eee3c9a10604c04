"""From the engine's JSON to the console's models: services, nodes, Docker's times, and every secret in a
service spec (env values, `--*token=` arguments) redacted before anything shows it."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from console.backend.models import REDACTED, NodeInfo, ServiceInfo
from xjh_contract import LABEL_SERVER, LABEL_STACK_NAMESPACE, LABEL_USER

# Env names whose values are secrets. A notebook service's JUPYTERHUB_API_TOKEN sits in plain text in the
# service spec; XNAT_USER/XNAT_PASS are an XNAT alias token and its secret.
_SECRET_WORDS = {"TOKEN", "PASSWORD", "PASSWD", "PASS", "SECRET", "KEY", "CREDENTIAL", "CREDENTIALS", "APIKEY", "AUTH"}
_SECRET_NAMES = {"XNAT_USER", "XNAT_PASS", "JPY_API_TOKEN"}
_SECRET_ARG = re.compile(r"^(--?[\w.\-]*(token|password|secret|key)[\w.\-]*=)(.+)$", re.IGNORECASE)


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


def redact_spec(spec: dict[str, Any]) -> None:
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


def _node(n: dict[str, Any]) -> NodeInfo:
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


def _service(s: dict[str, Any]) -> ServiceInfo:
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
        stack=labels.get(LABEL_STACK_NAMESPACE, ""),
        notebook_user=labels.get(LABEL_USER, ""),
        notebook_server=labels.get(LABEL_SERVER, ""),
        cpu_limit=(limits["NanoCPUs"] / 1e9) if limits.get("NanoCPUs") else None,
        mem_limit=int(limits["MemoryBytes"]) if limits.get("MemoryBytes") else None,
        networks=tuple(n.get("Target", "") for n in (template.get("Networks") or spec.get("Networks") or [])),
    )
