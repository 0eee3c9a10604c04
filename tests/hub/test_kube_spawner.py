"""XnatKubeSpawner: XNAT's stored options (from the XNAT stand-in, over HTTP) in a real KubeSpawner's pod manifest.

No cluster here: KubeSpawner is given a kubeconfig naming an address nothing listens on, and the tests stop at
the pod manifest KubeSpawner would send to the API server. That manifest is KubeSpawner's own code path
(`get_pod_manifest`), so it checks that our settings are ones KubeSpawner understands, with its `{...}`
expansion applied.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("kubespawner", reason="jupyterhub-kubespawner is not installed (pip install '.[kubernetes]')")

from kubernetes_asyncio.client import ApiClient
from kubespawner.clients import load_config
from traitlets.config import Config

from hub.kube import CONTROL_PLANE_LABEL, GPU_RESOURCE, SpawnRefused
from hub.standin.options import mount, project_mounts, start_request_body, user_options
from hub.standin.server import XnatStandin
from hub.xnat import XnatClient

USER = "Alice.Smith"
SERVER = "20240615T101530123Z"

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: never-sent}}]
contexts: [{name: none, context: {cluster: none, user: none, namespace: xnat}}]
current-context: none
"""


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    # kubernetes_asyncio read $KUBECONFIG when it was imported; KubeSpawner caches the loaded configuration.
    monkeypatch.setattr("kubernetes_asyncio.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    load_config.cache_clear()
    for name in ("JH_XNAT_ARCHIVE_PVC", "JH_XNAT_ARCHIVE_ROOT", "JH_MOUNT_ALLOWED_PREFIXES"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def hub_config(xnat_standin: XnatStandin, xnat_service_account: Any, kubeconfig: None) -> AsyncIterator[Config]:
    """The configuration the chart gives the hub: XNAT, the archive claim and z2jh's home storage."""
    c = Config()
    c.XnatClient.url = xnat_standin.url
    c.XnatClient.service_username = xnat_service_account.name
    c.XnatClient.service_password = xnat_service_account.password
    c.XnatKubeSpawner.archive_claim = "xnat-archive"
    c.KubeSpawner.image = "quay.io/jupyterhub/k8s-singleuser-sample:4.4.0"
    c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
    c.KubeSpawner.environment = {"CONFIGURED": "yes"}
    c.KubeSpawner.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "xnat-workspaces"}}]
    c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/workspace/{unescaped_username}",
                                    "subPath": "users/{unescaped_username}"}]
    XnatClient.clear_instance()
    try:
        yield c
    finally:
        if XnatClient.initialized():
            await XnatClient.instance().aclose()
        XnatClient.clear_instance()


def make_spawner(config: Config, server: str = SERVER) -> Any:
    from hub.kube import XnatKubeSpawner

    user = SimpleNamespace(name=USER, id=7, url=f"/jupyterhub/user/{USER}/")
    # JupyterHub names a spawner through its database row; this one has no server yet.
    orm_spawner = SimpleNamespace(name=server, server=None, state=None, last_activity=None)
    return XnatKubeSpawner(_mock=True, config=config, user=user, orm_spawner=orm_spawner,
                           api_token=secrets.token_hex(16))


async def manifest(spawner: Any) -> dict[str, Any]:
    # Serialised exactly as KubeSpawner's client would send it to the API server.
    pod = ApiClient().sanitize_for_serialization(await spawner.get_pod_manifest())
    container = pod["spec"]["containers"][0]
    return {
        "pod": pod,
        "container": container,
        "env": {e["name"]: e.get("value") for e in container["env"]},
        "mounts": {m["mountPath"]: m for m in container["volumeMounts"]},
        "volumes": {v["name"]: v for v in pod["spec"]["volumes"]},
    }


async def test_xnat_launch_in_the_pod_manifest(xnat_standin: XnatStandin, hub_config: Config) -> None:
    xnat_standin.set_user_options(USER, SERVER, user_options(
        USER, SERVER, command="panel serve '/app/my dash.py'", mounts=project_mounts(USER),
        env={"JSON": '{"a": 1}', "TEMPLATE": "{username}"}, labels={"org.xnat.dashboard": "panel"},
        generic_resources={"gpu": "1"}, constraints=["node.role==manager", "node.labels.gpu!=no"],
    ))
    spawner = make_spawner(hub_config)
    await spawner.load_user_options()
    m = await manifest(spawner)

    container = m["container"]
    assert container["image"] == "xnat/datascience-notebook:latest"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["args"][:3] == ["panel", "serve", "/app/my dash.py"]
    assert container["resources"]["limits"] == {"cpu": 2.0, "memory": 2 * 1024**3, GPU_RESOURCE: "1"}
    assert container["resources"]["requests"] == {"cpu": 2.0, "memory": 2 * 1024**3, GPU_RESOURCE: "1"}
    # XNAT's strings arrive verbatim (KubeSpawner expands `{...}` only in the operator's settings).
    assert m["env"]["JSON"] == '{"a": 1}' and m["env"]["TEMPLATE"] == "{username}"
    assert m["env"]["CONFIGURED"] == "yes" and m["env"]["XNAT_ITEM_ID"] == "PRJ1"
    assert m["env"]["JUPYTERHUB_ALLOW_TOKEN_IN_URL"] == "1"  # XNAT opens notebooks with ?token=
    assert m["env"]["JUPYTER_IMAGE_SPEC"] == "xnat/datascience-notebook:latest"
    assert m["pod"]["metadata"]["labels"]["org.xnat.dashboard"] == "panel"
    home = m["mounts"][f"/workspace/{USER}"]
    assert (home["name"], home["subPath"]) == ("home", f"users/{USER}")
    experiments = m["mounts"]["/data/projects/PRJ1/experiments"]
    assert (experiments["name"], experiments["subPath"], experiments["readOnly"]) == (
        "xnat-archive", "PRJ1/arc001", True)
    assert m["volumes"]["xnat-archive"]["persistentVolumeClaim"]["claimName"] == "xnat-archive"
    terms = m["pod"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": CONTROL_PLANE_LABEL, "operator": "Exists"},
        {"key": "gpu", "operator": "NotIn", "values": ["no"]},
    ]


