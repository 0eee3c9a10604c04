"""Helpers and fixtures for the XnatSwarmSpawner tests (tests/hub, tests/hostile, tests/node2).

- `make_spawner(user, server, **traits)`: a spawner as JupyterHub builds one, with a minimal user and hub.
- `xnat` fixture: the XNAT stand-in with the hub's service account, and the process-wide XnatClient pointed at
  it (closed and forgotten afterwards).
- Docker fixtures (`docker_api`, `sleep_image`, `swarm_network`, `host_dirs`): a tiny image imported from the
  host's own `sleep`, an attachable overlay network and bind-source directories, all with the `xnatjh-spt-` prefix
  and all removed at the end. Services the tests create are removed by `cleanup_services`.
- `spawner_env`: none of the spawner's variables set (a module asks for it with `usefixtures`).
"""

from __future__ import annotations

import contextlib
import functools
import io
import secrets
import shutil
import tarfile
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub import orm
from jupyterhub.objects import Hub

from hub.spawner import XnatSwarmSpawner
from hub.standin.options import mount, project_mounts, user_options
from hub.standin.server import SERVICE_ROLE, XnatStandin
from hub.xnat import XnatClient
from tests.helpers.waiting import wait_for
from xjh_contract import LABEL_USER

PREFIX = "xnatjh-spt"


def make_spawner(user: str = "Alice.Smith", server: str = "20240615T101530123Z", **traits: Any) -> XnatSwarmSpawner:
    """An XnatSwarmSpawner for `user`'s server `server` ("" = default), as JupyterHub would set it up."""
    hub_user = SimpleNamespace(name=user, url=f"/jupyterhub/user/{user}/", escaped_name=user)
    hub = Hub(base_url="/jupyterhub/hub/", connect_url="http://jupyterhub:8081/jupyterhub/hub/")
    traits.setdefault("api_token", secrets.token_hex(16))
    return XnatSwarmSpawner(user=hub_user, hub=hub, orm_spawner=orm.Spawner(name=server), **traits)


class Xnat(SimpleNamespace):
    standin: XnatStandin
    service_password: str


@pytest.fixture
async def xnat(xnat_standin: XnatStandin) -> AsyncIterator[Xnat]:
    """The stand-in with the hub's service account; the shared XnatClient talks to it."""
    password = secrets.token_urlsafe(16)
    xnat_standin.add_user("jupyterhub", password, [SERVICE_ROLE])
    XnatClient.clear_instance()
    client = XnatClient.instance(url=xnat_standin.url, service_username="jupyterhub", service_password=password)
    try:
        yield Xnat(standin=xnat_standin, service_password=password)
    finally:
        await client.aclose()
        XnatClient.clear_instance()


# -- Docker ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def docker_api() -> Iterator[Any]:
    """A low-level Docker client for a live swarm manager, or a skip saying why there is none."""
    import docker

    try:
        client = docker.APIClient(version="auto")
        info = client.info()
    except Exception as e:  # no engine at all
        pytest.skip(f"no Docker engine reachable ({e.__class__.__name__}); start one with scripts/engine.sh up")
    if info.get("Swarm", {}).get("ControlAvailable") is not True:
        pytest.skip("the Docker engine is not a swarm manager; run scripts/engine.sh up")
    yield client
    client.close()


@pytest.fixture(scope="session")
def sleep_image(docker_api: Any) -> Iterator[str]:
    """A ~2 MB image holding only the host's /bin/sleep and its libc, whose command sleeps for an hour."""
    tag = f"{PREFIX}/tiny:{secrets.token_hex(4)}"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in ("/bin/sleep", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"):
            tar.add(str(Path(path).resolve()), arcname=path.lstrip("/"))
    docker_api.import_image_from_data(
        buffer.getvalue(), repository=tag.split(":")[0], tag=tag.split(":")[1], changes=['CMD ["/bin/sleep", "3600"]']
    )
    yield tag
    docker_api.remove_image(tag, force=True)


@pytest.fixture(scope="session")
def swarm_network(docker_api: Any) -> Iterator[str]:
    """An attachable overlay network of our own (the deployment's JH_NETWORK stands in)."""
    name = f"{PREFIX}-net-{secrets.token_hex(4)}"
    docker_api.create_network(name, driver="overlay", attachable=True, labels={"org.xnat.jupyterhub.test": PREFIX})
    yield name

    import docker.errors

    def removed() -> bool:
        try:
            docker_api.remove_network(name)
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError:  # still in use while the last task's endpoint goes away
            return False
        return True

    wait_for(removed, 30, f"network {name} to be removable")


@pytest.fixture
def host_dirs() -> Iterator[Path]:
    """A fresh host directory for bind sources (the engine runs on this machine)."""
    root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def cleanup_services(docker_api: Any) -> Iterator[list[str]]:
    """Names of services a test created; whatever is left of them (and their volumes) is removed afterwards."""
    import docker.errors

    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(docker.errors.NotFound):
            docker_api.remove_service(name)
    def containers_gone(name: str) -> bool:
        return not docker_api.containers(all=True, filters={"label": f"com.docker.swarm.service.name={name}"})

    for name in names:
        wait_for(functools.partial(containers_gone, name), 30, f"the containers of {name} to go")


def services_of(docker_api: Any, user: str) -> list[dict[str, Any]]:
    """The swarm services labelled as belonging to hub user `user`."""
    return docker_api.services(filters={"label": f"{LABEL_USER}={user}"})


SPAWNER_VARIABLES = (
    "JH_NETWORK", "JH_START_TIMEOUT", "JH_HTTP_TIMEOUT", "NB_UID", "NB_GID", "JH_MOUNT_ALLOWED_PREFIXES",
    "JH_REJECTED_TASK_TIMEOUT", "JH_ALLOW_TOKEN_IN_URL",
)


@pytest.fixture
def spawner_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """None of the spawner's variables set, whatever the machine has (tests set what they need)."""
    for name in SPAWNER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def light_options(user: str, server: str, **fields: Any) -> dict[str, Any]:
    """XNAT's options without the stand-in's default 2 CPU / 2G reservations, which would keep a task from being
    placed on this shared 2-core machine whenever anything else runs."""
    for key in ("cpu_limit", "cpu_reservation", "mem_limit", "mem_reservation"):
        fields.setdefault(key, None)
    return user_options(user, server, **fields)


def full_options(user: str = "Alice.Smith", server: str = "20240615T101530123Z") -> dict[str, Any]:
    """XNAT's options using every field the spawner reads: mounts of both kinds, limits, resources, constraints."""
    return user_options(
        user,
        server,
        image="registry.example.org/xnat/datascience-notebook:1.2",
        command='jupyterhub-singleuser --ServerApp.terminals_enabled=False --notebook-dir "/workspace/My Files"',
        env={"EXTRA": "value"},
        labels={"org.example.project": "PRJ1"},
        mounts=[*project_mounts(user), mount("xnat-models", "/opt/models", read_only=True, type="volume")],
        cpu_limit=2.0,
        cpu_reservation=0.5,
        mem_limit="2G",
        mem_reservation="512M",
        generic_resources={"gpu": "1", "fpga": "board-7"},
        constraints=["node.role==manager", "node.labels.gpu!=no"],
    )
