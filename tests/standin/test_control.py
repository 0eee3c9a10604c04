"""The control API over real HTTP, on its own port, and the thread runner."""

from __future__ import annotations

import httpx
import pytest

from hub.standin.options import user_options
from hub.standin.server import DEFAULT_PREFERENCES, XnatStandin

ROLES = "/xapi/users/{}/roles"


@pytest.fixture
async def control(xnat_standin: XnatStandin):
    async with httpx.AsyncClient(base_url=xnat_standin.control_url + "/_standin", timeout=10) as client:
        yield xnat_standin, client


async def test_control_runs_on_its_own_port(control):
    standin, client = control
    assert standin.control_port != standin.port
    status = (await client.get("/")).json()
    assert status == {"xnat_url": standin.url, "down": False, "users": 0, "open_sessions": 0}
    # The control API is not reachable on the XNAT port.
    async with httpx.AsyncClient() as xnat:
        assert (await xnat.get(standin.url + "/_standin/users")).status_code == 404


async def test_put_and_delete_users(control):
    standin, client = control
    assert (await client.put("/users/Alice.Smith", json={"password": "pw", "roles": ["Jupyter"]})).status_code == 200
    async with httpx.AsyncClient(base_url=standin.url) as xnat:
        assert (await xnat.get(ROLES.format("Alice.Smith"), auth=("Alice.Smith", "pw"))).json() == ["Jupyter"]
        listing = (await client.get("/users")).json()
        assert listing == {"Alice.Smith": {"roles": ["Jupyter"], "enabled": True}}
        assert "pw" not in repr(listing)
        assert (await client.delete("/users/Alice.Smith")).status_code == 200
        assert (await xnat.get(ROLES.format("Alice.Smith"), auth=("Alice.Smith", "pw"))).status_code == 401
    missing = await client.delete("/users/Alice.Smith")
    assert missing.status_code == 404 and "no user" in missing.json()["error"]


async def test_user_names_in_control_paths_are_url_decoded(control):
    standin, client = control
    await client.put("/users/o%27brien%20x", json={"password": "pw", "roles": []})
    assert "o'brien x" in standin.users


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "body is not JSON"),
        (b'["pw"]', "body must be"),
        (b'{"password": "pw", "roles": "Jupyter"}', "roles must be a list"),
        (b'{"password": "", "roles": []}', "non-empty password"),
        (b'{"roles": []}', "non-empty password"),
        # no UTF-8 form: Basic auth could never send it, and comparing it would fail every login with a 500
        (b'{"password": "pw\\ud800", "roles": []}', "password that is not valid Unicode text"),
        (b'{"password": "pw", "role": []}', "unknown user fields: role"),
        (b'{"password": "pw", "roles": [1]}', "roles must be strings"),
    ],
)
async def test_bad_user_is_refused_with_a_clear_message(control, body, message):
    standin, client = control
    response = await client.put("/users/alice", content=body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert standin.users == {}


async def test_put_get_delete_user_options_for_named_and_default_servers(control):
    standin, client = control
    named, default = user_options("alice", "s1"), user_options("alice", "")
    assert (await client.put("/user-options/alice/s1", json=named)).status_code == 200
    assert (await client.put("/user-options/alice", json=default)).status_code == 200
    assert standin.user_options_store == {("alice", "s1"): named, ("alice", ""): default}
    assert (await client.get("/user-options/alice/s1")).json() == named
    assert (await client.delete("/user-options/alice/s1")).status_code == 200
    assert (await client.get("/user-options/alice/s1")).status_code == 404
    assert (await client.delete("/user-options/alice")).status_code == 200
    assert standin.user_options_store == {}


async def test_preferences_are_merged(control):
    _standin, client = control
    assert (await client.put("/preferences", json={"allUsersCanStartJupyter": True})).status_code == 200
    assert (await client.get("/preferences")).json() == {**DEFAULT_PREFERENCES, "allUsersCanStartJupyter": True}
    assert (await client.put("/preferences", json=[1])).status_code == 400


async def test_faults_through_the_control_port_including_down(control):
    standin, client = control
    standin.add_user("alice", "pw", ["Jupyter"])
    async with httpx.AsyncClient(base_url=standin.url) as xnat:
        assert (await client.put("/faults", json={"status": 503, "path": "/xapi/*"})).status_code == 200
        assert (await xnat.get(ROLES.format("alice"), auth=("alice", "pw"))).status_code == 503
        assert (await client.put("/faults", json={"down": True})).status_code == 200
        listed = (await client.get("/faults")).json()
        assert listed == {"down": True, "faults": [
            {"latency": 0.0, "status": 503, "garbage": None, "path": "/xapi/*", "times": None}]}
        with pytest.raises(httpx.ConnectError):
            await xnat.get(ROLES.format("alice"), auth=("alice", "pw"))
        assert (await client.delete("/faults")).status_code == 200
        assert (await xnat.get(ROLES.format("alice"), auth=("alice", "pw"))).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"garbage": "yaml"}, "garbage must be one of"),
        ({"latency": "slow"}, "latency must be a number"),
        ({"colour": "red"}, "unknown fault fields: colour"),
        ({}, "needs latency, status, garbage or down"),
    ],
)
async def test_bad_fault_over_control_is_a_400(control, body, message):
    standin, client = control
    response = await client.put("/faults", json=body)
    assert response.status_code == 400 and message in response.json()["error"]
    assert standin.faults == []


async def test_request_log_sessions_and_reset(control):
    standin, client = control
    standin.add_user("alice", "pw", ["Jupyter"])
    standin.set_preferences({"allUsersCanStartJupyter": True})
    standin.set_fault(latency=0.01)
    async with httpx.AsyncClient(base_url=standin.url) as xnat:
        await xnat.get(ROLES.format("alice"), auth=("alice", "pw"))
    log = (await client.get("/requests")).json()
    assert [(r["method"], r["path"], r["user"], r["status"]) for r in log] == [
        ("GET", "/xapi/users/alice/roles", "alice", 200)]
    assert "pw" not in repr(log).replace("/xapi", "")
    assert (await client.get("/sessions")).json() == {"open": 1, "by_user": {"alice": 1}}
    assert (await client.delete("/requests")).status_code == 200 and standin.requests == []
    assert (await client.post("/reset")).status_code == 200
    assert standin.users == {} and standin.open_sessions == 0 and standin.faults == []
    assert standin.preferences == DEFAULT_PREFERENCES


def test_thread_runner_serves_synchronous_clients():
    standin = XnatStandin()
    with standin.run_in_thread() as running:
        assert running is standin
        standin.add_user("alice", "pw", ["Jupyter"])
        with httpx.Client(base_url=standin.url) as xnat:
            assert xnat.get(ROLES.format("alice"), auth=("alice", "pw")).json() == ["Jupyter"]
            standin.set_fault(down=True)  # from another thread than the server's
            with pytest.raises(httpx.ConnectError):
                xnat.get(ROLES.format("alice"), auth=("alice", "pw"))
            standin.clear_faults()
            assert xnat.get(ROLES.format("alice"), auth=("alice", "pw")).status_code == 200
        with httpx.Client() as control:
            assert control.get(standin.control_url + "/_standin/sessions").json()["open"] == 1
        port = standin.port
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/")


def test_thread_runner_reports_a_busy_port():
    with (
        XnatStandin().run_in_thread() as first,
        pytest.raises(OSError),
        XnatStandin().run_in_thread(port=first.port),
    ):
        pass
