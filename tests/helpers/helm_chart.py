"""Helpers for tests/helm: the chart's paths, Helm run in a private home, and reading what it renders."""


from __future__ import annotations

import base64
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "xnat-jupyterhub"
EXAMPLES = CHART / "examples"
# The workplace keeps vendored artifacts beside the checkout (../shared/vendor), never in the repository.
_VENDORED = [base / "shared" / "vendor" / "jupyterhub-4.4.0.tgz" for base in (REPO.parent, Path("/work"))]
Z2JH_CHART = Path(os.environ.get("XJH_Z2JH_CHART") or next((p for p in _VENDORED if p.is_file()), _VENDORED[0]))
Z2JH_SHA256 = "1494dfb94faefb3c36ae9c35bfeda25f37ef5361d900627872e3e6ea84b8fdb1"
HELM_VERSIONS = ("4.1.4", "3.17.2")
# A password that --set would mangle (a number, a comma, an equals sign, quotes, a backslash, a dollar).
HOSTILE_PASSWORD = "12345,67=8 \"q' \\ $HOME"


@dataclass(frozen=True)
class Helm:
    version: str
    path: Path
    home: Path  # HELM_*_HOME: nothing read from or written to the user's own Helm settings

    def run(self, *args: str | Path, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **self.env()}
        done = subprocess.run([str(self.path), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                              env=env, timeout=120, check=False)
        if check:
            assert done.returncode == 0, f"helm {self.version} {' '.join(map(str, args))}:\n{done.stderr[-3000:]}"
        return done

    def env(self) -> dict[str, str]:
        return {
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
            "HELM_REPOSITORY_CONFIG": str(self.home / "repositories.yaml"),
            "HELM_REPOSITORY_CACHE": str(self.home / "repository"),
        }


def copy_chart(destination: Path, z2jh_chart: Path | None) -> Path:
    """The chart copied to `destination`/xnat-jupyterhub, with Zero to JupyterHub in charts/ if given."""
    chart = destination / "xnat-jupyterhub"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("charts"))
    if z2jh_chart is not None:
        (chart / "charts").mkdir()
        shutil.copy(z2jh_chart, chart / "charts" / z2jh_chart.name)
    return chart


def values_args(*examples: str | Path, password: Path | None = None, extra: tuple[str, ...] = ()) -> list[str]:
    args: list[str] = []
    for example in examples:
        args += ["-f", str(EXAMPLES / example if isinstance(example, str) else example)]
    if password is not None:
        args += ["--set-file", f"secrets.xnatPassword={password}"]
    return args + list(extra)


def objects(manifest: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(manifest) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def secret_data(secret: dict[str, Any]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}
