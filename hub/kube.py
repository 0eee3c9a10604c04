"""XNAT's launch options on Kubernetes: a `LaunchSpec` translated into KubeSpawner settings.

The Swarm spawner and this module share one parser (`hub.user_options`): the same JSON is accepted or refused
with the same message on both. What differs is only the target:

- image (pulled `IfNotPresent`), command (already split like a shell) and labels; XNAT's env goes under
  JupyterHub's own variables and the operator's `environment`, as on Swarm;
- CPU and memory limits and reservations become KubeSpawner's limits and guarantees;
- generic resources become extended resources (`gpu` is `nvidia.com/gpu`), as equal limits and requests because
  Kubernetes cannot overcommit them. A *named* resource (one specific device) has no Kubernetes equivalent;
- placement constraints become one required node-affinity term (all of them must hold, as on Swarm):
  `==` is `In`, `!=` is `NotIn`, `node.labels.X` is the node label `X`, `node.hostname` is
  `kubernetes.io/hostname`, `node.role` is the existence of `node-role.kubernetes.io/control-plane`, and
  `node.platform.os`/`.arch` are `kubernetes.io/os`/`arch`. `node.id` and `engine.labels.*` are refused;
- bind mounts become subPath mounts of the archive PVC (`JH_XNAT_ARCHIVE_PVC`): the source must lie inside the
  archive root (`JH_XNAT_ARCHIVE_ROOT`, XNAT's path for the PVC's top), the subPath is the rest. Mounts under
  `/workspace` are skipped: the chart's home storage mounts the user's workspace. Named volumes map to PVCs only
  through the admin's `XnatKubeSpawner.volume_claims`.

`kube_settings()` is a pure function returning the value of every KubeSpawner attribute it owns, computed from
the spec and the spawner's configured defaults; importing this module needs no kubespawner. `XnatKubeSpawner`
(built on first access, importing kubespawner then) fetches the options from XNAT on every start and assigns a
fresh translation, so nothing from an earlier launch survives into the next one.

About 500 lines, kept whole on purpose: each Swarm concept's Kubernetes equivalent, or its refusal, sits beside
the others, so that the list above can be checked against the code in one read.
"""

from __future__ import annotations

import copy
import logging
import os
import posixpath
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import hub
from hub import roles, settings
from hub.launch import SpawnRefused, XnatLaunchMixin
from hub.user_options import LaunchSpec, MountSpec, UserOptionsError, short_repr
from hub.xnat import XnatClient

__all__ = [
    "ARCHIVE_VOLUME",
    "GPU_RESOURCE",
    "OWNED_TRAITS",
    "KubeSite",
    "SpawnRefused",
    "XnatKubeSpawner",  # noqa: F822  (made on first use by the module's __getattr__: importing needs no kubespawner)
    "configure_hub",
    "kube_settings",
    "node_selector_requirements",
]

GPU_RESOURCE = "nvidia.com/gpu"
ARCHIVE_VOLUME = "xnat-archive"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
HOSTNAME_LABEL = "kubernetes.io/hostname"
OS_LABEL = "kubernetes.io/os"
ARCH_LABEL = "kubernetes.io/arch"
DEFAULT_ARCHIVE_ROOT = "/data/xnat/archive"
WORKSPACE_ROOT = "/workspace"
PULL_POLICY = "IfNotPresent"
# Docker reports the machine name (uname -m); Kubernetes labels nodes with Go's architecture names.
DOCKER_TO_KUBE_ARCH = MappingProxyType(
    {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm", "arm": "arm",
     "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
)

# KubeSpawner attributes the translation owns: each spawn sets every one of them, from XNAT or the config.
OWNED_TRAITS: tuple[str, ...] = (
    "image",
    "image_pull_policy",
    "cmd",
    "extra_labels",
    "extra_annotations",
    "cpu_limit",
    "cpu_guarantee",
    "mem_limit",
    "mem_guarantee",
    "extra_resource_limits",
    "extra_resource_guarantees",
    "node_affinity_required",
    "volumes",
    "volume_mounts",
)

# Label keys KubeSpawner and the Zero to JupyterHub chart put on user pods; network policies select on them.
_RESERVED_LABEL_KEYS = frozenset({"app", "component", "release", "heritage", "chart"})
_RESERVED_LABEL_PREFIXES = ("hub.jupyter.org/", "kubernetes.io/", "k8s.io/")
_NAME_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_CONSTRAINT_RE = re.compile(r"^(?P<key>.+?)(?P<op>==|!=)(?P<value>.*)$")


@dataclass(frozen=True)
class KubeSite:
    """What the translation needs to know about the cluster (from the spawner's configuration)."""

    archive_claim: str | None = None  # PVC holding XNAT's archive; None: archive mounts are refused
    archive_root: str = DEFAULT_ARCHIVE_ROOT  # the absolute path, in XNAT's mount sources, of that PVC's top
    volume_claims: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    resource_names: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({"gpu": GPU_RESOURCE}))
    workspace_root: str = WORKSPACE_ROOT


