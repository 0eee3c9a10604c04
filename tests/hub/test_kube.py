"""hub.kube: XNAT's launch options (the Swarm path's own cases, built by the stand-in) as KubeSpawner settings.

Pure translation: no kubespawner needed. test_kube_spawner.py applies the same settings to a real KubeSpawner.
"""

from __future__ import annotations

import copy
from types import MappingProxyType
from typing import Any

import pytest

from hub.kube import (
    ARCHIVE_VOLUME,
    CONTROL_PLANE_LABEL,
    GPU_RESOURCE,
    OWNED_TRAITS,
    KubeSite,
    is_label_key,
    kube_settings,
    node_selector_requirements,
)
from hub.standin.options import mount, project_mounts, user_options
from hub.user_options import UserOptionsError, parse_user_options

GiB = 1024**3
USER = "Alice.Smith"
SERVER = "20240615T101530123Z"
SITE = KubeSite(archive_claim="xnat-archive", archive_root="/data/xnat/archive")

# What the chart configures before any launch (z2jh's home storage, its default image and command).
DEFAULTS: dict[str, Any] = {
    "image": "quay.io/jupyterhub/k8s-singleuser-sample:4.4.0",
    "image_pull_policy": None,
    "cmd": ["jupyterhub-singleuser"],
    "extra_labels": {},
    "extra_annotations": {},
    "cpu_limit": None,
    "cpu_guarantee": None,
    "mem_limit": None,
    "mem_guarantee": None,
    "extra_resource_limits": {},
    "extra_resource_guarantees": {},
    "node_affinity_required": [],
    "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "xnat-workspaces"}}],
    "volume_mounts": [{"name": "home", "mountPath": "/workspace/{unescaped_username}",
                       "subPath": "users/{unescaped_username}"}],
}


def translate(site: KubeSite = SITE, defaults: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    return kube_settings(parse_user_options(user_options(USER, SERVER, **options)), site,
                         DEFAULTS if defaults is None else defaults)


def xnat_mounts(settings: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in settings["volume_mounts"] if m["name"] != "home"]


# -- the held-in cases of the Swarm path -----------------------------------------------------------------------


def test_project_launch() -> None:
    """XNAT's usual project launch: image, env, resources, GPU, constraints, workspace and archive mounts."""
    settings = translate(
        mounts=project_mounts(USER), generic_resources={"gpu": "1"},
        constraints=["node.role==manager", "node.labels.x!=y"],
    )
    assert set(settings) == set(OWNED_TRAITS)
    assert settings["image"] == "xnat/datascience-notebook:latest"
    assert settings["image_pull_policy"] == "IfNotPresent"
    assert settings["cmd"] == ["jupyterhub-singleuser"]  # XNAT gave no command
    assert (settings["cpu_limit"], settings["cpu_guarantee"]) == (2.0, 2.0)
    assert (settings["mem_limit"], settings["mem_guarantee"]) == (2 * GiB, 2 * GiB)
    assert settings["extra_resource_limits"] == {GPU_RESOURCE: "1"}
    assert settings["extra_resource_guarantees"] == {GPU_RESOURCE: "1"}
    assert settings["node_affinity_required"] == [{"matchExpressions": [
        {"key": CONTROL_PLANE_LABEL, "operator": "Exists"},
        {"key": "x", "operator": "NotIn", "values": ["y"]},
    ]}]
    # The workspace mount is the chart's home storage; the archive folders are subPaths of the archive claim.
    assert xnat_mounts(settings) == [
        {"name": ARCHIVE_VOLUME, "mountPath": "/data/projects/PRJ1/experiments", "readOnly": True,
         "subPath": "PRJ1/arc001"},
        {"name": ARCHIVE_VOLUME, "mountPath": "/data/projects/PRJ1/resources", "readOnly": True,
         "subPath": "PRJ1/resources"},
        {"name": ARCHIVE_VOLUME, "mountPath": "/data/projects/PRJ1/subjects", "readOnly": True,
         "subPath": "PRJ1/subjects"},
    ]
    assert settings["volumes"] == DEFAULTS["volumes"] + [
        {"name": ARCHIVE_VOLUME, "persistentVolumeClaim": {"claimName": "xnat-archive"}}
    ]


def test_defaults_are_kept_and_never_modified() -> None:
    before = copy.deepcopy(DEFAULTS)
    settings = translate(image=None, cpu_limit=None, cpu_reservation=None, mem_limit=None, mem_reservation=None)
    assert before == DEFAULTS
    assert settings["image"] == DEFAULTS["image"]
    assert settings["image_pull_policy"] is None
    assert settings["cpu_limit"] is None and settings["mem_guarantee"] is None
    assert settings["volumes"] == DEFAULTS["volumes"] and settings["volumes"] is not DEFAULTS["volumes"]
    assert settings["node_affinity_required"] == []


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("panel serve /app/dash.py --address 0.0.0.0", ["panel", "serve", "/app/dash.py", "--address", "0.0.0.0"]),
        ("voila '/srv/my notebooks/dash.ipynb' --port=8888", ["voila", "/srv/my notebooks/dash.ipynb", "--port=8888"]),
    ],
)
def test_command_is_split_like_a_shell(command: str, expected: list[str]) -> None:
    assert translate(command=command)["cmd"] == expected


