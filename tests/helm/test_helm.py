"""The chart checked by the real Helm, 4 and 3, with Zero to JupyterHub 4.4.0 in its charts/ (see conftest.py).

- `helm lint --strict` and `helm template` of every documented values example (examples/, and README's install
  command run as written, with a password --set would mangle);
- `helm install --dry-run=client` (Helm 4; Helm 3 asks a cluster for its version even then, see the test);
- `kubernetes-validate --strict` on every render, for the oldest Kubernetes the chart claims (Chart.yaml's
  kubeVersion) and the newest kubernetes-validate knows;
- every refusal README documents, fired with its message;
- the Chart.lock (`helm dependency build` from a chart repository), stable renders for GitOps, and the console's
  service only when asked for.
"""

from __future__ import annotations

import functools
import http.server
import re
import secrets
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.helm_chart import (
    CHART,
    EXAMPLES,
    HOSTILE_PASSWORD,
    Helm,
    copy_chart,
    find,
    objects,
    secret_data,
    values_args,
)

README = CHART / "README.md"

# Each documented values example: the files given with -f, in order (README's "Values examples").
EXAMPLE_SETS = {
    "minimal": ("minimal.yaml",),
    "console": ("minimal.yaml", "console.yaml"),
    "postgres": ("minimal.yaml", "postgres.yaml"),
    "gitops": ("minimal.yaml", "gitops.yaml"),
}


@pytest.fixture(scope="session")
def z2jh_secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What gitops.yaml tells the operator to supply from a secret store: Zero to JupyterHub's own secrets."""
    path = tmp_path_factory.mktemp("gitops") / "z2jh-secrets.yaml"
    path.write_text(yaml.safe_dump({"jupyterhub": {
        "proxy": {"secretToken": secrets.token_hex(32)},
        "hub": {"cookieSecret": secrets.token_hex(32), "config": {"CryptKeeper": {"keys": [secrets.token_hex(32)]}}},
    }}))
    return path


def example_args(name: str, password: Path, z2jh_secrets: Path) -> list[str]:
    files: list[str | Path] = list(EXAMPLE_SETS[name])
    extra: tuple[str, ...] = ()
    if name == "gitops":
        files.append(z2jh_secrets)
    if name == "postgres":
        extra = ("--set-string", "secrets.databasePassword=database-password")
    return values_args(*files, password=password, extra=extra)


def template(helm: Helm, chart: Path, *args: str) -> str:
    return helm.run("template", "xnat-jupyterhub", chart, "-n", "xnat", *args).stdout


@pytest.fixture(scope="session")
def renders(helm: Helm, chart: Path, password_file: Path, z2jh_secrets: Path,
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`helm template` of each documented example, as files (one render per example and Helm)."""
    out = tmp_path_factory.mktemp(f"renders-{helm.version}")
    files = {}
    for name in EXAMPLE_SETS:
        files[name] = out / f"{name}.yaml"
        files[name].write_text(template(helm, chart, *example_args(name, password_file, z2jh_secrets)))
    return files


# -- the documented examples ---------------------------------------------------------------------------------


def test_every_example_file_is_documented_and_rendered() -> None:
    on_disk = {p.name for p in EXAMPLES.glob("*.yaml")}
    assert on_disk == {f for files in EXAMPLE_SETS.values() for f in files}
    readme = README.read_text()
    assert all(f"examples/{name}" in readme for name in on_disk), "README names every example"


@pytest.mark.parametrize("example", EXAMPLE_SETS)
def test_lint_strict(helm: Helm, chart: Path, password_file: Path, z2jh_secrets: Path, example: str) -> None:
    done = helm.run("lint", "--strict", chart, *example_args(example, password_file, z2jh_secrets))
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout
    assert "[WARNING]" not in done.stdout and "[ERROR]" not in done.stdout, done.stdout


def test_minimal_example_renders_the_hub_with_the_password_verbatim(renders: dict[str, Path]) -> None:
    docs = objects(renders["minimal"].read_text())
    kinds = sorted({d["kind"] for d in docs})
    assert {"Deployment", "ConfigMap", "Secret", "Service", "PersistentVolumeClaim", "NetworkPolicy"} <= set(kinds)
    hub = find(docs, "Deployment", "hub")["spec"]["template"]["spec"]["containers"][0]
    assert hub["image"] == "registry.example.org/xnat-jupyterhub/k8s-hub:0.1.0"
    env = {e["name"]: e.get("value") for e in hub["env"]}
    assert env["JH_XNAT_TIMEOUT"] == "30" and env["JH_XNAT_URL"].startswith("http://xnat-web.xnat")
    ours = secret_data(find(docs, "Secret", "xnat-jupyterhub"))
    assert ours["xnat-password"] == HOSTILE_PASSWORD, "--set-file keeps every character"


def readme_install_block() -> str:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.DOTALL)
    (block,) = [b for b in blocks if "helm install" in b]
    return block


def test_readme_install_command_as_written(helm: Helm, chart: Path, tmp_path: Path) -> None:
    """README's install step, run by bash as written (helm given --dry-run=client, or template on Helm 3)."""
    (tmp_path / "helm").mkdir()
    (tmp_path / "helm" / "xnat-jupyterhub").symlink_to(chart)
    dry_run = '"$HELM" "$@" --dry-run=client' if helm.version.startswith("4") else \
        '"$HELM" template "${@:2}"'  # Helm 3's client-only install (see test_install_dry_run_client)
    script = f"helm() {{ {dry_run}; }}\n{readme_install_block()}"
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False,
                          env={**helm.env(), "PATH": "/usr/bin:/bin", "HELM": str(helm.path),
                               "XNAT_SERVICE_ACCOUNT_PASSWORD": HOSTILE_PASSWORD})
    assert done.returncode == 0, done.stderr
    manifest = done.stdout.split("MANIFEST:", 1)[-1].split("\nNOTES:", 1)[0]
    docs = objects(manifest)
    assert secret_data(find(docs, "Secret", "xnat-jupyterhub"))["xnat-password"] == HOSTILE_PASSWORD
    assert (tmp_path / "xnat-values.yaml").is_file()


