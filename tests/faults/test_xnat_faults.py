"""XNAT down, slow (10 s per answer) or answering garbage, under the live stack's hub with a notebook running.

For each fault: a login through the real /hub/login form is refused within the hub's XNAT timeout, with a clear
message on the login page; the hub's API keeps answering meanwhile; the running notebook keeps its task and
still answers through the proxy; when XNAT is back, the same login works with the same hub container (no
restart). The hub API's latency during each fault is a figure: bench/bench_faults.py.
"""

from __future__ import annotations

import html
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from hub.xnat import UNREADABLE
from tests.helpers.fault_stack import XNAT_TIMEOUT, FaultStack
from tests.helpers.live import E2E_TIMEOUT, launched_notebook, login
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(E2E_TIMEOUT)]

USER, PASSWORD = "alice", "alice-password"  # the demo cast's XNAT user with the Jupyter role
UNREACHABLE = "XNAT is unreachable. Try again later."
TIMED_OUT = "XNAT is unreachable (it did not answer in time). Try again later."

# fault -> the message the login page must show
FAULTS: dict[str, tuple[dict[str, object], str]] = {
    "down": ({"down": True}, UNREACHABLE),
    "slow-10s": ({"latency": 10.0}, TIMED_OUT),
    "html": ({"garbage": "html"}, UNREADABLE),
    "truncated-json": ({"garbage": "truncated-json"}, UNREADABLE),
    "wrong-types": ({"garbage": "wrong-types"}, UNREADABLE),
    "http-503": ({"status": 503}, "XNAT failed (HTTP 503). Try again later."),
}
# The refusal comes within the XNAT timeout, plus the hub's own work and this machine's load.
REFUSAL_MARGIN = 3.0


@dataclass
class RunningNotebook:
    server: str
    api: str
    headers: dict[str, str]
    task: str

    def answers(self) -> bool:
        return httpx.get(self.api, headers=self.headers, timeout=10).status_code == 200


def running_task(stack: FaultStack, server: str) -> str:
    (service,) = stack.notebook_services(USER, server)
    ids = subprocess.run(
        ["docker", "service", "ps", "-q", "--filter", "desired-state=running", service["Spec"]["Name"]],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    assert len(ids) == 1, ids
    return ids[0]


@pytest.fixture(scope="module")
def notebook(fault_stack: FaultStack) -> Iterator[RunningNotebook]:
    """One of alice's notebooks, launched the XNAT way before any fault, stopped at the end."""
    with launched_notebook(fault_stack, USER) as (server, token):
        api = f"{fault_stack.hub_url}/user/{USER}/{server}/api"
        running = RunningNotebook(server, api, {"Authorization": f"token {token}"}, running_task(fault_stack, server))
        assert running.answers()
        yield running


class ApiProbe:
    """GETs the hub API in a loop on a thread while a fault is on; records every answer's status."""

    def __init__(self, url: str, token: str):
        self.url, self.token = url, token
        self.statuses: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(headers={"Authorization": f"token {self.token}"}, timeout=5) as client:
            while not self._stop.is_set():
                try:
                    self.statuses.append(client.get(f"{self.url}/users/{USER}").status_code)
                except httpx.HTTPError:
                    self.statuses.append(0)
                self._stop.wait(0.05)  # the pace between probes; returns at once when stopped

    def __enter__(self) -> ApiProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_xnat_fault_refuses_logins_cleanly_and_clears_without_restart(
    fault_stack: FaultStack, notebook: RunningNotebook, fault: str
) -> None:
    spec, message = FAULTS[fault]
    hub_container = fault_stack.hub_container()
    token = fault_stack.secret("console_token")
    try:
        fault_stack.fault(**spec)
        with ApiProbe(fault_stack.api_url, token) as probe:
            started = time.monotonic()
            with login(fault_stack.hub_url, USER, PASSWORD) as (answer, client):
                elapsed = time.monotonic() - started
                assert answer.status_code == 503, answer.text[:300]
                assert message in html.unescape(answer.text), answer.text[-1500:]
                assert 'name="password"' in answer.text  # the login page again, not an error page
                assert "jupyterhub-hub-login" not in client.cookies
            assert elapsed < XNAT_TIMEOUT + REFUSAL_MARGIN, f"refused after {elapsed:.1f} s"
            # the notebook is untouched, and reachable through the proxy, while XNAT is broken
            assert notebook.answers()
        assert probe.statuses and set(probe.statuses) == {200}, probe.statuses
    finally:
        fault_stack.clear_faults()

    assert running_task(fault_stack, notebook.server) == notebook.task
    # XNAT is back: the same hub lets the same user in
    with login(fault_stack.hub_url, USER, PASSWORD) as (answer, client):
        assert answer.status_code == 302, answer.text[:300]
        assert "jupyterhub-hub-login" in client.cookies
    assert fault_stack.hub_container() == hub_container, "the hub was restarted"


def test_the_hub_log_holds_one_line_per_refusal_and_no_password(fault_stack: FaultStack) -> None:
    """Runs after the faults above: every refusal was logged, briefly, and alice's password never."""
    wait_for(lambda: "XNAT" in fault_stack.hub_logs(), 30, "the hub's log")
    log = fault_stack.hub_logs()
    assert PASSWORD not in log
    refusals = [line for line in log.splitlines() if "alice" in line and "refus" in line.lower()]
    assert refusals, log[-3000:]
    assert all(len(line) < 1000 for line in refusals)
