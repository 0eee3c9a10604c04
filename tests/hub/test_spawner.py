"""XnatSwarmSpawner without Docker: options from the XNAT stand-in over real HTTP, turned into the exact
`create_service` arguments (`service_spec()`, which is what `create_object()` sends)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import Any, cast

import pytest
from docker.types import Mount
from jupyterhub.utils import format_exception
from traitlets import TraitError

from hub.launch import SpawnRefused
from hub.settings import SettingsError
from hub.spawner import XnatSwarmSpawner
from hub.standin.options import mount, start_request_body, user_options
from tests.helpers.spawner import Xnat, full_options, make_spawner
from xjh_contract import LABEL_SERVER, LABEL_USER

pytestmark = pytest.mark.usefixtures("spawner_env")

USER = "Alice.Smith"
SERVER = "20240615T101530123Z"


def env_of(spec: dict[str, Any]) -> dict[str, str]:
    lines = spec["task_template"]["ContainerSpec"]["Env"]
    return dict(line.split("=", 1) for line in lines)


async def launched(spawner: XnatSwarmSpawner) -> dict[str, Any]:
    """What start() sends to Docker for this spawn: fetch XNAT's launch, then build the service."""
    spawner.launch = await spawner.fetch_launch()
    return await spawner.service_spec()


# -- the service built from XNAT's options ---------------------------------------------------------------------


async def test_every_task_template_field_reaches_the_service(xnat: Xnat) -> None:
    xnat.standin.set_user_options(USER, SERVER, full_options())
    spec = await launched(make_spawner(USER, SERVER))
    task = spec["task_template"]
    container = task["ContainerSpec"]

    assert container["Image"] == "registry.example.org/xnat/datascience-notebook:1.2"
    # split like a shell: the quoted path stays one argument; passed as args, so the image's entrypoint runs
    assert container["Args"] == [
        "jupyterhub-singleuser", "--ServerApp.terminals_enabled=False", "--notebook-dir", "/workspace/My Files"
    ]
    assert container.get("Command") is None
    env = env_of(spec)
    assert env["EXTRA"] == "value" and env["XNAT_DATA"] == "/data" and env["XNAT_ITEM_ID"] == "PRJ1"
    assert env["JUPYTERHUB_ROOT_DIR"] == f"/workspace/{USER}"
    ours = {LABEL_USER: USER, LABEL_SERVER: SERVER}
    assert container["Labels"] == {"org.example.project": "PRJ1", **ours}
    assert spec["labels"] == {"org.example.project": "PRJ1", **ours}
    assert container["Mounts"] == [
        {"Type": "bind", "Source": f"/data/xnat/workspaces/users/{USER}", "Target": f"/workspace/{USER}",
         "ReadOnly": False},
        {"Type": "bind", "Source": "/data/xnat/archive/PRJ1/arc001", "Target": "/data/projects/PRJ1/experiments",
         "ReadOnly": True},
        {"Type": "bind", "Source": "/data/xnat/archive/PRJ1/resources", "Target": "/data/projects/PRJ1/resources",
         "ReadOnly": True},
        {"Type": "bind", "Source": "/data/xnat/archive/PRJ1/subjects", "Target": "/data/projects/PRJ1/subjects",
         "ReadOnly": True},
        {"Type": "volume", "Source": "xnat-models", "Target": "/opt/models", "ReadOnly": True},
    ]
    assert task["Resources"]["Limits"] == {"NanoCPUs": 2_000_000_000, "MemoryBytes": 2 * 1024**3}
    reservations = task["Resources"]["Reservations"]
    assert reservations["NanoCPUs"] == 500_000_000 and reservations["MemoryBytes"] == 512 * 1024**2
    assert sorted(reservations["GenericResources"], key=str) == sorted(
        [{"DiscreteResourceSpec": {"Kind": "gpu", "Value": 1}},
         {"NamedResourceSpec": {"Kind": "fpga", "Value": "board-7"}}], key=str
    )
    assert task["Placement"] == {"Constraints": ["node.role==manager", "node.labels.gpu!=no"]}
    assert task["Networks"] == [{"Target": "jupyterhub-network"}]
    assert spec["endpoint_spec"] == {"Mode": "dnsrr"}  # and no published ports
    assert spec["name"] == f"jupyter--41lice-2e-53mith--{SERVER.lower()}"
    # the env tells the notebook its real limits (XNAT's, not the hub's defaults)
    assert env["MEM_LIMIT"] == str(2 * 1024**3) and env["CPU_LIMIT"] == "2" and env["CPU_GUARANTEE"] == "0.5"