def test_install_dry_run_client(helm: Helm, chart: Path, password_file: Path) -> None:
    args: list[str | Path] = ["install", "xnat-jupyterhub", chart, "-n", "xnat", "--dry-run=client", *values_args(
        "minimal.yaml", password=password_file)]
    if helm.version.startswith("3"):
        # Helm 3.17 asks the API server for its version even in a client dry run: with no cluster it stops here.
        # `helm template` is Helm 3's client-only install, tested above.
        done = helm.run(*args, check=False)
        assert done.returncode != 0 and "Kubernetes cluster unreachable" in done.stderr, done.stderr
        return
    done = helm.run(*args)
    assert "STATUS: pending-install" in done.stdout
    notes = done.stdout.split("\nNOTES:", 1)[1]
    assert "http://proxy-public.xnat.svc.cluster.local/jupyterhub/hub/api" in notes
    assert "console's service (xnat-jh-console) is off" in notes
    docs = objects(done.stdout.split("MANIFEST:", 1)[1].split("\nNOTES:", 1)[0])
    assert find(docs, "Deployment", "hub")


def kube_versions() -> list[str]:
    from kubernetes_validate.utils import all_versions, latest_version

    floor = re.fullmatch(r">=(\d+\.\d+)\.0-0", yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"])
    assert floor, "kubeVersion is a plain floor, >=X.Y.0-0"
    oldest = f"{floor[1]}.0"
    assert oldest in all_versions(), f"kubernetes-validate does not know Kubernetes {oldest}"
    return [oldest, latest_version()]


def test_kube_version_floor_is_zero_to_jupyterhubs(helm: Helm, chart: Path, z2jh_chart: Path,
                                                   password_file: Path) -> None:
    """Chart.yaml claims what Zero to JupyterHub 4.4.0 supports (1.28), and Helm installs there."""
    with tarfile.open(z2jh_chart) as packaged:
        z2jh = yaml.safe_load(packaged.extractfile("jupyterhub/Chart.yaml").read())  # type: ignore[union-attr]
    ours = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    assert ours == z2jh["kubeVersion"] == ">=1.28.0-0"
    template(helm, chart, "--kube-version", "1.28.0", *values_args("minimal.yaml", password=password_file))


@pytest.mark.parametrize("kube_version", kube_versions())
def test_every_render_validates_strictly(renders: dict[str, Path], kube_version: str) -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "kubernetes-validate"), "--strict", "--quiet",
                           "-k", kube_version, *map(str, renders.values())],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ERROR" not in done.stdout


# -- refusals --------------------------------------------------------------------------------------------------


