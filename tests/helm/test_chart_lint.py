"""`helm lint` of the chart, by Helm itself: the Helm 4 library that the PyPI package helm-sdkpy ships.

No `helm` binary can be installed here (Debian has no helm package; PyPI and npm ship none for Linux), but
helm-sdkpy carries Helm's Go code as a shared library with its lint action. Lint renders our templates with the
values, parses the output as YAML and checks values.yaml against values.schema.json. It does NOT:

- render Zero to JupyterHub's templates: the dependency cannot be fetched (no chart repository is reachable from
  here), so lint reports it missing (a warning) and renders our templates alone;
- stop at `required` or `fail`: in lint mode Helm only logs them. The tests read Helm's log for them, which is
  how they check that a bad setting would stop `helm install` with our message;
- validate objects against a cluster's API (there is no cluster), or offer `helm template` (the library has no
  client-only render).

Each lint runs in a child process (the Go runtime stays out of pytest's) on a copy of the chart whose values.yaml
the test rewrites.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (it comes with pip install '.[kubernetes]')")
pytest.importorskip(
    "helm_sdkpy",
    reason="helm-sdkpy (Helm's library) is not installed: pip install --ignore-requires-python helm-sdkpy==0.1.32",
)

CHART = Path(__file__).resolve().parents[2] / "helm" / "xnat-jupyterhub"
INFO, WARNING, ERROR = 1, 2, 3
PASSWORD = "service-account-password"

LINT = """
import asyncio, json, sys
import helm_sdkpy
result = asyncio.run(helm_sdkpy.Lint(helm_sdkpy.Configuration()).run(sys.argv[1]))
print(json.dumps(result))
"""


class Lint(NamedTuple):
    messages: list[tuple[int, str]]  # (severity, path relative to the chart)
    log: str  # Helm's log: `required` and `fail` calls land here in lint mode

    def at_least(self, severity: int) -> list[tuple[int, str]]:
        return [m for m in self.messages if m[0] >= severity]


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    copy_dir = tmp_path / "xnat-jupyterhub"
    shutil.copytree(CHART, copy_dir)
    return copy_dir


def base_values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def lint(chart: Path, values: dict[str, Any] | None = None) -> Lint:
    if values is not None:
        (chart / "values.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    done = subprocess.run(
        [sys.executable, "-c", LINT, str(chart)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["TotalChartsLinted"] == 1
    messages = []
    for message in result["Messages"]:
        path = message["Path"]
        messages.append((message["Severity"], "." if path == str(chart) else path))
    return Lint(messages, done.stderr)


def with_password(values: dict[str, Any]) -> dict[str, Any]:
    values = copy.deepcopy(values)
    values["secrets"]["xnatPassword"] = PASSWORD
    return values


def test_chart_lints_clean(chart: Path) -> None:
    result = lint(chart, with_password(base_values()))
    assert not result.at_least(ERROR), result
    # The one warning: Zero to JupyterHub is declared but not in charts/ (it cannot be fetched here).
    assert result.at_least(WARNING) == [(WARNING, ".")]
    assert "fail" not in result.log and "missing required" not in result.log


def test_default_values_need_the_xnat_password(chart: Path) -> None:
    result = lint(chart)
    assert not result.at_least(ERROR)
    assert "secrets.xnatPassword: set the password of XNAT's service account" in result.log


def test_postgres_with_an_external_server(chart: Path) -> None:
    values = with_password(base_values())
    values["secrets"]["databasePassword"] = "database-password"
    values["jupyterhub"]["hub"]["db"] = {
        "type": "postgres", "url": "postgresql+psycopg2://jupyterhub@xnat-jupyterhub-postgresql:5432/jupyterhub"}
    values["externalDatabase"]["service"].update(create=True, ips=["10.0.0.5", "10.0.0.6"])
    result = lint(chart, values)
    assert not result.at_least(ERROR), result
    assert "fail" not in result.log and "missing required" not in result.log


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda v: v["jupyterhub"]["hub"]["db"].update(type="postgres"),
         "jupyterhub.hub.db.type is postgres: set jupyterhub.hub.db.url"),
        (lambda v: v["jupyterhub"]["hub"]["db"].update(type="postgres", url="postgresql://h/db"),
         "secrets.databasePassword: jupyterhub.hub.db.type is postgres"),
        (lambda v: v["jupyterhub"]["hub"]["db"].update(type="mysql"),
         "jupyterhub.hub.db.type must be sqlite-pvc or postgres"),
        (lambda v: v["secrets"].update(name="other-secret"),
         'jupyterhub.hub.extraVolumes must mount the Secret \\"other-secret\\"'),
        (lambda v: v["jupyterhub"]["hub"]["extraEnv"]["PGPASSWORD"]["valueFrom"]["secretKeyRef"].update(name="x"),
         "jupyterhub.hub.extraEnv.PGPASSWORD must read the Secret"),
        (lambda v: v["externalDatabase"]["service"].update(create=True, externalName="pg.example.org", ips=["1.2.3.4"]),
         "externalDatabase.service: set externalName or ips, not both"),
        (lambda v: v["externalDatabase"]["service"].update(create=True),
         "externalDatabase.service.create is true: set externalName"),
        (lambda v: v["secrets"].update(consoleToken="too-short"),
         "secrets: the console-token must be at least 16 characters"),
    ],
)
def test_bad_settings_fail_the_release_with_a_message(chart: Path, change: Any, message: str) -> None:
    values = with_password(base_values())
    change(values)
    result = lint(chart, values)
    assert message in result.log, result.log[-2000:]


@pytest.mark.parametrize(
    "change",
    [
        lambda v: v["externalDatabase"]["service"].update(port="5432x"),
        lambda v: v["secrets"].update(xnatPasword="typo"),
        lambda v: v["secrets"].update(name="Not_A_Name"),
        lambda v: v.update(xnat={"url": "misplaced: XNAT settings go in jupyterhub.hub.extraEnv"}),
    ],
)
def test_values_schema_refuses_typos_and_bad_types(chart: Path, change: Any) -> None:
    values = with_password(base_values())
    change(values)
    assert (ERROR, "values.yaml") in lint(chart, values).messages


def test_a_template_that_renders_broken_yaml_is_an_error(chart: Path) -> None:
    """The lint really parses what our templates render (so the clean results above mean something)."""
    (chart / "templates" / "broken.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [x}\n")
    assert (ERROR, "templates/broken.yaml") in lint(chart, with_password(base_values())).messages
