"""The chart's own files, checked in Python: what these tests can and cannot see.

They check: Chart.yaml pins the Zero to JupyterHub release; values.yaml parses and holds what the hub needs; every
`.Values` path a template reads exists; the Secret's keys, its mount and the hub's `*_FILE` variables agree; every
JH_* variable the values set is one the hub package reads; and the hub's `extraConfig` really loads: it is run
against a traitlets Config the way Zero to JupyterHub runs it, with the values' environment, and yields our
authenticator, XNAT's and the console's services with the roles of hub.roles, and an XnatKubeSpawner.

Helm itself renders, lints and validates the chart in test_helm.py, and test_hub_image.py starts the hub in its
image; these check what Helm cannot see: that the values' settings mean what the hub package reads.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (it comes with pip install '.[kubernetes]')")

from traitlets.config import Config  # noqa: E402
from traitlets.utils.importstring import import_item  # noqa: E402

from hub import roles  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "xnat-jupyterhub"
HUB_SOURCES = sorted((REPO / "hub").glob("*.py"))

# Values the templates read that are optional (unset means "not used"), each with why.
OPTIONAL_VALUE_PATHS = {
    "jupyterhub.hub.db.url": "only for db type postgres (commented in values.yaml)",
}


def load_yaml(name: str) -> Any:
    return yaml.safe_load((CHART / name).read_text())


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return load_yaml("values.yaml")


def walk(node: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every (dotted path, value) in a YAML tree."""
    items = [(path, node)]
    if isinstance(node, dict):
        for key, value in node.items():
            items += walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            items += walk(value, f"{path}[{index}]")
    return items


def lookup(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


# -- Chart.yaml and values.yaml --------------------------------------------------------------------------------


def test_chart_pins_a_zero_to_jupyterhub_release_with_jupyterhub_5() -> None:
    chart = load_yaml("Chart.yaml")
    assert chart["apiVersion"] == "v2" and chart["name"] == "xnat-jupyterhub"
    (dependency,) = chart["dependencies"]
    assert dependency["name"] == "jupyterhub"
    assert dependency["repository"] == "https://hub.jupyter.org/helm-chart/"
    assert re.fullmatch(r"4\.\d+\.\d+", dependency["version"]), "an exact 4.x release (JupyterHub 5)"
    assert "image/" in (CHART / ".helmignore").read_text().split()


def pins(text: str) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    return {name.lower(): version for name, version in (line.split("==") for line in lines if line)}


def test_hub_image_versions_are_pinned_and_agree() -> None:
    """Two builds of the image install the same code, and the tests' KubeSpawner is the image's."""
    requirements = (CHART / "image" / "requirements.txt").read_text()
    lines = [line for line in requirements.splitlines() if line and not line.startswith("#")]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][A-Za-z0-9.+-]*", line) for line in lines), lines
    image = pins(requirements)
    # Zero to JupyterHub 4.4.0's hub image ships KubeSpawner 7.0.0; pyproject's `kubernetes` extra is the same.
    assert image["jupyterhub-kubespawner"] == "7.0.0"
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"jupyterhub-kubespawner==7.0.0"' in pyproject
    # The same JupyterHub as the Swarm image.
    assert image["jupyterhub"] == pins((REPO / "deploy" / "hub-requirements.txt").read_text())["jupyterhub"]


def test_no_image_is_never_pulled(values: dict[str, Any]) -> None:
    policies = {path: value for path, value in walk(values) if path.endswith("pullPolicy")}
    assert policies, "values.yaml sets pull policies"
    assert all(value == "IfNotPresent" for value in policies.values()), policies
    assert values["jupyterhub"]["hub"]["image"]["name"] == "", "no image is published: the chart refuses until named"


def test_hub_settings_for_xnat(values: dict[str, Any]) -> None:
    hub = values["jupyterhub"]["hub"]
    assert hub["baseUrl"] == "/jupyterhub"
    assert hub["db"]["type"] in ("sqlite-pvc", "postgres")
    storage = values["jupyterhub"]["singleuser"]["storage"]
    assert storage["type"] == "static"
    assert storage["static"]["subPath"] == "users/{unescaped_username}"
    assert storage["homeMountPath"] == "/workspace/{unescaped_username}"
    assert values["jupyterhub"]["cull"]["enabled"] is False, "XNAT culls; the hub must not cull as well"
    assert hub["extraEnv"]["JH_XNAT_ARCHIVE_PVC"]


def test_every_value_a_template_reads_exists(values: dict[str, Any]) -> None:
    used: set[str] = set()
    for template in (CHART / "templates").iterdir():
        used |= set(re.findall(r"\.Values\.([A-Za-z0-9_.]+)", template.read_text()))
    assert "secrets.name" in used and "externalDatabase.service" in used
    missing = []
    for path in sorted(used):
        try:
            lookup(values, path)
        except KeyError:
            if path not in OPTIONAL_VALUE_PATHS:
                missing.append(path)
    assert not missing, f"templates read values that values.yaml does not define: {missing}"