# -- Kubernetes names ------------------------------------------------------------------------------------------


def is_label_key(key: str) -> bool:
    """A valid Kubernetes label/annotation key: `[prefix/]name`, prefix a DNS subdomain, name at most 63."""
    prefix, slash, name = key.rpartition("/")
    if slash and not (0 < len(prefix) <= 253 and _DNS_SUBDOMAIN_RE.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_NAME_RE.match(name))


def is_label_value(value: str) -> bool:
    return value == "" or (len(value) <= 63 and bool(_NAME_RE.match(value)))


def _literal(text: str) -> str:
    """`text` protected from KubeSpawner's `{username}`-style expansion of env, labels and volumes."""
    return text.replace("{", "{{").replace("}", "}}")


# -- placement -------------------------------------------------------------------------------------------------


def _requirement(key: str, operator: str, values: Sequence[str] = ()) -> dict[str, Any]:
    requirement: dict[str, Any] = {"key": key, "operator": operator}
    if operator in ("In", "NotIn"):
        requirement["values"] = list(values)
    return requirement


def _match(label: str, equal: bool, value: str, constraint: str) -> dict[str, Any]:
    if not is_label_value(value):
        raise UserOptionsError(
            f"placement constraint {short_repr(constraint)}: {short_repr(value)} is not a valid Kubernetes label value"
        )
    return _requirement(label, "In" if equal else "NotIn", [value])


def _constraint_requirement(constraint: str) -> dict[str, Any]:
    match = _CONSTRAINT_RE.match(constraint)
    if not match:  # the parser guarantees the form; this guards direct callers
        raise UserOptionsError(f"placement constraint {short_repr(constraint)} must look like KEY==VALUE or KEY!=VALUE")
    key, equal, value = match["key"], match["op"] == "==", match["value"]
    if key.startswith("node.labels."):
        label = key[len("node.labels."):]
        if not is_label_key(label):
            raise UserOptionsError(
                f"placement constraint {short_repr(constraint)}: {short_repr(label)} "
                "is not a valid Kubernetes label name"
            )
        return _match(label, equal, value, constraint)
    if key == "node.hostname":
        return _match(HOSTNAME_LABEL, equal, value, constraint)
    if key == "node.platform.os":
        return _match(OS_LABEL, equal, value.lower(), constraint)
    if key == "node.platform.arch":
        return _match(ARCH_LABEL, equal, DOCKER_TO_KUBE_ARCH.get(value.lower(), value.lower()), constraint)
    if key == "node.role":
        role = value.lower()
        if role not in ("manager", "worker"):
            raise UserOptionsError(
                f"placement constraint {short_repr(constraint)}: node.role must be manager or worker"
            )
        # A Swarm manager is a control-plane node; a worker is any other node.
        on_control_plane = (role == "manager") == equal
        return _requirement(CONTROL_PLANE_LABEL, "Exists" if on_control_plane else "DoesNotExist")
    if key == "node.id":
        reason = "Swarm node IDs do not exist on Kubernetes; use node.hostname or node.labels.* instead"
    elif key.startswith("engine.labels."):
        reason = "Docker engine labels do not exist on Kubernetes; use node.labels.* instead"
    else:
        reason = "it has no Kubernetes equivalent"
    raise UserOptionsError(f"placement constraint {short_repr(constraint)} cannot be used on Kubernetes: {reason}")


def node_selector_requirements(constraints: Sequence[str]) -> list[dict[str, Any]]:
    """Swarm placement constraints as Kubernetes node selector requirements (all must hold)."""
    requirements: list[dict[str, Any]] = []
    for constraint in constraints:
        requirement = _constraint_requirement(constraint)
        if requirement not in requirements:
            requirements.append(requirement)
    return requirements


