"""A task Docker rejects (a bind mount whose source does not exist on the node) fails the spawn within seconds,
with Docker's own error in the spawn progress, and leaves no service behind."""

from __future__ import annotations

import time

import pytest

from console.backend.hub import HubClient
from hub.standin import options as xnat_options
from hub.standin.plugin import HubError
from tests.helpers.live import E2E_TIMEOUT, SINGLEUSER_IMAGE, LiveStack
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(E2E_TIMEOUT)]

USER = "alice"


async def test_missing_mount_source_fails_fast_with_dockers_error(live_stack: LiveStack):
    missing = live_stack.allowed_root / "archive" / "no-such-project"
    assert not missing.exists()
    server = xnat_options.event_tracking_id()
    live_stack.control("PUT", f"/user-options/{USER}/{server}", xnat_options.user_options(
        USER, server, image=SINGLEUSER_IMAGE, cpu_reservation=None, mem_reservation=None,
        mounts=[xnat_options.mount(str(missing), "/data/projects/PRJ9/experiments", read_only=True)],
    ))
    async with live_stack.plugin() as plugin:
        await plugin.ensure_user(USER)
        started = time.monotonic()
        try:
            await plugin.start_server(USER, server, xnat_options.start_request_body(event_tracking_id=server))
        except HubError as e:
            # the spawn failed before the hub's slow_spawn_timeout: the POST itself carries the failure
            assert e.status == 500, e
            assert "bind source path does not exist" in str(e)
    events = []
    async with HubClient(live_stack.api_url, live_stack.secret("xnat_service_token"), timeout=30) as hub:
        async for event in hub.progress(USER, server):
            events.append(event)
    elapsed = time.monotonic() - started

    assert events and events[-1].failed, [e.message for e in events]
    assert elapsed < 10, f"the spawn took {elapsed:.1f} s to fail"
    # Docker's words, not a timeout: "invalid mount config for type "bind": bind source path does not exist"
    assert "bind source path does not exist" in events[-1].message, events[-1].message
    assert str(missing) in events[-1].message
    wait_for(lambda: not live_stack.notebook_services(USER, server), 30, "the rejected service to be removed")