async def test_fresh_spec_on_respawn_carries_nothing_over(xnat: Xnat) -> None:
    spawner = make_spawner(USER, SERVER)
    xnat.standin.set_user_options(USER, SERVER, full_options())
    first = await launched(spawner)
    assert first["task_template"]["ContainerSpec"]["Mounts"]

    xnat.standin.set_user_options(
        USER, SERVER,
        user_options(USER, SERVER, image=None, env={}, cpu_limit=None, cpu_reservation=None, mem_limit=None,
                     mem_reservation=None),
    )
    second = await launched(spawner)
    container, task = second["task_template"]["ContainerSpec"], second["task_template"]
    assert container["Image"] == spawner.image  # XNAT gave none: the configured default, not the last one
    assert container.get("Args") is None  # the image's own command
    assert not container.get("Mounts")
    assert "EXTRA" not in env_of(second) and "MEM_LIMIT" not in env_of(second)
    assert container["Labels"] == second["labels"] == {LABEL_USER: USER, LABEL_SERVER: SERVER}
    assert not task.get("Resources")
    assert "Placement" not in task or not task["Placement"].get("Constraints")
    # and the configuration itself was never touched
    assert spawner.volumes == {} and spawner.environment == {} and spawner.extra_placement_spec == {}


async def test_start_body_never_chooses_image_mounts_or_user(xnat: Xnat) -> None:
    xnat.standin.set_user_options(USER, SERVER, user_options(USER, SERVER, image="xnat/notebook:1"))
    spawner = make_spawner(USER, SERVER)
    hostile = {
        **start_request_body(event_tracking_id=SERVER),
        "image": "attacker/rootkit:latest",
        "mounts": [{"source": "/", "target": "/host", "type": "bind"}],
        "volumes": {"/": "/host"},
        "user": "0",
        "task_template": {"container_spec": {"image": "attacker/rootkit", "mounts": [mount("/", "/host")]}},
    }
    spawner.user_options = dict(hostile)
    await spawner._run_apply_user_options(spawner.user_options)  # as JupyterHub does before start()
    spec = await launched(spawner)
    container = spec["task_template"]["ContainerSpec"]
    assert container["Image"] == "xnat/notebook:1"
    assert not container.get("Mounts") and "User" not in container
    # echoed back in the server model (XNAT reads eventTrackingId), flat as XNAT's plugin must read it
    assert spawner.user_options == {**hostile, "mounts": json.dumps(hostile["mounts"], sort_keys=True),
                                    "volumes": '{"/": "/host"}',
                                    "task_template": json.dumps(hostile["task_template"], sort_keys=True)}


def test_allowed_images_must_stay_empty() -> None:
    with pytest.raises(TraitError, match="CVE-2023-48311"):
        make_spawner(allowed_images=["attacker/rootkit"])
    with pytest.raises(TraitError, match="allowed_images must stay empty"):
        make_spawner(allowed_images="*")


async def test_username_case_and_default_server_reach_xnat(xnat: Xnat) -> None:
    xnat.standin.set_user_options(USER, "", user_options(USER, "", image="xnat/default:1"))
    xnat.standin.set_user_options("alice.smith", "", user_options("alice.smith", "", image="xnat/wrong:1"))
    spec = await launched(make_spawner(USER, ""))
    assert spec["task_template"]["ContainerSpec"]["Image"] == "xnat/default:1"
    paths = [r["path"] for r in xnat.standin.requests if "user-options" in r["path"]]
    assert paths == [f"/xapi/jupyterhub/users/{USER}/server/user-options"]


# -- refusals ------------------------------------------------------------------------------------------------


async def refusal(spawner: XnatSwarmSpawner) -> SpawnRefused:
    with pytest.raises(SpawnRefused) as info:
        await spawner.start()
    message, _html = format_exception(info.value)  # what JupyterHub puts in the progress stream
    assert message == info.value.jupyterhub_message
    assert "Traceback" not in message and "HTTP " not in message
    return info.value


async def test_missing_options_are_refused_before_docker(xnat: Xnat) -> None:
    error = await refusal(make_spawner(USER, SERVER, client_kwargs={"base_url": "unix:///nonexistent.sock"}))
    assert error.status_code == 404
    assert "no launch options" in error.jupyterhub_message


async def test_xnat_down_is_refused(xnat: Xnat) -> None:
    xnat.standin.set_user_options(USER, SERVER, full_options())
    xnat.standin.set_fault(down=True)
    error = await refusal(make_spawner(USER, SERVER))
    assert error.status_code == 502 and "XNAT is unreachable" in error.jupyterhub_message


async def test_refused_mount_names_the_reason(xnat: Xnat) -> None:
    xnat.standin.set_user_options(USER, SERVER, user_options(USER, SERVER, mounts=[mount("/etc", "/x")]))
    error = await refusal(make_spawner(USER, SERVER))
    assert error.status_code == 400
    assert error.jupyterhub_message == (
        "The launch options XNAT holds for this server cannot be used: "
        "mount source /etc lies in the system directory /etc, which is not allowed"
    )


