"""Deploy and stop the xnat-jupyterhub stack: the logic behind `xnat-jh-console deploy|stop`, scripts/demo.sh,
the end-to-end tests and bench/.

Plain Python, no Textual. `deploy()` is a generator of progress lines (a screen shows them, a terminal prints
them) and raises `StackError` with a message safe to show. `stop()` returns an `ActionResult` naming exactly
what it removed. `docker stack deploy` and `docker stack rm` run through the real docker CLI, as an operator would
type them; everything else asks the engine through the Docker SDK.

Also a script:  python -m console.backend.stack deploy|stop|secrets --help
"""
from __future__ import annotations

from console.backend.stack.deploy import deploy, preflight
from console.backend.stack.engine import (
    _run_docker,
    docker_client,
    stack_config,
    write_secret_files,
)
from console.backend.stack.settings import (
    POLL,
    REPO_STACK_FILE,
    STACK_NAME,
    StackError,
    StackSettings,
    default_env_file,
    read_env_file,
)
from console.backend.stack.stop import notebook_services, stop

__all__ = [
    "POLL", "REPO_STACK_FILE", "STACK_NAME", "StackError", "StackSettings", "_run_docker", "default_env_file",
    "deploy", "docker_client", "notebook_services", "preflight", "read_env_file", "stack_config", "stop",
    "write_secret_files",
]  # fmt: skip
