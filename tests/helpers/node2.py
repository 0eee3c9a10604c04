"""Fixtures for the two-node tests (tests/node2, and other areas that need the second node, e.g. tests/faults'
console chaos run): an isolated swarm (scripts/node2.sh) of two engines in their own network
namespaces, a manager at 10.99.0.2 and a worker at 10.99.0.3, never the machine's shared engine.

`node2` brings that swarm up when it is not already up, and takes it down again at the end of the session only if
it brought it up. Everything a test creates on it carries the `xjh-n2` prefix and is removed by the test.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
NODE2 = ROOT / "scripts" / "node2.sh"
STATE_DIR = Path(os.environ.get("XJH_NODE2_DIR", "/var/tmp/xjh-node2"))
PREFIX = "xjh-n2"



@dataclass(frozen=True)
class Node2:
    manager: str  # DOCKER_HOST of the manager engine
    worker: str  # DOCKER_HOST of the worker engine
    image: str  # a ~2 MB image (dash + sleep) present on both engines
    manager_id: str
    worker_id: str

    def run(self, *args: str) -> str:
        """scripts/node2.sh ARGS; its output, or the test fails with it."""
        done = subprocess.run([str(NODE2), *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"node2.sh {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout


def _api(host: str) -> Any:
    import docker

    return docker.APIClient(base_url=host, version="auto", timeout=30)


def _answers(host: str) -> bool:
    try:
        api = _api(host)
        try:
            return api.info().get("Swarm", {}).get("LocalNodeState") == "active"
        finally:
            api.close()
    except Exception:
        return False


@pytest.fixture(scope="session")
def node2() -> Iterator[Node2]:
    if os.geteuid() != 0:
        pytest.skip("the isolated second node needs root (network namespaces and extra Docker engines)")
    if not shutil.which("dockerd") or not shutil.which("nsenter"):
        pytest.skip("no dockerd or nsenter on this machine; run scripts/engine.sh up first")
    manager, worker = f"unix://{STATE_DIR}/mgr/docker.sock", f"unix://{STATE_DIR}/wkr/docker.sock"
    started_here = not (_answers(manager) and _answers(worker))
    done = subprocess.run([str(NODE2), "up"], capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        pytest.fail(f"scripts/node2.sh up failed:\n{done.stdout}\n{done.stderr}")
    api = _api(manager)
    ids = {n["Spec"].get("Labels", {}).get("xjh.node"): n["ID"] for n in api.nodes()}
    api.close()
    try:
        yield Node2(manager, worker, "xjh-node2/tiny:1", ids["manager"], ids["worker"])
    finally:
        if started_here:
            subprocess.run([str(NODE2), "down"], capture_output=True, text=True, timeout=180)


@pytest.fixture
def manager_api(node2: Node2) -> Iterator[Any]:
    api = _api(node2.manager)
    yield api
    api.close()


@pytest.fixture
def node2_network(node2: Node2, manager_api: Any) -> Iterator[str]:
    """An attachable overlay network on the isolated swarm, removed afterwards."""
    import docker.errors

    name = f"{PREFIX}-net-{secrets.token_hex(3)}"
    manager_api.create_network(name, driver="overlay", attachable=True)
    yield name

    def removed() -> bool:
        try:
            manager_api.remove_network(name)
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError:  # in use until the last task's endpoint is gone
            return False
        return True

    wait_for(removed, 60, f"network {name} to be removable")


@pytest.fixture
def node2_services(manager_api: Any) -> Iterator[list[str]]:
    """Names of services a test created on the isolated swarm; removed (with their containers) afterwards."""
    import docker.errors

    names: list[str] = []
    yield names
    for name in names:
        try:
            manager_api.remove_service(name)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError:
            pass  # the manager may be the engine a test stopped; `node2.sh down` clears everything anyway

    def no_tasks(name: str) -> bool:
        try:
            return not manager_api.tasks(filters={"service": name})
        except docker.errors.NotFound:
            return True

    for name in names:
        wait_for(functools.partial(no_tasks, name), 60, f"the tasks of {name} to go")

