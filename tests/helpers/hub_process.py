"""One JupyterHub process for a test: `jupyterhub -f CONFIG` in a directory of its own, waited for until its API
answers, stopped (SIGTERM, then SIGKILL) when the block ends. The fixtures that need a real hub with a config of
their own (tests.helpers.real_hub, tests.helpers.console_backend, tests/hub/test_plugin_hub.py) start it here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.helpers.waiting import wait_for


@contextmanager
def jupyterhub_process(
    work: Path,
    config: str,
    api_url: str,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> Iterator[subprocess.Popen[bytes]]:
    """Write `config` to WORK/jupyterhub_config.py (0600: it may hold tokens), start the hub with WORK as its
    directory and WORK/hub.log as its log, in a process group of its own (the test's signals never reach it, and
    its proxy goes with it), and yield it once `api_url` answers."""
    config_file = work / "jupyterhub_config.py"
    config_file.write_text(config)
    config_file.chmod(0o600)
    log_path = work / "hub.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("jupyterhub")), "-f", str(config_file)],
            cwd=work,
            env=dict(env) if env is not None else None,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:

            def answering() -> bool:
                if process.poll() is not None:
                    tail = log_path.read_text(errors="replace")[-3000:]
                    raise AssertionError(f"jupyterhub exited with {process.returncode}:\n{tail}")
                return httpx.get(api_url + "/", timeout=2).status_code == 200

            wait_for(answering, timeout, f"the hub at {api_url} to answer")
            yield process
        finally:
            stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the hub's group (it stops its servers and its proxy), SIGKILL after 30 s."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
