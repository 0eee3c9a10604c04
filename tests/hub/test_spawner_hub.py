"""What XNAT and the user see when a spawn goes through a real JupyterHub with XnatSwarmSpawner: the failure
message in the progress stream and in the start answer, and the start body echoed back in the server model.

One JupyterHub process (with configurable-http-proxy) per module, configured only for the spawner; XNAT's side
is the stand-in and `XnatPlugin`, making the plugin's own calls.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from hub.standin.options import mount, start_request_body
from tests.helpers.real_hub import SERVER, RealHub, a_user, start_failing
from tests.helpers.spawner import light_options, services_of
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.timeout(120)


async def test_missing_options_reach_the_user_cleanly(real_hub: RealHub) -> None:
    user = a_user()
    error, events = await start_failing(real_hub, user)
    message = "XNAT has no launch options stored for this server. Start it again from XNAT."
    assert error.status == 404 and message in str(error)
    assert events[-1] == {"progress": 100, "failed": True, "message": f"Spawn failed: {message}"}


async def test_refused_mount_reaches_the_user_cleanly(real_hub: RealHub) -> None:
    user = a_user()
    real_hub.standin.set_user_options(user, SERVER, light_options(user, SERVER, mounts=[mount("/etc", "/x")]))
    error, events = await start_failing(real_hub, user)
    assert error.status == 400
    assert events[-1]["failed"] is True
    assert events[-1]["message"] == (
        "Spawn failed: The launch options XNAT holds for this server cannot be used: "
        f"mount source /etc is outside the directories this hub may mount ({tempfile.gettempdir()})"
    )


@pytest.mark.docker
async def test_rejected_task_reaches_the_user_fast(real_hub: RealHub, sleep_image: str, docker_api: Any,
                                                   host_dirs: Path) -> None:
    user = a_user()
    missing = host_dirs / "gone"
    real_hub.standin.set_user_options(user, SERVER, light_options(
        user, SERVER, image=sleep_image, command="/bin/sleep 600", mounts=[mount(str(missing), "/data")]
    ))
    started = time.monotonic()
    _error, events = await start_failing(real_hub, user)
    assert time.monotonic() - started < 10
    assert events[-1]["failed"] is True
    assert events[-1]["message"].startswith("Spawn failed: Docker rejected the notebook: ")
    assert f"bind source path does not exist: {missing}" in events[-1]["message"]
    assert "Traceback" not in events[-1]["message"]
    assert services_of(docker_api, user) == []


@pytest.mark.docker
async def test_start_body_comes_back_unchanged_in_the_server_model(real_hub: RealHub, sleep_image: str,
                                                                   docker_api: Any) -> None:
    """The service runs (`sleep`, not a notebook), so the server stays pending while the hub waits for it to
    answer: long enough to read the model XNAT reads, then XNAT stops it."""
    user = a_user()
    real_hub.standin.set_user_options(user, SERVER, light_options(user, SERVER, image=sleep_image,
                                                                 command="/bin/sleep 600"))
    body = {**start_request_body(event_tracking_id=SERVER), "image": "attacker/rootkit"}
    async with real_hub.plugin() as xnat:
        await xnat.ensure_user(user)
        assert await xnat.start_server(user, SERVER, body) == 202
        model = await xnat.get_server(user, SERVER)
        assert model is not None and model["user_options"] == body
        service = wait_for(lambda: services_of(docker_api, user), 30, "the notebook service")
        assert service[0]["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0] == sleep_image
        await xnat.stop_server(user, SERVER)
        await xnat.wait_gone(user, SERVER)
    wait_for(lambda: services_of(docker_api, user) == [], 30, "the service to be removed")
