"""The docker SDK is not imported before the console needs it, and paramiko only for ssh:// engines.

Each check runs in a fresh interpreter: what is imported depends on what ran before in this one."""

from __future__ import annotations

import subprocess
import sys


def run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_starting_the_live_backend_imports_neither_docker_nor_paramiko():
    code = (
        "import sys, console.backend.live, console.config\n"
        "print(sorted(m for m in ('docker', 'paramiko', 'requests') if m in sys.modules))"
    )
    assert run(code) == "[]"


def test_a_local_engine_client_loads_the_sdk_without_paramiko():
    code = (
        "import sys\n"
        "from console.backend.docker import Endpoint, make_client\n"
        "try:\n"
        "    make_client(Endpoint(host='unix:///nonexistent/docker.sock'), 1.0)\n"
        "except Exception as e:\n"
        "    assert type(e).__module__ == 'docker.errors', e  # the SDK ran, and found no engine\n"
        "print('docker' in sys.modules, 'paramiko' in sys.modules)"
    )
    assert run(code) == "True False"


def test_ssh_support_is_added_when_asked_for():
    code = (
        "import sys\n"
        "from console.backend.lazy import docker, enable_docker_ssh\n"
        "def attempt():\n"
        "    try:\n"
        "        docker.APIClient(base_url='ssh://nobody@127.0.0.1:1', timeout=2, use_ssh_client=False)\n"
        "    except Exception as e:\n"
        "        return 'Install paramiko' in str(e)\n"
        "    return False\n"
        "before = attempt()\n"
        "enable_docker_ssh()\n"
        "print(before, 'paramiko' in sys.modules, attempt())"
    )
    # Before: the SDK has no SSH transport. After: it tries to connect (and fails: nothing listens on port 1).
    assert run(code) == "True True False"