SCHEMA = "values don't meet the specifications of the schema(s)"
# message documented in README -> (arguments that must produce it, path of the refused value for schema errors)
REFUSALS: dict[str, tuple[list[str], str | None]] = {
    "jupyterhub.hub.image.name: no hub image is published": (
        ["--set-string", "jupyterhub.hub.image.name="], None),
    "secrets.xnatPassword: set the password of XNAT's service account": ([], None),
    "jupyterhub.hub.db.type is postgres: set jupyterhub.hub.db.url": (
        ["--set-string", "jupyterhub.hub.db.type=postgres,secrets.databasePassword=database-password"], None),
    "secrets.databasePassword: jupyterhub.hub.db.type is postgres": (
        ["-f", str(EXAMPLES / "postgres.yaml")], None),
    "jupyterhub.hub.db.type must be sqlite-pvc or postgres": (["--set-string", "jupyterhub.hub.db.type=mysql"], None),
    "jupyterhub.hub.extraVolumes must mount the Secret": (["--set-string", "secrets.name=other-secret"], None),
    "jupyterhub.hub.extraEnv.PGPASSWORD must read the Secret": (
        ["--set-string", "jupyterhub.hub.extraEnv.PGPASSWORD.valueFrom.secretKeyRef.name=other"], None),
    "externalDatabase.service: set externalName or ips, not both": (
        ["--set", "externalDatabase.service.create=true,externalDatabase.service.ips={10.0.0.5}",
         "--set-string", "externalDatabase.service.externalName=pg.example.org"], None),
    "externalDatabase.service.create is true: set externalName": (
        ["--set", "externalDatabase.service.create=true"], None),
    "secrets: the console-token must be at least 16 characters": (
        ["-f", str(EXAMPLES / "console.yaml"), "--set-string", "secrets.consoleToken=too-short"], None),
    "secrets.consoleToken is set but the console's service is off": (
        ["--set-string", "secrets.consoleToken=0123456789abcdef0123"], None),
    "chart requires kubeVersion": (["--kube-version", "1.27.0"], None),
    f"{SCHEMA} (an environment value that is not a string)": (
        ["--set", "jupyterhub.hub.extraEnv.JH_TLS_VERIFY=false"], "jupyterhub.hub.extraEnv.JH_TLS_VERIFY"),
    f"{SCHEMA} (a password given with --set that YAML reads as a number)": (
        ["--set", "secrets.xnatPassword=12345"], "secrets.xnatPassword"),
}


# Refusals of the password itself: rendered without --set-file (which Helm applies after --set).
WITHOUT_PASSWORD = {"secrets.xnatPassword: set the password of XNAT's service account",
                    f"{SCHEMA} (a password given with --set that YAML reads as a number)"}


def documented_refusals() -> set[str]:
    section = README.read_text().split("## What the chart refuses", 1)[1].split("\n## ", 1)[0]
    return {message.replace("\\|", "|") for message in re.findall(r"^\| [^|]+ \| `([^`]+)`", section, re.MULTILINE)}


def test_refusals_are_the_documented_ones() -> None:
    tested = {message.split(" (")[0] if message.startswith(SCHEMA) else message for message in REFUSALS}
    assert documented_refusals() == tested


@pytest.mark.parametrize("message", REFUSALS)
def test_refusal(helm: Helm, chart: Path, password_file: Path, message: str) -> None:
    args, value_path = REFUSALS[message]
    password = None if message in WITHOUT_PASSWORD else password_file
    done = helm.run("template", "xnat-jupyterhub", chart, *values_args("minimal.yaml", password=password),
                    *args, check=False)
    assert done.returncode != 0, f"rendered although it should refuse: {message}"
    if value_path is None:
        assert message in done.stderr, done.stderr
    else:
        assert SCHEMA in done.stderr, done.stderr
        # Helm 3 names the value jupyterhub.hub.x, Helm 4 /jupyterhub/hub/x
        assert value_path in done.stderr or "/" + value_path.replace(".", "/") in done.stderr, done.stderr
    assert done.stderr.count("\n") <= 4, "a message, not a dump"


# -- the console's service, only when asked for ----------------------------------------------------------------


def hub_env_names(docs: list[dict[str, Any]]) -> set[str]:
    container = find(docs, "Deployment", "hub")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"] for e in container["env"]}


def test_console_service_only_when_asked_for(renders: dict[str, Path]) -> None:
    plain = objects(renders["minimal"].read_text())
    assert "console-token" not in secret_data(find(plain, "Secret", "xnat-jupyterhub"))
    assert "JH_CONSOLE_TOKEN_FILE" not in hub_env_names(plain)
    console = objects(renders["console"].read_text())
    assert len(secret_data(find(console, "Secret", "xnat-jupyterhub"))["console-token"]) == 64
    assert "JH_CONSOLE_TOKEN_FILE" in hub_env_names(console)