async def test_every_spawn_starts_from_the_configuration(xnat_standin: XnatStandin, hub_config: Config) -> None:
    """The default server's spawner object is reused: nothing of the first launch may survive into the next."""
    spawner = make_spawner(hub_config, server="")
    xnat_standin.set_user_options(USER, "", user_options(
        USER, "", command="voila /app", mounts=project_mounts(USER), env={"FIRST": "1"},
        generic_resources={"gpu": 1}, constraints=["node.labels.gpu==yes"],
    ))
    await spawner.load_user_options()
    first = await manifest(spawner)
    assert GPU_RESOURCE in first["container"]["resources"]["limits"] and "xnat-archive" in first["volumes"]

    xnat_standin.set_user_options(USER, "", user_options(
        USER, "", image=None, cpu_limit=None, cpu_reservation=None, mem_limit=None, mem_reservation=None,
    ))
    await spawner.load_user_options()
    second = await manifest(spawner)
    container = second["container"]
    assert container["image"] == "quay.io/jupyterhub/k8s-singleuser-sample:4.4.0"
    assert container["args"][0] == "jupyterhub-singleuser"
    assert not container["resources"].get("limits")
    assert "FIRST" not in second["env"] and second["env"]["CONFIGURED"] == "yes"
    assert set(second["volumes"]) == {"home"} and set(second["mounts"]) == {f"/workspace/{USER}"}
    assert "affinity" not in second["pod"]["spec"]


async def test_refused_launch_fails_the_spawn_and_changes_nothing(
    xnat_standin: XnatStandin, hub_config: Config
) -> None:
    spawner = make_spawner(hub_config)
    before = await manifest(spawner)
    xnat_standin.set_user_options(USER, SERVER, user_options(
        USER, SERVER, generic_resources={"gpu": 1},
        mounts=[mount("/data/xnat/archive/PRJ1/arc001", "/data/exp", read_only=True),
                mount("/srv/elsewhere", "/data/else", read_only=True)],
    ))
    with pytest.raises(SpawnRefused) as refused:
        await spawner.load_user_options()
    assert refused.value.status_code == 400
    assert refused.value.jupyterhub_message == (
        "The launch options XNAT holds for this server cannot be used: mount source /srv/elsewhere is outside "
        "XNAT's archive (/data/xnat/archive), the only directory this hub can mount on Kubernetes"
    )
    after = await manifest(spawner)
    assert after["container"] == before["container"] and after["volumes"] == before["volumes"]


async def test_no_stored_options_fails_the_spawn_with_xnats_message(hub_config: Config) -> None:
    spawner = make_spawner(hub_config)
    with pytest.raises(SpawnRefused) as refused:
        await spawner.load_user_options()
    assert refused.value.status_code == 404
    assert refused.value.jupyterhub_message == (
        "XNAT has no launch options stored for this server. Start it again from XNAT."
    )


async def test_xnat_down_fails_the_spawn_with_a_message(xnat_standin: XnatStandin, hub_config: Config) -> None:
    xnat_standin.set_fault(down=True)
    with pytest.raises(SpawnRefused) as refused:
        await make_spawner(hub_config).load_user_options()
    assert refused.value.status_code == 502 and "XNAT" in refused.value.jupyterhub_message


