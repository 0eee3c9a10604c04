"""The XNAT check from inside the hub's overlay network: a one-off swarm service made from the hub service
itself (its image, env, secrets and networks), because the hub and XNAT reach each other by other names than the
console does. The check's own source is handed to the service's `python -c`, so it works with any image that has
Python and httpx (the hub image has both). Blocking; call from a thread.
"""

from __future__ import annotations

import contextlib
import json
import secrets as secrets_module
import time
from pathlib import Path

from console.backend.docker import DockerAccess, DockerUnavailable
from console.backend.models import CheckStatus, CheckStep
from xjh_contract import CHECK_SERVICE_PREFIX, LABEL_CONSOLE


def _script_source() -> str:
    """`python -c` code that defines this module and its models from source, then runs main()."""
    here = Path(__file__).parent
    sources = {
        "console.backend.models": (here / "models.py").read_text(),
        "console.backend.xnat_check": (here / "xnat_check.py").read_text(),
    }
    return (
        "import sys, types\n"
        "for pkg in ('console', 'console.backend'):\n"
        "    m = types.ModuleType(pkg); m.__path__ = []; sys.modules[pkg] = m\n"
        f"for name, src in {sources!r}.items():\n"
        "    m = types.ModuleType(name); sys.modules[name] = m; exec(compile(src, name, 'exec'), m.__dict__)\n"
        "sys.exit(sys.modules['console.backend.xnat_check'].main(['--json', '--no-paths']))\n"
    )


def check_in_hub_network(docker_access: DockerAccess, hub_service: str, *, timeout: float = 60.0) -> list[CheckStep]:
    """Run the check once inside a one-off service cloned from the hub service (image, env, secrets,
    networks), then remove it. Blocking; call from a thread. Raises DockerUnavailable on Docker trouble."""
    spec = docker_access.inspect_service(hub_service, redact=False)["Spec"]
    template = spec["TaskTemplate"]
    container = template["ContainerSpec"]
    name = f"{CHECK_SERVICE_PREFIX}{secrets_module.token_hex(4)}"
    client = docker_access.client()
    import docker.types  # loaded by client()

    service = None
    try:
        service = client.services.create(  # type: ignore[no-untyped-call]  # unannotated in types-docker
            container["Image"].split("@sha256:")[0],
            command=["python", "-c", _script_source()],
            name=name,
            env=list(container.get("Env") or []),
            secrets=[
                docker.types.SecretReference(s["SecretID"], s["SecretName"], s["File"]["Name"])
                for s in container.get("Secrets") or []
            ],
            networks=[docker.types.NetworkAttachmentConfig(n["Target"]) for n in template.get("Networks") or []],
            restart_policy=docker.types.RestartPolicy(condition="none"),
            healthcheck=docker.types.Healthcheck(test=["NONE"]),  # the image's own checks the hub's port
            constraints=list((template.get("Placement") or {}).get("Constraints") or []),
            labels={LABEL_CONSOLE: "xnat-check"},
        )
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            tasks = docker_access.tasks(service.id)
            if tasks and tasks[0].state in ("complete", "failed", "rejected", "shutdown", "orphaned"):
                state = tasks[0].state
                if state == "rejected":
                    raise DockerUnavailable(f"the check's service was rejected: {tasks[0].error}")
                break
            time.sleep(0.2)
        else:
            raise DockerUnavailable(f"the check inside the hub's network did not finish within {timeout:g} s")
        steps = []
        with docker_access.service_logs(service.id) as lines:
            for line in lines:
                text = line.text.strip()
                if not text.startswith("{"):
                    continue
                try:
                    data = json.loads(text)
                    steps.append(
                        CheckStep(
                            data["name"], CheckStatus(data["status"]), data.get("reason", ""), data.get("hint", "")
                        )
                    )
                except (ValueError, KeyError):
                    continue
        if not steps:
            raise DockerUnavailable(f"the check inside the hub's network printed nothing (task {state})")
        return steps
    finally:
        if service is not None:
            with contextlib.suppress(Exception):
                service.remove()
