"""What the console imports before its first frame: nothing heavy. The docker SDK (and its paramiko) and httpx
load when the first refresh makes a client, after the first frame; paramiko only for an ssh:// engine.

Each check runs in a fresh interpreter, so a module some other test imported cannot hide an eager import.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("docker", "paramiko", "httpx", "requests")


def loaded_after(code: str) -> dict[str, bool]:
    """Run `code` in a fresh interpreter; which of HEAVY it left in sys.modules."""
    report = f"import json, sys\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    loaded: dict[str, bool] = json.loads(out.strip().splitlines()[-1])
    return loaded


def test_the_app_and_a_constructed_live_backend_import_no_sdk(tmp_path):
    loaded = loaded_after(
        "from console.app import XnatConsoleApp\n"
        "from console.backend.live import LiveBackend\n"
        "from console.config import ConsoleConfig\n"
        f"config = ConsoleConfig(docker_host='tcp://127.0.0.1:9', hub_url='http://127.0.0.1:9/hub/api',"
        f" token='t', audit_log={str(tmp_path / 'audit.log')!r})\n"
        "XnatConsoleApp(LiveBackend(config), config)\n"
    )
    assert loaded == dict.fromkeys(HEAVY, False)


def test_the_help_text_imports_no_sdk():
    loaded = loaded_after(
        "import contextlib, io\n"
        "from console.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
    )
    assert loaded == dict.fromkeys(HEAVY, False)


def test_a_unix_socket_engine_loads_the_sdk_without_paramiko(tmp_path):
    # No engine answers there: making the client is what loads the SDK, and the health check says it is down.
    loaded = loaded_after(
        "from console.backend.docker import DockerAccess\n"
        f"access = DockerAccess('unix://{tmp_path}/no-engine.sock', timeout=2)\n"
        "assert access.health()[0].health.value == 'down', access.health()\n"
    )
    assert loaded["docker"] and loaded["requests"]
    assert not loaded["paramiko"]


def test_an_ssh_engine_after_a_local_one_gets_the_ssh_transport():
    loaded = loaded_after(
        "from console.backend import docker_sdk\n"
        "docker_sdk.load()\n"
        "import docker.api.client, docker.transport, sys\n"
        "assert 'paramiko' not in sys.modules and not hasattr(docker.transport, 'SSHHTTPAdapter')\n"
        "docker_sdk.load(ssh=True)\n"
        "from docker.transport.sshconn import SSHHTTPAdapter\n"
        "assert docker.api.client.SSHHTTPAdapter is docker.transport.SSHHTTPAdapter is SSHHTTPAdapter\n"
    )
    assert loaded["paramiko"]
