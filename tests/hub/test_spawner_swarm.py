"""XnatSwarmSpawner against the real swarm: XNAT's options (from the stand-in) become a service that Docker runs,
rejected tasks fail fast with Docker's own words, and nothing is left behind.

Every service, network, image, volume and host directory is ours (prefix `xnatjh-spt`) and removed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from hub.launch import SpawnRefused, flat_user_options
from hub.spawner import XnatSwarmSpawner
from hub.standin.options import mount, start_request_body
from tests.helpers.spawner import PREFIX, Xnat, light_options, make_spawner, services_of
from tests.helpers.waiting import wait_for
from xjh_contract import LABEL_SERVER, LABEL_USER

pytestmark = [pytest.mark.docker, pytest.mark.timeout(120), pytest.mark.usefixtures("spawner_env")]

SERVER = "20240615T101530123Z"


def a_user() -> str:
    """A fresh mixed-case user per test, so that parallel runs never share a service name."""
    return f"Spt{secrets.token_hex(3)}.Alice"


def spawner_for(user: str, network: str, cleanup: list[str], **traits: Any) -> XnatSwarmSpawner:
    # `sleep` as PID 1 ignores SIGTERM: a short grace period spares each removal Docker's 10 s default
    traits.setdefault("extra_container_spec", {"stop_grace_period": 1_000_000_000})
    spawner = make_spawner(user, SERVER, prefix=PREFIX, network_name=network, **traits)
    cleanup.append(spawner.service_name)
    return spawner


def gone(docker_api: Any, name: str) -> bool:
    try:
        docker_api.inspect_service(name)
    except docker.errors.NotFound:
        return True
    return False


async def events_so_far(events: Any) -> list[dict[str, Any]]:
    """The progress events already reported (the generator then waits for more)."""
    seen = []
    while True:
        try:
            seen.append(await asyncio.wait_for(anext(events), 0.1))
        except TimeoutError:
            await events.aclose()
            return seen


def running_container(docker_api: Any, service: str) -> dict[str, Any]:
    tasks = docker_api.tasks(filters={"service": service, "desired-state": "running"})
    running = [t for t in tasks if t["Status"]["State"] == "running"]
    assert len(running) == 1, tasks
    return docker_api.inspect_container(running[0]["Status"]["ContainerStatus"]["ContainerID"])


async def test_xnat_options_become_the_running_service(
    xnat: Xnat, docker_api: Any, sleep_image: str, swarm_network: str, host_dirs: Path, cleanup_services: list[str]
) -> None:
    user = a_user()
    workspace, archive = host_dirs / "workspaces" / user, host_dirs / "archive" / "PRJ1"
    workspace.mkdir(parents=True)
    archive.mkdir(parents=True)
    volume = f"{PREFIX}-vol-{secrets.token_hex(3)}"
    xnat.standin.set_user_options(user, SERVER, light_options(
        user, SERVER,
        image=sleep_image,
        command='/bin/sleep "600"',
        env={"EXTRA": "from XNAT"},
        labels={"org.example.project": "PRJ1"},
        mounts=[
            mount(str(workspace), f"/workspace/{user}"),
            mount(str(archive), "/data/projects/PRJ1", read_only=True),
            mount(volume, "/opt/models", read_only=True, type="volume"),
        ],
        # limits only: reservations make placement depend on what else runs on this shared machine
        # (they are checked on a service that is never placed, below)
        cpu_limit=0.5, cpu_reservation=None, mem_limit="64M", mem_reservation=None,
        constraints=["node.role==manager", f"node.labels.{PREFIX}-absent!=yes"],
    ))
    spawner = spawner_for(user, swarm_network, cleanup_services, mount_allowed_prefixes=[str(host_dirs)])
    hostile_body = {**start_request_body(event_tracking_id=SERVER), "image": "attacker/rootkit", "user": "0",
                    "mounts": [mount("/", "/host")]}
    spawner.user_options = dict(hostile_body)

    events = spawner.progress()
    try:
        assert await spawner.start() == (spawner.service_name, 8888)
        assert spawner.user_options == flat_user_options(hostile_body)  # unchanged, but flat for the plugin
        messages = [event["message"] for event in await events_so_far(events)]
        assert messages[:2] == ["Fetching the launch options from XNAT",
                                f"Creating the service {spawner.service_name} from {sleep_image}"]
        assert messages[-1] == "The notebook is running; waiting for it to answer"

        service = docker_api.inspect_service(spawner.service_name)
        spec = service["Spec"]
        task, container = spec["TaskTemplate"], spec["TaskTemplate"]["ContainerSpec"]
        assert container["Image"].split("@")[0] == sleep_image
        assert container["Args"] == ["/bin/sleep", "600"]
        assert "User" not in container
        env = dict(line.split("=", 1) for line in container["Env"])
        assert env["EXTRA"] == "from XNAT" and env["JUPYTERHUB_USER"] == user
        ours = {LABEL_USER: user, LABEL_SERVER: SERVER}
        assert spec["Labels"] == container["Labels"] == {"org.example.project": "PRJ1", **ours}
        mounts = {m["Target"]: m for m in container["Mounts"]}
        assert mounts[f"/workspace/{user}"] == {"Type": "bind", "Source": str(workspace),
                                                "Target": f"/workspace/{user}"}
        assert mounts["/data/projects/PRJ1"] == {"Type": "bind", "Source": str(archive),
                                                 "Target": "/data/projects/PRJ1", "ReadOnly": True}
        assert mounts["/opt/models"] == {"Type": "volume", "Source": volume, "Target": "/opt/models",
                                         "ReadOnly": True}
        assert task["Resources"] == {"Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 64 * 1024**2}}
        assert task["Placement"]["Constraints"] == ["node.role==manager", f"node.labels.{PREFIX}-absent!=yes"]
        network_id = docker_api.inspect_network(swarm_network)["Id"]
        assert [n["Target"] for n in task["Networks"]] == [network_id]
        assert spec["EndpointSpec"] == {"Mode": "dnsrr"}

        # the engine applied them: read-only where XNAT said so
        running = {m["Destination"]: m for m in running_container(docker_api, spawner.service_name)["Mounts"]}
        assert running[f"/workspace/{user}"]["RW"] is True
        assert running["/data/projects/PRJ1"]["RW"] is False
        assert running["/opt/models"]["RW"] is False and running["/opt/models"]["Name"] == volume
    finally:
        await spawner.stop()
        assert gone(docker_api, spawner.service_name)
        wait_for(lambda: not docker_api.containers(all=True, filters={"volume": volume}), 30, "the container to go")
        with contextlib.suppress(docker.errors.NotFound):
            docker_api.remove_volume(volume)


async def test_respawn_of_the_same_server_starts_from_scratch(
    xnat: Xnat, docker_api: Any, sleep_image: str, swarm_network: str, host_dirs: Path, cleanup_services: list[str]
) -> None:
    user = a_user()
    spawner = spawner_for(user, swarm_network, cleanup_services, mount_allowed_prefixes=[str(host_dirs)])
    xnat.standin.set_user_options(user, SERVER, light_options(
        user, SERVER, image=sleep_image, command="/bin/sleep 600", env={"FIRST": "1"}, labels={"first": "1"},
        mounts=[mount(str(host_dirs), "/first", read_only=True)], constraints=["node.role==manager"],
    ))
    await spawner.start()
    await spawner.stop()

    xnat.standin.set_user_options(user, SERVER, light_options(
        user, SERVER, image=sleep_image, command="/bin/sleep 601", env={}, cpu_limit=None, cpu_reservation=None,
        mem_limit=None, mem_reservation=None,
    ))
    try:
        await spawner.start()
        spec = docker_api.inspect_service(spawner.service_name)["Spec"]
        task, container = spec["TaskTemplate"], spec["TaskTemplate"]["ContainerSpec"]
        assert container["Args"] == ["/bin/sleep", "601"]
        assert "Mounts" not in container
        assert not any(line.startswith("FIRST=") for line in container["Env"])
        assert spec["Labels"] == container["Labels"] == {LABEL_USER: user, LABEL_SERVER: SERVER}
        assert not task.get("Resources") and not task.get("Placement", {}).get("Constraints")
    finally:
        await spawner.stop()


async def expect_fast_failure(spawner: XnatSwarmSpawner, docker_api: Any) -> SpawnRefused:
    started = time.monotonic()
    with pytest.raises(SpawnRefused) as info:
        await spawner.start()
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert gone(docker_api, spawner.service_name)  # nothing left behind
    assert spawner.object_id == ""
    return info.value


async def test_rejected_task_fails_fast_with_dockers_error(
    xnat: Xnat, docker_api: Any, sleep_image: str, swarm_network: str, host_dirs: Path, cleanup_services: list[str]
) -> None:
    user = a_user()
    missing = host_dirs / "not-there"
    xnat.standin.set_user_options(user, SERVER, light_options(
        user, SERVER, image=sleep_image, command="/bin/sleep 600", mounts=[mount(str(missing), "/data")]
    ))
    spawner = spawner_for(user, swarm_network, cleanup_services, mount_allowed_prefixes=[str(host_dirs)])
    error = await expect_fast_failure(spawner, docker_api)
    assert error.jupyterhub_message.startswith("Docker rejected the notebook: ")
    assert f"bind source path does not exist: {missing}" in error.jupyterhub_message


async def test_unsatisfiable_constraint_fails_fast_with_dockers_error(
    xnat: Xnat, docker_api: Any, sleep_image: str, swarm_network: str, cleanup_services: list[str]
) -> None:
    user = a_user()
    xnat.standin.set_user_options(user, SERVER, light_options(
        user, SERVER, image=sleep_image, command="/bin/sleep 600", constraints=[f"node.labels.{PREFIX}-gpu==yes"]
    ))
    spawner = spawner_for(user, swarm_network, cleanup_services)
    error = await expect_fast_failure(spawner, docker_api)
    assert error.jupyterhub_message.startswith("Docker cannot place the notebook: no suitable node")


async def test_reservations_and_generic_resources_reach_the_service(
    xnat: Xnat, docker_api: Any, sleep_image: str, swarm_network: str, cleanup_services: list[str]
) -> None:
    user = a_user()
    xnat.standin.set_user_options(user, SERVER, light_options(
        user, SERVER, image=sleep_image, command="/bin/sleep 600", generic_resources={"gpu": "2", "fpga": "board-7"},
        cpu_limit=1.0, cpu_reservation=0.25, mem_limit="1G", mem_reservation="256M",
    ))
    spawner = spawner_for(user, swarm_network, cleanup_services)
    # no node here advertises these resources, so the task would never run: inspect the created service only
    spawner.launch = await spawner.fetch_launch()
    service = await spawner.create_object()
    try:
        resources = docker_api.inspect_service(service["ID"])["Spec"]["TaskTemplate"]["Resources"]
        assert resources["Limits"] == {"NanoCPUs": 1_000_000_000, "MemoryBytes": 1024**3}
        assert resources["Reservations"]["NanoCPUs"] == 250_000_000
        assert resources["Reservations"]["MemoryBytes"] == 256 * 1024**2
        assert sorted(resources["Reservations"]["GenericResources"], key=str) == sorted(
            [{"DiscreteResourceSpec": {"Kind": "gpu", "Value": 2}},
             {"NamedResourceSpec": {"Kind": "fpga", "Value": "board-7"}}], key=str
        )
    finally:
        docker_api.remove_service(service["ID"])


async def test_refused_spawn_creates_nothing(
    xnat: Xnat, docker_api: Any, sleep_image: str, swarm_network: str, cleanup_services: list[str]
) -> None:
    user = a_user()
    spawner = spawner_for(user, swarm_network, cleanup_services)
    with pytest.raises(SpawnRefused, match="no launch options"):
        await spawner.start()  # nothing stored in XNAT
    xnat.standin.set_user_options(user, SERVER, light_options(user, SERVER, image=sleep_image,
                                                             mounts=[mount("/var/run/docker.sock", "/s")]))
    with pytest.raises(SpawnRefused, match="Docker socket"):
        await spawner.start()
    assert services_of(docker_api, user) == []


async def test_container_that_cannot_start_fails_the_spawn_at_once(
    xnat: Xnat, docker_api: Any, sleep_image: str, swarm_network: str, cleanup_services: list[str]
) -> None:
    """A command the container cannot start: the task fails without ever running."""
    user = a_user()
    xnat.standin.set_user_options(user, SERVER, light_options(user, SERVER, image=sleep_image,
                                                             command="/opt/conda/bin/start-notebook.py"))
    spawner = spawner_for(user, swarm_network, cleanup_services)
    error = await expect_fast_failure(spawner, docker_api)
    assert error.jupyterhub_message.startswith("The notebook stopped before it was ready (failed): ")
    assert "/opt/conda/bin/start-notebook.py" in error.jupyterhub_message


async def test_start_timeout_cancellation_leaves_nothing_behind(
    xnat: Xnat, docker_api: Any, sleep_image: str, swarm_network: str, host_dirs: Path, cleanup_services: list[str]
) -> None:
    """JupyterHub cancels start() after start_timeout; the half-made service must go with it."""
    user = a_user()
    xnat.standin.set_user_options(user, SERVER, light_options(
        user, SERVER, image=sleep_image, command="/bin/sleep 600", mounts=[mount(str(host_dirs / "nope"), "/d")]
    ))
    spawner = spawner_for(user, swarm_network, cleanup_services, rejected_task_timeout=600,
                          mount_allowed_prefixes=[str(host_dirs)])
    start = asyncio.ensure_future(spawner.start())
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(start, timeout=3)
    assert gone(docker_api, spawner.service_name)


async def test_docker_refusing_the_service_is_a_clear_message(
    xnat: Xnat, docker_api: Any, sleep_image: str, swarm_network: str, cleanup_services: list[str]
) -> None:
    user = "Spt" + "X" * 40 + secrets.token_hex(3)  # escaped, far longer than a DNS label's 63 characters
    xnat.standin.set_user_options(user, SERVER, light_options(user, SERVER, image=sleep_image, command="/bin/sleep 1"))
    spawner = spawner_for(user, swarm_network, cleanup_services)
    with pytest.raises(SpawnRefused) as info:
        await spawner.start()
    assert info.value.jupyterhub_message.startswith("Docker refused to create the notebook service: ")
    assert services_of(docker_api, user) == []