async def test_env_layers_as_on_swarm(
    xnat_standin: XnatStandin, hub_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """XNAT adds variables but never replaces JupyterHub's (API token, URLs) or the operator's."""
    monkeypatch.setenv("JH_ALLOW_TOKEN_IN_URL", "false")
    xnat_standin.set_user_options(USER, SERVER, user_options(
        USER, SERVER, env={"JUPYTERHUB_API_TOKEN": "forged", "JUPYTERHUB_API_URL": "http://evil/", "CONFIGURED": "no"}))
    spawner = make_spawner(hub_config)
    await spawner.load_user_options()
    env = (await manifest(spawner))["env"]
    assert env["JUPYTERHUB_API_TOKEN"] == spawner.api_token
    assert env["JUPYTERHUB_API_URL"] != "http://evil/"
    assert env["CONFIGURED"] == "yes"
    assert env["JUPYTERHUB_ALLOW_TOKEN_IN_URL"] == "0"


async def test_start_body_never_chooses_anything(xnat_standin: XnatStandin, hub_config: Config) -> None:
    """The body XNAT (or anyone with the servers scope) POSTs is echoed back, never applied (as on Swarm)."""
    hub_config.KubeSpawner.profile_list = [
        {"display_name": "root", "slug": "root", "kubespawner_override": {"image": "attacker/rootkit", "uid": 0}}]
    xnat_standin.set_user_options(USER, SERVER, user_options(USER, SERVER, image="xnat/notebook:1"))
    spawner = make_spawner(hub_config)
    hostile = {**start_request_body(event_tracking_id=SERVER), "profile": "root", "image": "attacker/rootkit",
               "task_template": {"container_spec": {"image": "attacker/rootkit", "mounts": [mount("/", "/host")]}}}
    spawner.user_options = dict(hostile)
    await spawner._run_apply_user_options(spawner.user_options)  # as JupyterHub does before start()
    await spawner.load_user_options()
    container = (await manifest(spawner))["container"]
    assert container["image"] == "xnat/notebook:1"
    assert container.get("securityContext", {}).get("runAsUser") != 0
    assert set((await manifest(spawner))["mounts"]) == {f"/workspace/{USER}"}
    # echoed back flat, as XNAT's plugin must read it
    assert spawner.user_options == {**hostile, "task_template": json.dumps(hostile["task_template"], sort_keys=True)}


async def test_the_swarm_full_case_on_kubernetes(xnat_standin: XnatStandin, hub_config: Config) -> None:
    """The Swarm tests' everything-set case: refused for its named resource (Kubernetes has none, and says so);
    without it, and with a claim for its Docker volume, every field reaches the pod."""
    from tests.helpers.spawner import full_options

    xnat_standin.set_user_options(USER, SERVER, full_options(USER, SERVER))
    with pytest.raises(SpawnRefused) as refused:
        await make_spawner(hub_config).load_user_options()
    assert "generic resource 'fpga' names one specific device" in refused.value.jupyterhub_message

    options = full_options(USER, SERVER)
    del options["task_template"]["resources"]["generic_resources"]["fpga"]
    xnat_standin.set_user_options(USER, SERVER, options)
    hub_config.XnatKubeSpawner.volume_claims = {"xnat-models": "models"}
    spawner = make_spawner(hub_config)
    await spawner.load_user_options()
    m = await manifest(spawner)
    assert m["container"]["image"] == "registry.example.org/xnat/datascience-notebook:1.2"
    assert m["container"]["args"][:4] == [
        "jupyterhub-singleuser", "--ServerApp.terminals_enabled=False", "--notebook-dir", "/workspace/My Files"]
    assert m["env"]["EXTRA"] == "value"
    assert m["pod"]["metadata"]["labels"]["org.example.project"] == "PRJ1"
    assert m["container"]["resources"]["limits"] == {"cpu": 2.0, "memory": 2 * 1024**3, GPU_RESOURCE: "1"}
    assert m["container"]["resources"]["requests"] == {"cpu": 0.5, "memory": 512 * 1024**2, GPU_RESOURCE: "1"}
    assert set(m["mounts"]) == {f"/workspace/{USER}", "/data/projects/PRJ1/experiments",
                                "/data/projects/PRJ1/resources", "/data/projects/PRJ1/subjects", "/opt/models"}
    assert m["volumes"]["xnat-claim-0"]["persistentVolumeClaim"]["claimName"] == "models"


async def test_archive_settings_from_the_environment(
    xnat_standin: XnatStandin, hub_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    del hub_config.XnatKubeSpawner["archive_claim"]
    monkeypatch.setenv("JH_XNAT_ARCHIVE_PVC", "site-archive")
    monkeypatch.setenv("JH_XNAT_ARCHIVE_ROOT", "/mnt/archive/")
    xnat_standin.set_user_options(USER, SERVER, user_options(
        USER, SERVER, mounts=[mount("/mnt/archive/P1/arc001", "/data/exp", read_only=True)]))
    spawner = make_spawner(hub_config)
    await spawner.load_user_options()
    m = await manifest(spawner)
    assert m["mounts"]["/data/exp"]["subPath"] == "P1/arc001"
    assert m["volumes"]["xnat-archive"]["persistentVolumeClaim"]["claimName"] == "site-archive"


def test_relative_archive_root_is_a_configuration_error(kubeconfig: None) -> None:
    from traitlets import TraitError

    c = Config()
    c.XnatKubeSpawner.archive_root = "data/xnat/archive"
    with pytest.raises(TraitError, match="archive_root must be an absolute path"):
        make_spawner(c)

