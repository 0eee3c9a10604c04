"""Where and how the stack runs: its name, file, variables (with those scripts/demo.sh recorded) and secrets."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xjh_contract import (
    hub_service_name,
)

STACK_NAME = "xnat-jupyterhub"
BASE_URL = "/jupyterhub"
DEFAULT_NETWORK = "jupyterhub-network"
DEFAULT_PORT = 8000
DEFAULT_SECRETS_PREFIX = "xnat_jupyterhub"
# Secret keys of docker-stack.yml; the Docker secret is named PREFIX_KEY.
SECRET_KEYS = ("xnat_service_token", "xnat_password", "console_token")
POLL = 0.2
UP_STATES = ("starting", "running")
REPO_STACK_FILE = Path(__file__).resolve().parents[3] / "docker-stack.yml"


class StackError(Exception):
    """Deploying or stopping cannot go on. The message says why and what to do; it never holds a secret."""


Progress = Callable[[str], None]


@dataclass(frozen=True)
class StackSettings:
    """Where and how the stack runs. `variables` are the `JH_*` values `docker stack deploy` substitutes
    (over the process environment); the derived properties read them the way docker-stack.yml does."""

    stack_file: Path = REPO_STACK_FILE
    stack_name: str = STACK_NAME
    variables: Mapping[str, str] = field(default_factory=dict[str, Any])
    # Demo and tests: missing secrets are created from files here (a file is generated when missing).
    secrets_dir: Path | None = None
    timeout: float = 120.0

    @classmethod
    def from_env(cls, **overrides: Any) -> StackSettings:
        """Settings from the environment, over the variables file of the last deploy (`JH_STACK_ENV_FILE`,
        default `$XDG_STATE_HOME/xnat-jupyterhub/stack.env`, written by scripts/demo.sh), so a console opened
        later redeploys with the same values."""
        env = os.environ
        recorded = read_env_file(Path(env.get("JH_STACK_ENV_FILE") or default_env_file()))
        values: dict[str, Any] = {
            "stack_file": Path(env.get("JH_STACK_FILE") or recorded.get("JH_STACK_FILE") or REPO_STACK_FILE),
            "stack_name": env.get("JH_STACK_NAME") or recorded.get("JH_STACK_NAME") or STACK_NAME,
            "variables": {name: env.get(name) or value for name, value in recorded.items()},
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def variable(self, name: str, default: str = "") -> str:
        value = self.variables.get(name)
        if value is None:
            value = os.environ.get(name, "")
        return value or default

    @property
    def environment(self) -> dict[str, str]:
        """The environment `docker stack deploy` runs with."""
        env = dict(os.environ)
        env.update({k: str(v) for k, v in self.variables.items()})
        return env

    @property
    def network(self) -> str:
        return self.variable("JH_NETWORK", DEFAULT_NETWORK)

    @property
    def port(self) -> int:
        raw = self.variable("JH_PORT", str(DEFAULT_PORT))
        try:
            return int(raw)
        except ValueError:
            raise StackError(f"JH_PORT must be a port number, got {raw[:20]!r}") from None

    @property
    def hub_url(self) -> str:
        """The hub's public URL on this node (base URL included, no trailing slash)."""
        return f"http://127.0.0.1:{self.port}{BASE_URL}"

    @property
    def hub_api_url(self) -> str:
        return f"{self.hub_url}/hub/api"

    @property
    def hub_service(self) -> str:
        return hub_service_name(self.stack_name)

    def secret_name(self, key: str) -> str:
        return f"{self.variable('JH_SECRETS_PREFIX', DEFAULT_SECRETS_PREFIX)}_{key}"

    @property
    def secret_names(self) -> list[str]:
        return [self.secret_name(key) for key in SECRET_KEYS]


def default_env_file() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "xnat-jupyterhub" / "stack.env"


def read_env_file(path: Path) -> dict[str, str]:
    """`NAME=value` lines (no quoting, # comments); {} when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise StackError(f"cannot read {path}: {e.strerror}") from None
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip().isidentifier():
            raise StackError(f"{path}:{number}: expected NAME=value")
        values[name.strip()] = value.strip()
    return values