def test_secret_keys_mount_and_file_variables_agree(values: dict[str, Any]) -> None:
    secret_template = (CHART / "templates" / "secret.yaml").read_text()
    data = secret_template.split("\ndata:\n", 1)[1]
    keys = set(re.findall(r"^  ([a-z-]+): \{\{", data, re.MULTILINE))
    assert keys == {"xnat-service-token", "xnat-password", "console-token", "database-password"}
    hub = values["jupyterhub"]["hub"]
    name = values["secrets"]["name"]
    (volume,) = [v for v in hub["extraVolumes"] if v.get("secret", {}).get("secretName") == name]
    assert volume["secret"]["defaultMode"] == 0o440
    (mount,) = [m for m in hub["extraVolumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    files = {k: v for k, v in hub["extraEnv"].items() if k.endswith("_FILE")}
    # The console's JH_CONSOLE_TOKEN_FILE only when asked for (examples/console.yaml)
    assert set(files) == {"JH_XNAT_SERVICE_TOKEN_FILE", "JH_XNAT_PASSWORD_FILE"}
    files.update(yaml.safe_load((CHART / "examples" / "console.yaml").read_text())["jupyterhub"]["hub"]["extraEnv"])
    for path in files.values():
        directory, key = path.rsplit("/", 1)
        assert directory == mount["mountPath"] and key in keys
    pg = hub["extraEnv"]["PGPASSWORD"]["valueFrom"]["secretKeyRef"]
    assert (pg["name"], pg["key"]) == (name, "database-password")


def test_every_variable_the_values_set_is_one_the_hub_reads(values: dict[str, Any]) -> None:
    """A misspelt variable would be silently ignored by the hub: each must appear in the hub package."""
    source = "\n".join(path.read_text() for path in HUB_SOURCES)
    names = [k for k in values["jupyterhub"]["hub"]["extraEnv"] if k.startswith("JH_")]
    unread = [n for n in names if f'"{n.removesuffix("_FILE")}"' not in source]
    assert not unread, f"values.yaml sets variables no hub module reads: {unread}"


# -- the hub's configuration -----------------------------------------------------------------------------------


def z2jh_get_config(chart_values: dict[str, Any]) -> Any:
    """What Zero to JupyterHub's `get_config` answers for keys this chart sets (its defaults are not here)."""

    def get_config(key: str, default: Any = None) -> Any:
        try:
            return lookup(chart_values, key)
        except KeyError:
            return default

    return get_config


@pytest.fixture
def hub_environment(values: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The hub container's environment from values.yaml with examples/console.yaml (the console's service asked
    for), with the Secret's files in a temporary directory."""
    secrets = {
        "xnat-service-token": "x" * 20 + "-xnat-service",
        "xnat-password": "service-account-password",
        "console-token": "c" * 20 + "-console",
    }
    for key, value in secrets.items():
        (tmp_path / key).write_text(value + "\n")
    console = yaml.safe_load((CHART / "examples" / "console.yaml").read_text())["jupyterhub"]["hub"]["extraEnv"]
    for name, value in {**values["jupyterhub"]["hub"]["extraEnv"], **console}.items():
        if not isinstance(value, str):
            continue  # valueFrom (PGPASSWORD): Kubernetes fills it in
        if name.endswith("_FILE"):
            value = str(tmp_path / value.rsplit("/", 1)[1])
        monkeypatch.setenv(name, value)
    for name in ("JH_XNAT_SERVICE_TOKEN", "JH_XNAT_PASSWORD", "JH_CONSOLE_TOKEN", "JH_MOUNT_ALLOWED_PREFIXES"):
        monkeypatch.delenv(name, raising=False)
    return secrets


def load_extra_config(values: dict[str, Any], c: Config) -> None:
    """Run the chart's hub.extraConfig snippets, sorted by name, with `c` and `get_config` as z2jh provides them."""
    for _, code in sorted(values["jupyterhub"]["hub"]["extraConfig"].items()):
        exec(compile(code, "<hub.extraConfig>", "exec"), {"c": c, "get_config": z2jh_get_config(values["jupyterhub"])})


def test_extra_config_loads_the_hub_package(values: dict[str, Any], hub_environment: dict[str, str]) -> None:
    extra_config = "\n".join(values["jupyterhub"]["hub"]["extraConfig"].values())
    assert "class " not in extra_config and "def " not in extra_config, "code belongs in the hub package"

    c = Config()
    # What z2jh configured before our snippet: its own service and role must survive.
    c.JupyterHub.services = [{"name": "jupyterhub-idle-culler", "command": ["culler"]}]
    c.JupyterHub.load_roles = [{"name": "jupyterhub-idle-culler", "scopes": ["list:users"],
                                "services": ["jupyterhub-idle-culler"]}]
    load_extra_config(values, c)

    assert import_item(c.JupyterHub.authenticator_class).__name__ == "XnatAuthenticator"
    assert import_item(c.JupyterHub.spawner_class).__name__ == "XnatKubeSpawner"
    assert c.JupyterHub.allow_named_servers is True
    assert c.KubeSpawner.working_dir == "/workspace/{unescaped_username}"
    tokens = {s["name"]: s.get("api_token") for s in c.JupyterHub.services}
    assert tokens == {
        "jupyterhub-idle-culler": None,
        "xnat": hub_environment["xnat-service-token"],
        "console": hub_environment["console-token"],
    }
    # The same roles as on Swarm: built by hub.roles, not retyped in the chart.
    roles_by_name = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert set(roles_by_name["xnat-service"]["scopes"]) == set(roles.XNAT_SCOPES)
    assert set(roles_by_name["console-service"]["scopes"]) == set(roles.CONSOLE_SCOPES)
    assert "admin" not in roles.CONSOLE_SCOPES and "jupyterhub-idle-culler" in roles_by_name


def test_spawner_from_the_chart_configuration(
    values: dict[str, Any], hub_environment: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spawner class the chart selects, built from the chart's configuration and environment."""
    pytest.importorskip("kubespawner", reason="jupyterhub-kubespawner is not installed (pip install '.[kubernetes]')")
    import asyncio
    from types import SimpleNamespace

    from kubespawner.clients import load_config

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: n, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: n, user: {token: never-sent}}]\n"
        "contexts: [{name: n, context: {cluster: n, user: n}}]\ncurrent-context: n\n"
    )
    monkeypatch.setattr("kubernetes_asyncio.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    load_config.cache_clear()

    c = Config()
    load_extra_config(values, c)
    spawner_class = import_item(c.JupyterHub.spawner_class)

    async def build() -> Any:
        user = SimpleNamespace(name="Alice.Smith", id=1, url="/jupyterhub/user/Alice.Smith/")
        return spawner_class(_mock=True, config=c, user=user)

    spawner = asyncio.run(build())
    assert spawner.working_dir == "/workspace/Alice.Smith"
    assert spawner.kube_site.archive_claim == values["jupyterhub"]["hub"]["extraEnv"]["JH_XNAT_ARCHIVE_PVC"]
    assert spawner.kube_site.archive_root == values["jupyterhub"]["hub"]["extraEnv"]["JH_XNAT_ARCHIVE_ROOT"]


def test_bad_token_stops_the_hub_with_one_line(
    values: dict[str, Any], hub_environment: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "console-token").write_text("short\n")
    with pytest.raises(SystemExit) as stopped:
        load_extra_config(values, Config())
    assert stopped.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "JH_CONSOLE_TOKEN must be at least 16 characters" in err
    assert "short" not in err


# -- documentation ---------------------------------------------------------------------------------------------


def documented_values(document: Path) -> dict[str, str]:
    """`| `path` | default | meaning |` rows of a values table: path -> default cell."""
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]*) \|", document.read_text(), re.MULTILINE)
    return {path: default.strip() for path, default in rows}


