"""1,000 generated launch options served by the XNAT stand-in over HTTP and taken through XnatSwarmSpawner.start(),
the path a real spawn takes (tests/hub/test_user_options_hypothesis.py checks the parser alone; its generators and
its mount check are reused here).

Every payload ends in a SpawnRefused whose user-facing message is clean (the hub puts it in the progress stream
as "Spawn failed: ...", checked through a real JupyterHub below): either refused before Docker is asked, or
accepted with every mount inside the allowed roots and then refused by Docker. Docker here is an engine that does
not exist (a socket path that is not there), so nothing is ever created and an accepted launch ends in the
spawner's "cannot reach Docker" refusal. Any other exception is a hub crash.

XNATJH_HYPOTHESIS_EXAMPLES=N runs N examples instead of 1,000 (and 25 through the real hub).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings

from hub.launch import SpawnRefused
from hub.spawner import XnatSwarmSpawner
from hub.standin.server import SERVICE_ROLE, XnatStandin
from hub.xnat import XnatClient
from tests.helpers.options_payloads import ALLOWED, PAYLOADS, check
from tests.helpers.real_hub import RealHub, a_user, start_failing
from tests.helpers.spawner import make_spawner

_OVERRIDE = os.environ.get("XNATJH_HYPOTHESIS_EXAMPLES")
SERVER = "20240615T101530123Z"
NO_DOCKER = "The hub cannot reach Docker to start the notebook. Try again later, or tell your administrator."
NO_ENGINE = f"unix://{tempfile.gettempdir()}/xjh-hostile-no-engine-{secrets.token_hex(4)}.sock"


class NoEngineSpawner(XnatSwarmSpawner):
    _client = None  # dockerspawner's client is per class: this one's points at an engine that is not there


class Rig:
    """The stand-in on its own thread, and one event loop for the hub side (the shared XnatClient lives on it)."""

    def __init__(self, standin: XnatStandin, loop: asyncio.AbstractEventLoop):
        self.standin, self.loop = standin, loop
        self.outcomes = {"refused": 0, "accepted": 0}

    def spawn(self, payload: Any, allowed: tuple[str, ...]) -> SpawnRefused:
        """Take `payload` through spawner.start(), check how it ended, and return the refusal."""
        user = f"Hx{secrets.token_hex(3)}.User"
        self.standin.set_user_options(user, SERVER, payload)
        spawner = make_spawner(user, SERVER, mount_allowed_prefixes=list(allowed),
                               client_kwargs={"base_url": NO_ENGINE, "timeout": 2})
        spawner.__class__ = NoEngineSpawner
        try:
            self.loop.run_until_complete(spawner.start())
        except SpawnRefused as e:
            message = e.jupyterhub_message
            assert isinstance(message, str) and message and len(message) < 1000, message
            assert "Traceback" not in message and "\n" not in message, message
            if spawner.launch is None:
                # refused before Docker: nothing was created; the progress stream only says XNAT was asked
                assert e.status_code in (400, 404, 502), e.status_code
                assert [event["message"] for event in spawner._events] == ["Fetching the launch options from XNAT"]
                self.outcomes["refused"] += 1
            else:
                # accepted, with only allowed mounts; then Docker (absent here) refuses cleanly too
                assert e.status_code == 503 and message == NO_DOCKER, (e.status_code, message)
                check(payload, allowed)
                for mount in spawner.mounts:
                    if mount["Type"] == "bind" and allowed:
                        assert any(mount["Source"] == root or mount["Source"].startswith(root + "/")
                                   for root in allowed), mount
                self.outcomes["accepted"] += 1
            assert spawner.object_id == ""
            refusal = e
        except BaseException as e:
            pytest.fail(f"the spawner crashed ({e.__class__.__name__}: {str(e)[:300]}) on {payload!r}")
        else:
            pytest.fail(f"a spawn went through with no Docker engine: {payload!r}")
        finally:
            self.standin.remove_user_options(user, SERVER)
        return refusal


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    loop = asyncio.new_event_loop()
    with XnatStandin().run_in_thread() as standin:
        password = secrets.token_urlsafe(16)
        standin.add_user("jupyterhub", password, [SERVICE_ROLE])
        XnatClient.clear_instance()
        client = XnatClient.instance(url=standin.url, service_username="jupyterhub", service_password=password)
        try:
            yield Rig(standin, loop)
        finally:
            loop.run_until_complete(client.aclose())
            XnatClient.clear_instance()
            loop.close()


def examples(count: int) -> settings:
    return settings(max_examples=int(_OVERRIDE) if _OVERRIDE else count, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@examples(500)
@given(PAYLOADS)
def test_generated_options_through_the_spawner_with_an_allow_list(rig: Rig, payload: Any) -> None:
    assume(payload is not None)  # XNAT has nothing to serve for null: that is the 404 case, tested elsewhere
    rig.spawn(payload, ALLOWED)


@examples(500)
@given(PAYLOADS)
def test_generated_options_through_the_spawner_with_the_deny_list(rig: Rig, payload: Any) -> None:
    assume(payload is not None)
    rig.spawn(payload, ())


def test_the_generated_options_reached_both_outcomes(rig: Rig) -> None:
    """Runs after the two above (same module rig): the generators exercised refusals and accepted launches."""
    if not sum(rig.outcomes.values()):
        pytest.skip("counts the outcomes of the two generated-options tests above: run the module whole")
    print(f"outcomes: {rig.outcomes}")
    assert rig.outcomes["refused"] > 0 and rig.outcomes["accepted"] > 0, rig.outcomes


# -- through a real JupyterHub: the refusal is the user's spawn message -------------------------------------------



@examples(25)
@given(PAYLOADS)
def test_generated_refusals_reach_the_user_through_a_real_hub(rig: Rig, real_hub: RealHub, payload: Any) -> None:
    """Payloads refused before Docker: XNAT's start answer and the progress stream carry the spawner's message."""
    assume(payload is not None)
    refusal = rig.spawn(payload, ("/tmp",))  # the real hub's JH_MOUNT_ALLOWED_PREFIXES
    assume(refusal.status_code != 503)  # accepted launches would reach the shared engine: not here
    user = a_user()
    real_hub.standin.set_user_options(user, SERVER, payload)
    error, events = asyncio.run(start_failing(real_hub, user))
    assert error.status == refusal.status_code and refusal.jupyterhub_message in str(error)
    assert events[-1] == {"progress": 100, "failed": True, "message": f"Spawn failed: {refusal.jupyterhub_message}"}