def test_labels_become_labels_or_annotations() -> None:
    settings = translate(labels={"org.xnat.dashboard": "panel", "org.xnat.note": "two words"})
    assert settings["extra_labels"] == {"org.xnat.dashboard": "panel"}
    assert settings["extra_annotations"] == {"org.xnat.note": "two words"}


@pytest.mark.parametrize("key", ["component", "hub.jupyter.org/username", "kubernetes.io/arch", "Bad_Prefix/x"])
def test_labels_kubernetes_cannot_take_are_refused(key: str) -> None:
    with pytest.raises(UserOptionsError, match="label"):
        translate(labels={key: "x"})


def test_xnat_strings_are_protected_from_kubespawner_expansion() -> None:
    settings = translate(
        mounts=[mount("/data/xnat/archive/P{1}", "/data/{x}", read_only=True)],
        labels={"org.xnat.note": "{username}"},
    )
    assert settings["extra_annotations"] == {"org.xnat.note": "{{username}}"}
    assert xnat_mounts(settings)[0]["mountPath"] == "/data/{{x}}"
    assert xnat_mounts(settings)[0]["subPath"] == "P{{1}}"


# -- placement -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("constraint", "requirement"),
    [
        ("node.labels.gpu==yes", {"key": "gpu", "operator": "In", "values": ["yes"]}),
        ("node.labels.gpu!=no", {"key": "gpu", "operator": "NotIn", "values": ["no"]}),
        ("node.labels.storage.tier!=b", {"key": "storage.tier", "operator": "NotIn", "values": ["b"]}),
        ("node.hostname==node-1", {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-1"]}),
        ("node.hostname!=node-1", {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["node-1"]}),
        ("node.role==manager", {"key": CONTROL_PLANE_LABEL, "operator": "Exists"}),
        ("node.role!=manager", {"key": CONTROL_PLANE_LABEL, "operator": "DoesNotExist"}),
        ("node.role==worker", {"key": CONTROL_PLANE_LABEL, "operator": "DoesNotExist"}),
        ("node.role!=worker", {"key": CONTROL_PLANE_LABEL, "operator": "Exists"}),
        ("node.platform.os==linux", {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}),
        ("node.platform.arch==x86_64", {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}),
        ("node.platform.arch!=aarch64", {"key": "kubernetes.io/arch", "operator": "NotIn", "values": ["arm64"]}),
    ],
)
def test_constraints_become_node_affinity(constraint: str, requirement: dict[str, Any]) -> None:
    settings = translate(constraints=[constraint])
    assert settings["node_affinity_required"] == [{"matchExpressions": [requirement]}]


@pytest.mark.parametrize(
    ("constraint", "match"),
    [
        ("node.id==2ivku8v2gvtg4", "Swarm node IDs do not exist on Kubernetes"),
        ("engine.labels.storage==ssd", "Docker engine labels do not exist on Kubernetes"),
        ("node.role==leader", "node.role must be manager or worker"),
        ("node.labels.zone==not a label", "not a valid Kubernetes label value"),
        ("node.labels.-zone==a", "not a valid Kubernetes label name"),
        ("node.labels." + "z" * 64 + "==a", "not a valid Kubernetes label name"),
    ],
)
def test_constraints_without_equivalent_are_refused(constraint: str, match: str) -> None:
    with pytest.raises(UserOptionsError, match=match):
        translate(constraints=[constraint])


def test_constraints_narrow_every_configured_term() -> None:
    """Kubernetes ORs affinity terms: XNAT's constraints must be ANDed into each, not added as another term."""
    purpose = {"matchExpressions": [{"key": "hub.jupyter.org/node-purpose", "operator": "In", "values": ["user"]}]}
    other = {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["big"]}]}
    defaults = {**DEFAULTS, "node_affinity_required": [purpose, other]}
    settings = translate(defaults=defaults, constraints=["node.labels.gpu==yes"])
    gpu = {"key": "gpu", "operator": "In", "values": ["yes"]}
    assert settings["node_affinity_required"] == [
        {"matchExpressions": purpose["matchExpressions"] + [gpu]},
        {"matchExpressions": other["matchExpressions"] + [gpu]},
    ]
    assert defaults["node_affinity_required"] == [purpose, other]


def test_repeated_constraints_are_one_requirement() -> None:
    assert node_selector_requirements(["node.labels.a==1", "node.labels.a==1"]) == [
        {"key": "a", "operator": "In", "values": ["1"]}
    ]


# -- resources -------------------------------------------------------------------------------------------------


def test_gpus_are_extended_resources_as_equal_limits_and_requests() -> None:
    settings = translate(generic_resources={"gpu": 2})
    assert settings["extra_resource_limits"] == {GPU_RESOURCE: "2"}
    assert settings["extra_resource_guarantees"] == {GPU_RESOURCE: "2"}