def _and_terms(base: Any, requirements: list[dict[str, Any]]) -> Any:
    """The configured required node-affinity terms, each narrowed by `requirements`.

    Kubernetes ORs the terms of a node selector and ANDs the expressions inside one term, so XNAT's constraints
    go into every term: a node must satisfy (any configured term) and (all of XNAT's constraints).
    """
    if not requirements:
        return copy.deepcopy(base)

    def narrowed(term: Mapping[str, Any]) -> dict[str, Any]:
        narrowed_term = copy.deepcopy(dict(term))
        narrowed_term["matchExpressions"] = list(term.get("matchExpressions") or []) + copy.deepcopy(requirements)
        return narrowed_term

    if isinstance(base, Mapping):
        if not base:
            return {"xnat": {"matchExpressions": copy.deepcopy(requirements)}}
        return {key: narrowed(term) for key, term in base.items()}
    if not base:
        return [{"matchExpressions": copy.deepcopy(requirements)}]
    return [narrowed(term) for term in base]


# -- resources -------------------------------------------------------------------------------------------------


def _extended_resources(spec: LaunchSpec, site: KubeSite) -> dict[str, str]:
    resources: dict[str, str] = {}
    for kind, amount in spec.generic_resources.items():
        if isinstance(amount, str):
            raise UserOptionsError(
                f"generic resource {kind!r} names one specific device; Kubernetes hands out devices by count, "
                "so ask for a number instead"
            )
        name = site.resource_names.get(kind)
        if name is None:
            known = ", ".join(sorted(site.resource_names)) or "none"
            raise UserOptionsError(
                f"generic resource {kind!r} has no Kubernetes equivalent on this hub (known: {known})"
            )
        if amount > 0:
            resources[name] = str(amount)
    return resources


# -- mounts ----------------------------------------------------------------------------------------------------


def _inside(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root + "/")


def _extend(base: Any, key: str, item: dict[str, Any]) -> Any:
    """Add `item` to a KubeSpawner list-or-dict setting (dict values are sorted by key)."""
    if isinstance(base, dict):
        base[key] = item
    else:
        base.append(item)
    return base


def _mounts(spec: LaunchSpec, site: KubeSite, volumes: Any, volume_mounts: Any) -> tuple[Any, Any]:
    used_archive = False
    claim_volumes: dict[str, str] = {}
    for index, mount in enumerate(spec.mounts):
        if _inside(mount.target, site.workspace_root):
            continue  # the chart's home storage mounts the user's workspace
        volume_mount: dict[str, Any] = {"mountPath": _literal(mount.target), "readOnly": mount.read_only}
        if mount.type == "bind":
            volume_mount["name"] = ARCHIVE_VOLUME
            volume_mount.update(_archive_sub_path(mount, site))
            used_archive = True
        else:
            claim = site.volume_claims.get(mount.source)
            if claim is None:
                raise UserOptionsError(
                    f"mount #{index + 1} names the volume {short_repr(mount.source)}, which this hub has no "
                    "Kubernetes volume claim for"
                )
            name = claim_volumes.setdefault(claim, f"xnat-claim-{len(claim_volumes)}")
            volume_mount["name"] = name
        volume_mounts = _extend(volume_mounts, f"xnat-{index:04d}", volume_mount)
    if used_archive:
        volume = {"name": ARCHIVE_VOLUME, "persistentVolumeClaim": {"claimName": site.archive_claim}}
        volumes = _extend(volumes, ARCHIVE_VOLUME, volume)
    for claim, name in claim_volumes.items():
        volumes = _extend(volumes, name, {"name": name, "persistentVolumeClaim": {"claimName": claim}})
    return volumes, volume_mounts


def archive_root_path(path: str) -> str:
    """The archive root as an absolute path without a trailing slash. ValueError for anything else."""
    if not path.startswith("/") or ".." in path.split("/"):
        raise ValueError(f"must be an absolute path without '..', got {path!r}")
    return "/" + "/".join(segment for segment in path.split("/") if segment not in ("", "."))


def _archive_sub_path(mount: MountSpec, site: KubeSite) -> dict[str, str]:
    if not site.archive_claim:
        raise UserOptionsError(
            f"this hub has no archive volume, so it cannot mount {mount.source} at {mount.target}"
        )
    if not _inside(mount.source, site.archive_root):
        raise UserOptionsError(
            f"mount source {mount.source} is outside XNAT's archive ({site.archive_root}), the only directory "
            "this hub can mount on Kubernetes"
        )
    relative = posixpath.relpath(mount.source, site.archive_root) if mount.source != site.archive_root else "."
    # The parser refused '..' and normalised the path; relpath of a path inside the root cannot climb out.
    if relative.startswith("/") or ".." in relative.split("/"):
        raise UserOptionsError(f"mount source {mount.source} does not lie inside {site.archive_root}")
    return {} if relative == "." else {"subPath": _literal(relative)}


# -- labels ----------------------------------------------------------------------------------------------------


