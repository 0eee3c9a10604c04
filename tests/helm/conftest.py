"""The real Helm (4 and 3) and a copy of the chart with Zero to JupyterHub in its charts/, for tests/helm.

Helm comes from scripts/helm-tools.sh (npm packages, cached; the tests skip with its reason only when the npm
registry cannot be reached). Zero to JupyterHub 4.4.0 is the vendored chart that `helm dependency build` would
fetch (XJH_Z2JH_CHART, default ../shared/vendor/jupyterhub-4.4.0.tgz beside the checkout), checked by its sha256.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.helpers.helm_chart import HELM_VERSIONS, HOSTILE_PASSWORD, REPO, Z2JH_CHART, Z2JH_SHA256, Helm, copy_chart


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


@pytest.fixture(scope="session")
def chart(tmp_path_factory: pytest.TempPathFactory, z2jh_chart: Path) -> Path:
    return copy_chart(tmp_path_factory.mktemp("chart"), z2jh_chart)


@pytest.fixture(scope="session")
def password_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("password") / "xnat-password"
    path.write_text(HOSTILE_PASSWORD)
    return path