def test_zero_gpus_ask_for_nothing() -> None:
    settings = translate(generic_resources={"gpu": "0"})
    assert settings["extra_resource_limits"] == {} and settings["extra_resource_guarantees"] == {}


def test_resource_names_are_configurable() -> None:
    site = KubeSite(archive_claim="a", resource_names=MappingProxyType({"gpu": "amd.com/gpu", "fpga": "x.io/fpga"}))
    settings = translate(site=site, generic_resources={"gpu": 1, "fpga": 3})
    assert settings["extra_resource_limits"] == {"amd.com/gpu": "1", "x.io/fpga": "3"}


def test_named_gpu_is_refused() -> None:
    with pytest.raises(UserOptionsError, match="names one specific device"):
        translate(generic_resources={"gpu": "GPU-8f2c1a"})


def test_unknown_generic_resource_is_refused() -> None:
    with pytest.raises(UserOptionsError, match="'fpga' has no Kubernetes equivalent"):
        translate(generic_resources={"fpga": 1})


# -- mounts ----------------------------------------------------------------------------------------------------


def test_mount_outside_the_archive_is_refused() -> None:
    with pytest.raises(UserOptionsError, match=r"outside XNAT's archive \(/data/xnat/archive\)"):
        translate(mounts=[mount("/data/xnat/build/PRJ1", "/data/build", read_only=True)])


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("/etc/shadow", "system directory /etc"),
        ("/var/run/docker.sock", "Docker socket"),
        ("/data/xnat/archive/../../etc", "must not contain '..'"),
    ],
)
def test_the_swarm_mount_rules_refuse_first(source: str, match: str) -> None:
    """The shared parser's mount safety rules apply unchanged: same refusal, same message as on Swarm."""
    with pytest.raises(UserOptionsError, match=match):
        translate(mounts=[mount(source, "/data/x", read_only=True)])


def test_archive_mounts_need_an_archive_claim() -> None:
    with pytest.raises(UserOptionsError, match="no archive volume"):
        translate(site=KubeSite(), mounts=project_mounts(USER))


def test_workspace_only_launch_needs_no_archive_claim() -> None:
    settings = translate(site=KubeSite(), mounts=project_mounts(USER)[:1])
    assert settings["volume_mounts"] == DEFAULTS["volume_mounts"]
    assert settings["volumes"] == DEFAULTS["volumes"]


def test_archive_root_itself_is_the_whole_claim() -> None:
    site = KubeSite(archive_claim="xnat-archive", archive_root="/archive")
    settings = translate(site=site, mounts=[mount("/archive/PRJ1/arc001", "/data/exp", read_only=True),
                                            mount("/archive", "/data/all", read_only=True)])
    assert [(m["mountPath"], m.get("subPath")) for m in xnat_mounts(settings)] == [
        ("/data/exp", "PRJ1/arc001"), ("/data/all", None)
    ]


def test_named_volumes_need_a_configured_claim() -> None:
    with pytest.raises(UserOptionsError, match="'shared-models', which this hub has no Kubernetes volume claim"):
        translate(mounts=[mount("shared-models", "/opt/models", read_only=True, type="volume")])
    site = KubeSite(archive_claim="a", volume_claims=MappingProxyType({"shared-models": "models-pvc"}))
    settings = translate(site=site, mounts=[mount("shared-models", "/opt/models", read_only=True, type="volume")])
    assert xnat_mounts(settings) == [{"name": "xnat-claim-0", "mountPath": "/opt/models", "readOnly": True}]
    assert settings["volumes"][-1] == {"name": "xnat-claim-0", "persistentVolumeClaim": {"claimName": "models-pvc"}}


def test_dict_shaped_volume_settings_stay_dicts() -> None:
    """KubeSpawner (and z2jh 4.3+) accept volumes as a dict sorted by key; additions keep that shape."""
    defaults = {**DEFAULTS, "volumes": {"00-home": DEFAULTS["volumes"][0]},
                "volume_mounts": {"00-home": DEFAULTS["volume_mounts"][0]}}
    settings = translate(defaults=defaults, mounts=project_mounts(USER)[:2])
    assert list(settings["volumes"]) == ["00-home", ARCHIVE_VOLUME]
    assert list(settings["volume_mounts"]) == ["00-home", "xnat-0001"]
    assert list(defaults["volumes"]) == ["00-home"]


@pytest.mark.parametrize(
    ("key", "valid"),
    [("gpu", True), ("example.org/zone", True), ("a" * 63, True), ("a" * 64, False), ("Example.org/x", False),
     ("/x", False), ("x/", False), ("-x", False)],
)
def test_label_key_syntax(key: str, valid: bool) -> None:
    assert is_label_key(key) is valid


def test_translation_imports_without_kubespawner() -> None:
    """hub.kube is imported by the hub's config and by tools; only the spawner class needs kubespawner."""
    import subprocess
    import sys

    code = "import sys, hub.kube; print('kubespawner' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False"
