"""Fault injection over real HTTP: latency, forced status, garbage bodies, going down and coming back."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx
import pytest

from hub.standin.options import user_options
from hub.standin.server import XnatStandin

ROLES = "/xapi/users/alice/roles"
PREF = "/xapi/jupyterhub/preferences/allUsersCanStartJupyter"
OPTIONS = "/xapi/jupyterhub/users/alice/server/s1/user-options"
ALICE = ("alice", "alice-pw")
SVC = ("jupyterhub", "svc-pw")


@pytest.fixture
async def xnat(xnat_standin: XnatStandin):
    xnat_standin.add_user("alice", "alice-pw", ["Jupyter"])
    xnat_standin.add_user("jupyterhub", "svc-pw", ["JupyterHub"])
    xnat_standin.set_user_options("alice", "s1", user_options("alice", "s1"))
    no_cookies = CookieJar(DefaultCookiePolicy(allowed_domains=[]))
    async with httpx.AsyncClient(base_url=xnat_standin.url, cookies=no_cookies, timeout=10) as client:
        yield xnat_standin, client


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


async def test_latency_delays_each_answer(xnat):
    standin, client = xnat
    standin.set_fault(latency=0.3)
    started = time.monotonic()
    response = await client.get(ROLES, auth=ALICE)
    assert response.status_code == 200 and response.json() == ["Jupyter"]
    assert time.monotonic() - started >= 0.3
    assert standin.requests[-1]["seconds"] >= 0.29  # asyncio may fire a timer one clock tick early


async def test_latency_does_not_block_the_server(xnat):
    standin, client = xnat
    standin.set_fault(latency=0.5)
    started = time.monotonic()
    responses = await asyncio.gather(*(client.get(ROLES, auth=ALICE) for _ in range(8)))
    elapsed = time.monotonic() - started
    assert all(r.status_code == 200 for r in responses)
    # Served one after another this would take 4 s; concurrently it takes about one latency.
    assert 0.5 <= elapsed < 2.0


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_forced_status_answers_before_authentication(xnat, status):
    standin, client = xnat
    standin.set_fault(status=status)
    response = await client.get(ROLES, auth=ALICE)
    assert response.status_code == status
    assert response.text == f"Injected fault: HTTP {status}"
    assert standin.open_sessions == 0


async def test_fault_limited_to_a_path_glob_and_a_number_of_requests(xnat):
    standin, client = xnat
    standin.set_fault(status=503, path="/xapi/users/*/roles", times=2)
    assert (await client.get(PREF, auth=ALICE)).status_code == 200
    assert [(await client.get(ROLES, auth=ALICE)).status_code for _ in range(3)] == [503, 503, 200]
    assert standin.faults == []


async def test_fault_for_the_same_path_replaces_the_previous_one(xnat):
    standin, client = xnat
    standin.set_fault(status=500, path="/xapi/users/*/roles")
    standin.set_fault(status=502, path="/xapi/users/*/roles")
    standin.set_fault(status=503)
    assert len(standin.faults) == 2
    # The most recently set matching fault wins.
    assert (await client.get(ROLES, auth=ALICE)).status_code == 503
    assert (await client.get(PREF, auth=ALICE)).status_code == 503


async def test_garbage_html_is_not_json(xnat):
    standin, client = xnat
    standin.set_fault(garbage="html")
    for path, auth in ((ROLES, ALICE), (PREF, ALICE), (OPTIONS, SVC)):
        response = await client.get(path, auth=auth)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        with pytest.raises(json.JSONDecodeError):
            response.json()


async def test_garbage_truncated_json_never_parses(xnat):
    standin, client = xnat
    standin.set_fault(garbage="truncated-json")
    for path, auth in ((ROLES, ALICE), (PREF, ALICE), (OPTIONS, SVC), (ROLES, ("alice", "wrong"))):
        response = await client.get(path, auth=auth)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        assert response.text
        with pytest.raises(json.JSONDecodeError):
            response.json()


async def test_garbage_wrong_types_parses_with_the_wrong_types(xnat):
    standin, client = xnat
    standin.set_fault(garbage="wrong-types")
    roles = (await client.get(ROLES, auth=ALICE)).json()
    pref = (await client.get(PREF, auth=ALICE)).json()
    options = (await client.get(OPTIONS, auth=SVC)).json()
    assert roles == [["Jupyter"]]
    assert pref == {"allUsersCanStartJupyter": "false"}
    assert set(options) == set(user_options("alice", "s1"))
    assert isinstance(options["task_template"], list) and isinstance(options["userId"], str)


async def test_garbage_with_a_status(xnat):
    standin, client = xnat
    standin.set_fault(garbage="html", status=502)
    response = await client.get(ROLES, auth=ALICE)
    assert response.status_code == 502 and "<html>" in response.text


async def test_down_refuses_connections_then_comes_back_on_the_same_port(xnat):
    standin, client = xnat
    port = standin.port
    assert (await client.get(ROLES, auth=ALICE)).status_code == 200  # leaves a keep-alive connection
    standin.set_fault(down=True)
    assert standin.is_down and _refused(port)
    # The client's pooled connection was cut too: it reconnects and is refused.
    with pytest.raises(httpx.ConnectError):
        await client.get(ROLES, auth=ALICE)
    async with httpx.AsyncClient() as fresh:
        with pytest.raises(httpx.ConnectError):
            await fresh.get(standin.url + ROLES, auth=ALICE)
    standin.clear_faults()
    assert not standin.is_down and standin.port == port
    assert (await client.get(ROLES, auth=ALICE)).status_code == 200


async def test_down_keeps_other_faults_and_up_again_with_set_fault(xnat):
    standin, client = xnat
    standin.set_fault(latency=0.2, down=True)
    assert _refused(standin.port)
    standin.set_fault(down=False)
    started = time.monotonic()
    assert (await client.get(ROLES, auth=ALICE)).status_code == 200
    assert time.monotonic() - started >= 0.2


async def test_down_cuts_a_request_waiting_in_latency(xnat):
    standin, client = xnat
    standin.set_fault(latency=5)
    pending = asyncio.ensure_future(client.get(ROLES, auth=ALICE))
    deadline = time.monotonic() + 5
    while standin.in_flight == 0 and time.monotonic() < deadline:  # the request reached the server
        await asyncio.sleep(0.01)
    # otherwise the refused connection below would pass without any waiting request being cut
    assert standin.in_flight == 1, "the request never reached the stand-in"
    standin.set_fault(down=True)
    with pytest.raises(httpx.TransportError):
        await asyncio.wait_for(pending, 3)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"latency": -1}, "latency must be between"),
        ({"latency": float("nan")}, "latency must be between"),
        ({"latency": "1"}, "latency must be a number"),
        ({"status": 99}, "status must be an HTTP status"),
        ({"status": True}, "status must be an HTTP status"),
        ({"garbage": "xml"}, "garbage must be one of"),
        ({"status": 500, "path": "xapi"}, "path must be a glob"),
        ({"status": 500, "times": 0}, "times must be"),
        ({}, "needs latency, status, garbage or down"),
        ({"down": "yes"}, "down must be true or false"),
    ],
)
async def test_bad_fault_is_refused_with_a_clear_message(xnat_standin, fields, message):
    with pytest.raises(ValueError, match=message):
        xnat_standin.set_fault(**fields)
    assert xnat_standin.faults == [] and not xnat_standin.is_down


async def test_stop_ends_waiting_answers_and_frees_both_ports():
    standin = XnatStandin()
    await standin.start()
    standin.add_user("alice", "alice-pw", ["Jupyter"])
    standin.set_fault(latency=30)
    async with httpx.AsyncClient(timeout=10) as client:
        pending = asyncio.ensure_future(client.get(standin.url + ROLES, auth=ALICE))
        deadline = time.monotonic() + 5
        while standin.in_flight == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert standin.in_flight == 1, "the request never reached the stand-in"
        started = time.monotonic()
        await standin.stop()
        assert time.monotonic() - started < 5
        assert standin.in_flight == 0
        with pytest.raises(httpx.TransportError):
            await pending
    assert _refused(standin.port) and _refused(standin.control_port)


async def test_coming_back_up_on_a_taken_port_is_a_clear_error(xnat):
    standin, _ = xnat
    standin.set_fault(down=True)
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", standin.port))
    squatter.listen()
    try:
        with pytest.raises(RuntimeError, match=f"cannot listen again on port {standin.port}"):
            standin.clear_faults()
        assert standin.is_down
    finally:
        squatter.close()
    standin.clear_faults()
    assert not standin.is_down