def value_leaves(values: dict[str, Any]) -> dict[str, Any]:
    """The values a table must list: scalars, lists, and each env variable / extraConfig snippet."""
    leaves: dict[str, Any] = {}

    def visit(node: Any, path: str) -> None:
        if isinstance(node, dict) and node and not path.endswith(("extraEnv.PGPASSWORD",)):
            for key, value in node.items():
                visit(value, f"{path}.{key}" if path else key)
        else:
            leaves[path] = node

    visit(values, "")
    return leaves


def yaml_text(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@pytest.mark.parametrize("document", ["helm/xnat-jupyterhub/README.md", "docs/kubernetes.md"])
def test_values_tables_list_every_value_with_its_default(values: dict[str, Any], document: str) -> None:
    table = documented_values(REPO / document)
    leaves = value_leaves(values)
    assert not set(leaves) - set(table), f"{document} does not list {sorted(set(leaves) - set(table))}"
    wrong = {path: (value, table[path]) for path, value in leaves.items()
             if isinstance(value, (str, int, bool)) and value != "" and "\n" not in str(value)
             and yaml_text(value) not in table[path]}
    assert not wrong, f"{document}: defaults differ from values.yaml: {wrong}"
    assert "http://proxy-public" in (REPO / document).read_text() and "/jupyterhub/hub/api" in (
        REPO / document).read_text()