async def test_mount_outside_allowed_prefixes_is_refused(xnat: Xnat) -> None:
    xnat.standin.set_user_options(USER, SERVER, full_options())
    error = await refusal(make_spawner(USER, SERVER, mount_allowed_prefixes=["/data/xnat/archive"]))
    assert "outside the directories this hub may mount (/data/xnat/archive)" in error.jupyterhub_message
    spawner = make_spawner(USER, SERVER, mount_allowed_prefixes=["/data/xnat/archive", "/data/xnat/workspaces/"])
    assert len((await launched(spawner))["task_template"]["ContainerSpec"]["Mounts"]) == 5


async def test_invalid_value_is_refused(xnat: Xnat) -> None:
    xnat.standin.set_user_options(USER, SERVER, user_options(USER, SERVER, mem_limit="lots"))
    error = await refusal(make_spawner(USER, SERVER))
    assert "resources.mem_limit must be a size such as 2G or 512M, got 'lots'" in error.jupyterhub_message


async def test_garbage_from_xnat_is_refused(xnat: Xnat) -> None:
    xnat.standin.set_user_options(USER, SERVER, full_options())
    xnat.standin.set_fault(garbage="wrong-types")
    error = await refusal(make_spawner(USER, SERVER))
    assert error.status_code == 400 and "cannot be used" in error.jupyterhub_message


# -- environment, identity ---------------------------------------------------------------------------------------


async def test_env_never_holds_the_service_password_and_hub_values_win(xnat: Xnat, monkeypatch: Any) -> None:
    monkeypatch.setenv("JH_XNAT_PASSWORD", xnat.service_password)
    options = full_options()
    options["task_template"]["container_spec"]["env"]["JUPYTERHUB_API_TOKEN"] = "forged"
    xnat.standin.set_user_options(USER, SERVER, options)
    spawner = make_spawner(USER, SERVER)
    spec = await launched(spawner)
    env = env_of(spec)
    assert xnat.service_password not in "\n".join(spec["task_template"]["ContainerSpec"]["Env"])
    assert not any(key.startswith("JH_") for key in env)
    assert env["JUPYTERHUB_API_TOKEN"] == spawner.api_token
    assert env["JUPYTERHUB_ALLOW_TOKEN_IN_URL"] == "1"


async def test_token_in_url_can_be_turned_off(xnat: Xnat, monkeypatch: Any) -> None:
    xnat.standin.set_user_options(USER, SERVER, user_options(USER, SERVER))
    monkeypatch.setenv("JH_ALLOW_TOKEN_IN_URL", "false")
    assert env_of(await launched(make_spawner(USER, SERVER)))["JUPYTERHUB_ALLOW_TOKEN_IN_URL"] == "0"


@pytest.mark.parametrize(("uid", "gid", "applied"), [("1001", "1002", True), ("1001", "", False), ("", "100", False)])
async def test_nb_uid_gid_as_in_the_original(xnat: Xnat, monkeypatch: Any, uid: str, gid: str, applied: bool) -> None:
    monkeypatch.setenv("NB_UID", uid)
    monkeypatch.setenv("NB_GID", gid)
    xnat.standin.set_user_options(USER, SERVER, user_options(USER, SERVER))
    spec = await launched(make_spawner(USER, SERVER))
    container, env = spec["task_template"]["ContainerSpec"], env_of(spec)
    if applied:
        assert container["User"] == "0"  # root at start; the image's start script switches to NB_UID:NB_GID
        assert (env["NB_UID"], env["NB_GID"]) == ("1001", "1002")
    else:
        assert "User" not in container and "NB_UID" not in env and "NB_GID" not in env


def test_nb_uid_must_be_numeric() -> None:
    with pytest.raises(TraitError, match="NB_UID must be a number"):
        make_spawner(nb_uid="jovyan")


# -- configuration ---------------------------------------------------------------------------------------------


