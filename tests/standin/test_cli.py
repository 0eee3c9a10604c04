"""`python -m hub.standin` as the demo and the container run it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import httpx
import pytest

from hub.standin.demo import DEMO_USERS

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JH_XNAT_PASSWORD")}
    env.update(extra)
    return env


async def _start(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub.standin", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def test_seed_demo_serves_the_cast_and_stops_cleanly_on_sigterm(tmp_path):
    secret = tmp_path / "xnat_password"
    secret.write_text("svc-secret-value\n")
    secret.chmod(0o600)
    proc = await _start("--port", "0", "--control-port", "0", "--seed-demo",
                        env=_env(JH_XNAT_PASSWORD_FILE=str(secret)))
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        match = re.search(r"listening at (http://\S+), control API at (http://\S+)/_standin/", line)
        assert match, line
        xnat, control = match.groups()
        async with httpx.AsyncClient(base_url=xnat) as client:
            roles = await client.get("/xapi/users/Alice.Smith/roles", auth=("Alice.Smith", "smith-password"))
            assert roles.json() == ["Jupyter"]
            bob = await client.get("/xapi/users/bob/roles", auth=("bob", "bob-password"))
            assert bob.json() == []
            options = await client.get("/xapi/jupyterhub/users/alice/server/user-options",
                                       auth=("jupyterhub", "svc-secret-value"))
            assert options.status_code == 200
            assert options.json()["task_template"]["container_spec"]["image"] == "xnat-jupyterhub/singleuser:dev"
        async with httpx.AsyncClient() as client:
            assert (await client.get(control + "/_standin/")).json()["users"] == len(DEMO_USERS) + 1
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    printed = line + out.decode() + err.decode()
    assert "stopped" in printed
    assert "svc-secret-value" not in printed
    assert not any(password in printed for _, password, _ in DEMO_USERS)


async def test_seed_demo_without_the_service_password_is_a_clear_error():
    proc = await _start("--port", "0", "--control-port", "0", "--seed-demo", env=_env())
    _out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    assert "JH_XNAT_PASSWORD or JH_XNAT_PASSWORD_FILE" in err.decode()
    assert "Traceback" not in err.decode()


async def test_unreadable_password_file_is_a_clear_error(tmp_path):
    proc = await _start("--port", "0", "--seed-demo", env=_env(JH_XNAT_PASSWORD_FILE=str(tmp_path / "missing")))
    _out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    assert "JH_XNAT_PASSWORD_FILE: cannot read" in err.decode() and "Traceback" not in err.decode()


@pytest.mark.parametrize("port", ["eighty", "70000"])
async def test_bad_port_is_refused_by_the_parser(port):
    proc = await _start("--port", port, env=_env())
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2 and "port" in err.decode() and "Traceback" not in err.decode()


async def test_busy_port_is_a_clear_error(xnat_standin):
    proc = await _start("--port", str(xnat_standin.port), "--control-port", "0", env=_env())
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 1
    assert "cannot listen" in err.decode() and "Traceback" not in err.decode()