def _labels(spec: LaunchSpec, labels: dict[str, Any], annotations: dict[str, Any]) -> None:
    for key, value in spec.labels.items():
        if not is_label_key(key):
            raise UserOptionsError(f"label {short_repr(key)} is not a valid Kubernetes label name")
        if key in _RESERVED_LABEL_KEYS or key.startswith(_RESERVED_LABEL_PREFIXES):
            raise UserOptionsError(f"label {key!r} is one the hub and Kubernetes set on notebook pods themselves")
        # A value Kubernetes refuses as a label value is still fine as an annotation.
        if is_label_value(value):
            labels[key] = _literal(value)
        else:
            annotations[key] = _literal(value)


# -- the translation -------------------------------------------------------------------------------------------


def kube_settings(spec: LaunchSpec, site: KubeSite, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """KubeSpawner's value for every attribute in `OWNED_TRAITS`, from `spec` over `defaults`.

    `defaults` holds the configured value of each owned attribute (as the spawner had it before any launch).
    Strings that come from XNAT are protected from KubeSpawner's `{...}` expansion. Raises `UserOptionsError`
    for anything Kubernetes cannot do; `defaults` is never modified.
    """
    base = {name: copy.deepcopy(defaults.get(name)) for name in OWNED_TRAITS}
    out: dict[str, Any] = dict(base)

    if spec.image is not None:
        out["image"] = spec.image
        out["image_pull_policy"] = PULL_POLICY
    if spec.cmd:
        out["cmd"] = list(spec.cmd)

    labels = dict(base["extra_labels"] or {})
    annotations = dict(base["extra_annotations"] or {})
    _labels(spec, labels, annotations)
    out["extra_labels"], out["extra_annotations"] = labels, annotations

    for ours, theirs in (("cpu_limit", "cpu_limit"), ("cpu_reservation", "cpu_guarantee"),
                         ("mem_limit", "mem_limit"), ("mem_reservation", "mem_guarantee")):
        value = getattr(spec, ours)
        if value is not None:
            out[theirs] = value

    extended = _extended_resources(spec, site)
    out["extra_resource_limits"] = {**(base["extra_resource_limits"] or {}), **extended}
    out["extra_resource_guarantees"] = {**(base["extra_resource_guarantees"] or {}), **extended}

    out["node_affinity_required"] = _and_terms(
        base["node_affinity_required"] or [], node_selector_requirements(spec.constraints)
    )

    volumes = base["volumes"] if base["volumes"] is not None else []
    volume_mounts = base["volume_mounts"] if base["volume_mounts"] is not None else []
    out["volumes"], out["volume_mounts"] = _mounts(spec, site, volumes, volume_mounts)
    return out


# -- the hub's configuration on Kubernetes ---------------------------------------------------------------------


def configure_hub(c: Any, *, home_mount_path: str | None = None) -> None:
    """Point a Zero to JupyterHub hub at this package: XNAT login and XNAT launches on KubeSpawner.

    Called from the chart's `hub.extraConfig`, after the chart's own configuration, so the services and roles
    the chart defines are kept and ours are added (replacing any of the same name). `home_mount_path` is the
    chart's `singleuser.storage.homeMountPath`: notebooks start there, in the user's workspace. A bad setting
    stops the hub with one line on stderr, as on Swarm.
    """
    log = logging.getLogger("JupyterHub")
    try:
        c.JupyterHub.authenticator_class = "hub.auth.XnatAuthenticator"
        c.JupyterHub.spawner_class = "hub.kube.XnatKubeSpawner"
        # Every XNAT launch is a named server; XNAT enforces the per-user limit itself.
        c.JupyterHub.allow_named_servers = True
        c.JupyterHub.template_paths = [os.path.join(os.path.dirname(os.path.abspath(hub.__file__)), "templates")]
        if home_mount_path:
            c.KubeSpawner.working_dir = home_mount_path

        services, load_roles = roles.services_and_roles(log)
        c.JupyterHub.services = _merged(c.JupyterHub, "services", services)
        c.JupyterHub.load_roles = _merged(c.JupyterHub, "load_roles", load_roles)

        XnatClient.check_environment()
    except settings.SettingsError as e:
        print(f"[E jupyterhub_config] {e}", file=sys.stderr)
        raise SystemExit(1) from None


def _merged(section: Any, key: str, ours: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The configured list `section[key]` (if set) without entries named like ours, then ours."""
    names = {entry["name"] for entry in ours}
    configured = list(section[key]) if key in section else []
    return [entry for entry in configured if entry.get("name") not in names] + ours


# -- the spawner -----------------------------------------------------------------------------------------------


def _make_spawner_class() -> type:
    from kubespawner import KubeSpawner
    from traitlets import Dict, TraitError, Unicode, default, validate

    class XnatKubeSpawner(XnatLaunchMixin, KubeSpawner):
        """KubeSpawner that runs what XNAT stored for this server, fetched and translated afresh on every start.

        The body of the start request (`user_options`) never chooses anything, and `profile_list` is not offered:
        XNAT decides each launch. The body is kept as it came, because XNAT reads `eventTrackingId` back from the
        server model.
        """

        archive_claim = Unicode(
            help="""Name of the PersistentVolumeClaim holding XNAT's archive, mounted read-only or read-write
            per XNAT's mount with a subPath. Empty: launches that mount archive data are refused.

            Default: $JH_XNAT_ARCHIVE_PVC.
            """,
        ).tag(config=True)

        @default("archive_claim")
        def _default_archive_claim(self) -> str:
            return settings.env_str("JH_XNAT_ARCHIVE_PVC", "") or ""

        archive_root = Unicode(
            help="""The absolute path, as XNAT writes it in mount sources (after its path translation), that is
            the top of the archive claim. A source must lie inside it; the rest of the path is the subPath.

            Default: $JH_XNAT_ARCHIVE_ROOT, else /data/xnat/archive.
            """,
        ).tag(config=True)

        @default("archive_root")
        def _default_archive_root(self) -> str:
            return settings.env_str("JH_XNAT_ARCHIVE_ROOT", DEFAULT_ARCHIVE_ROOT) or DEFAULT_ARCHIVE_ROOT

        @validate("archive_root")
        def _check_archive_root(self, proposal: Any) -> str:
            try:
                return archive_root_path(proposal["value"])
            except ValueError as e:
                raise TraitError(f"XnatKubeSpawner.archive_root {e}") from None

        volume_claims = Dict(
            value_trait=Unicode(),
            key_trait=Unicode(),
            help="""Docker volume name (as a compute environment in XNAT names it) -> PersistentVolumeClaim.

            Kubernetes has no named Docker volumes: a launch naming a volume not listed here is refused.
            """,
        ).tag(config=True)

        extended_resource_names = Dict(
            default_value={"gpu": GPU_RESOURCE},
            value_trait=Unicode(),
            key_trait=Unicode(),
            help="""XNAT generic resource kind -> Kubernetes extended resource name (e.g. amd.com/gpu).""",
        ).tag(config=True)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # The configured values, before any launch changed them: every launch starts from these.
            self._configured = {name: copy.deepcopy(getattr(self, name)) for name in OWNED_TRAITS}

        @property
        def kube_site(self) -> KubeSite:
            return KubeSite(
                archive_claim=self.archive_claim or None,
                # a dynamic default (from the environment) is not validated by traitlets: normalise here too
                archive_root=archive_root_path(self.archive_root),
                volume_claims=MappingProxyType(dict(self.volume_claims)),
                resource_names=MappingProxyType(dict(self.extended_resource_names)),
            )

        def apply_launch(self, spec: LaunchSpec) -> None:
            """Set every owned attribute from `spec` and the configuration, or none (UserOptionsError)."""
            values = kube_settings(spec, self.kube_site, self._configured)
            for name, value in values.items():
                setattr(self, name, value)
            self.launch = spec

        def check_launch(self, spec: LaunchSpec) -> None:
            kube_settings(spec, self.kube_site, self._configured)  # refuse before changing anything

        async def load_user_options(self) -> None:
            """Called by KubeSpawner at the start of every spawn: XNAT's launch replaces profiles and the body."""
            self.launch = None
            spec = await self.fetch_launch()
            self.apply_launch(spec)
            self.log.info("Launching %s from %s: %d mount(s), %d constraint(s)", self._log_name, self.image,
                          len(spec.mounts), len(spec.constraints))

        def get_env(self) -> dict[str, str]:
            """XNAT's env under the hub's own: XNAT adds variables, but never replaces JupyterHub's (the API token,
            URLs) or the operator's `environment`, as on Swarm. Not passed through KubeSpawner's `{...}`
            expansion, so XNAT's values arrive verbatim."""
            return self.with_xnat_env(super().get_env())

    XnatKubeSpawner.__qualname__ = "XnatKubeSpawner"
    return XnatKubeSpawner


def __getattr__(name: str) -> Any:
    # The spawner class needs kubespawner; build it only when asked for (traitlets' import_item asks here).
    if name == "XnatKubeSpawner":
        cls = _make_spawner_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