def test_defaults_from_the_environment(monkeypatch: Any) -> None:
    spawner = make_spawner()
    assert spawner.network_name == "jupyterhub-network"
    assert (spawner.start_timeout, spawner.http_timeout) == (180, 150)
    assert spawner.mount_allowed_prefixes == [] and spawner.rejected_task_timeout == 2.0
    assert spawner.use_internal_ip and spawner.allowed_images == {}

    monkeypatch.setenv("JH_NETWORK", "site-net")
    monkeypatch.setenv("JH_START_TIMEOUT", "300")
    monkeypatch.setenv("JH_HTTP_TIMEOUT", "30")
    monkeypatch.setenv("JH_MOUNT_ALLOWED_PREFIXES", "/data/xnat/archive/:/data/xnat/workspaces")
    monkeypatch.setenv("JH_REJECTED_TASK_TIMEOUT", "0")
    spawner = make_spawner()
    assert spawner.network_name == "site-net"
    assert (spawner.start_timeout, spawner.http_timeout) == (300, 30)
    assert spawner.mount_allowed_prefixes == ["/data/xnat/archive", "/data/xnat/workspaces"]
    assert spawner.rejected_task_timeout == 0.0


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("JH_MOUNT_ALLOWED_PREFIXES", "relative/dir", "absolute path"),
        ("JH_MOUNT_ALLOWED_PREFIXES", "/data/../etc", r"'\.\.'"),
        ("JH_START_TIMEOUT", "soon", "whole number"),
        ("JH_HTTP_TIMEOUT", "0", "greater than 0"),
        ("JH_REJECTED_TASK_TIMEOUT", "-1", "0 or more"),
        ("JH_ALLOW_TOKEN_IN_URL", "maybe", "true or false"),
    ],
)
def test_bad_environment_values_are_named(monkeypatch: Any, name: str, value: str, match: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises((SettingsError, TraitError), match=match):
        spawner = make_spawner()
        spawner.mount_allowed_prefixes, spawner.start_timeout, spawner.http_timeout  # noqa: B018
        spawner.rejected_task_timeout  # noqa: B018
        spawner.allow_token_in_url  # noqa: B018


async def test_operator_settings_are_the_defaults_under_xnat(xnat: Xnat) -> None:
    xnat.standin.set_user_options(
        USER, SERVER,
        user_options(USER, SERVER, cpu_limit=None, cpu_reservation=None, mem_limit="1G", mem_reservation=None,
                     constraints=["node.labels.gpu!=no"], generic_resources={"gpu": 2}),
    )
    spawner = make_spawner(
        USER, SERVER,
        cpu_limit=1.5,
        mem_limit="4G",
        environment={"TZ": "Europe/Amsterdam"},
        extra_placement_spec={"constraints": ["node.role==worker"]},
        extra_resources_spec={"generic_resources": {"gpu": 1, "ssd": 1}},
        volumes={"/srv/shared": {"bind": "/shared", "mode": "ro"}},
    )
    spec = await launched(spawner)
    task = spec["task_template"]
    assert task["Resources"]["Limits"] == {"NanoCPUs": 1_500_000_000, "MemoryBytes": 1024**3}  # XNAT's memory
    generic = task["Resources"]["Reservations"]["GenericResources"]
    assert {"DiscreteResourceSpec": {"Kind": "gpu", "Value": 2}} in generic
    assert {"DiscreteResourceSpec": {"Kind": "ssd", "Value": 1}} in generic
    assert task["Placement"]["Constraints"] == ["node.role==worker", "node.labels.gpu!=no"]
    assert env_of(spec)["TZ"] == "Europe/Amsterdam"
    assert task["ContainerSpec"]["Mounts"][0] == Mount("/shared", "/srv/shared", type="bind", read_only=True)


async def test_no_command_needs_no_image_inspection(xnat: Xnat) -> None:
    """With neither XNAT's nor a configured command, Docker runs the image's own: the hub never inspects an image
    that may only exist on another node."""
    xnat.standin.set_user_options(USER, SERVER, user_options(USER, SERVER, command=None))
    spawner = make_spawner(USER, SERVER, client_kwargs={"base_url": "unix:///nonexistent.sock"})
    spawner.launch = await spawner.fetch_launch()
    assert await spawner.get_command() is None
    spawner.cmd = ["start-notebook.sh"]
    assert await spawner.get_command() == ["start-notebook.sh"]


async def test_progress_tells_the_steps(xnat: Xnat) -> None:
    spawner = make_spawner(USER, SERVER)
    events = cast(AsyncGenerator[dict[str, Any], None], spawner.progress())
    with pytest.raises(SpawnRefused):
        await spawner.start()  # refused at the first step: no options in XNAT
    first = await asyncio.wait_for(anext(events), 1)
    assert first == {"progress": 5, "message": "Fetching the launch options from XNAT"}
    with pytest.raises(asyncio.TimeoutError):  # nothing more happened
        await asyncio.wait_for(anext(events), 0.2)
    await events.aclose()


class SpawnerWithoutDocker(XnatSwarmSpawner):
    _client = None  # its own cached Docker client, so the broken one never reaches other tests


async def test_docker_unreachable_is_a_clear_message(xnat: Xnat) -> None:
    xnat.standin.set_user_options(USER, SERVER, user_options(USER, SERVER))
    spawner = make_spawner(USER, SERVER)
    broken = SpawnerWithoutDocker(user=spawner.user, hub=spawner.hub, orm_spawner=spawner.orm_spawner,
                                  client_kwargs={"base_url": "unix:///nonexistent/docker.sock"})
    error = await refusal(broken)
    assert error.status_code == 503
    assert error.jupyterhub_message == (
        "The hub cannot reach Docker to start the notebook. Try again later, or tell your administrator."
    )