# -- GitOps ----------------------------------------------------------------------------------------------------


def test_gitops_example_renders_the_same_every_time(helm: Helm, chart: Path, password_file: Path,
                                                    z2jh_secrets: Path, renders: dict[str, Path]) -> None:
    again = template(helm, chart, *example_args("gitops", password_file, z2jh_secrets))
    assert again == renders["gitops"].read_text(), "a second render differs: GitOps would change it on every sync"
    docs = objects(again)
    assert not [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "xnat-jupyterhub"]


def test_generated_tokens_change_per_render_unless_given(helm: Helm, chart: Path, password_file: Path) -> None:
    """Why gitops.yaml exists: with no cluster to `lookup`, every render makes new tokens."""
    def tokens(*extra: str) -> str:
        docs = objects(template(helm, chart, *values_args("minimal.yaml", password=password_file), *extra))
        return secret_data(find(docs, "Secret", "xnat-jupyterhub"))["xnat-service-token"]

    assert tokens() != tokens()
    given = ("--set-string", "secrets.xnatServiceToken=" + "t" * 32)
    assert tokens(*given) == tokens(*given) == "t" * 32


# -- Chart.lock ------------------------------------------------------------------------------------------------


@pytest.fixture
def chart_repository(z2jh_chart: Path, tmp_path: Path) -> Iterator[str]:
    """Zero to JupyterHub 4.4.0 served over HTTP on loopback, as its chart repository serves it."""
    root = tmp_path / "repository"
    root.mkdir()
    (root / z2jh_chart.name).write_bytes(z2jh_chart.read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def add_repository(helm: Helm, url: str, z2jh_chart: Path, tmp_path: Path) -> None:
    """Helm's settings as after `helm repo add jupyterhub https://hub.jupyter.org/helm-chart/ && helm repo update`,
    with the repository's index pointing at `url` for the chart's download."""
    dependency = yaml.safe_load((CHART / "Chart.yaml").read_text())["dependencies"][0]
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    (index_dir / z2jh_chart.name).write_bytes(z2jh_chart.read_bytes())
    helm.run("repo", "index", index_dir, "--url", url)
    cache = Path(helm.env()["HELM_REPOSITORY_CACHE"])
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "jupyterhub-index.yaml").write_text((index_dir / "index.yaml").read_text())
    Path(helm.env()["HELM_REPOSITORY_CONFIG"]).write_text(yaml.safe_dump(
        {"apiVersion": "", "repositories": [{"name": "jupyterhub", "url": dependency["repository"]}]}))


def test_dependency_build_fetches_what_chart_lock_names(helm: Helm, z2jh_chart: Path, chart_repository: str,
                                                       tmp_path: Path) -> None:
    add_repository(helm, chart_repository, z2jh_chart, tmp_path)
    fresh = copy_chart(tmp_path, None)
    listed = helm.run("dependency", "list", fresh).stdout
    assert re.search(r"jupyterhub\s+4\.4\.0\s+https://hub\.jupyter\.org/helm-chart/\s+missing", listed), listed
    helm.run("dependency", "build", "--skip-refresh", fresh)
    assert (fresh / "charts" / z2jh_chart.name).read_bytes() == z2jh_chart.read_bytes()
    assert re.search(r"jupyterhub\s+4\.4\.0\s+\S+\s+ok", helm.run("dependency", "list", fresh).stdout)


def test_chart_lock_is_checked_against_chart_yaml(helm: Helm, z2jh_chart: Path, chart_repository: str,
                                                  tmp_path: Path) -> None:
    """`helm dependency build` refuses a Chart.lock that does not match Chart.yaml: ours matches (above)."""
    add_repository(helm, chart_repository, z2jh_chart, tmp_path)
    changed = copy_chart(tmp_path, None)
    chart_yaml = changed / "Chart.yaml"
    chart_yaml.write_text(chart_yaml.read_text().replace("version: 4.4.0", "version: 4.3.0"))
    done = helm.run("dependency", "build", "--skip-refresh", changed, check=False)
    assert done.returncode != 0 and "out of sync" in done.stderr, done.stderr


def test_chart_lock_is_in_the_repository() -> None:
    lock = yaml.safe_load((CHART / "Chart.lock").read_text())
    assert lock["dependencies"] == yaml.safe_load((CHART / "Chart.yaml").read_text())["dependencies"]
    assert "Chart.lock" not in (CHART / ".helmignore").read_text()
