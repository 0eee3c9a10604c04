"""The hub starts in its real image, configured as the chart's hub Deployment configures it, with no cluster.

The image is built as helm/xnat-jupyterhub/image/build.sh builds it (FROM the local Debian base). The chart is
rendered by Helm 4 with Zero to JupyterHub in charts/; the hub container runs with the Deployment's args, user and
environment, and every volume mount of the Deployment is a bind mount of the rendered object it names (the hub
ConfigMap's keys, both Secrets' keys with their modes, a directory for the sqlite PVC). Kubernetes would add one
environment variable pair per Service (`PROXY_API_SERVICE_HOST`/`_PORT`, ...): they are added the same way, from
the rendered Services. The proxy is a real configurable-http-proxy on the host, reached as `proxy-api`, as Zero to
JupyterHub's proxy pod is reached in-cluster.

What shows the hub initialised: it answers its REST API, the xnat and console tokens authenticate as those two
services with their roles' scopes, its login page is the XNAT authenticator's, its log names the XNAT
authenticator and XnatKubeSpawner, and it registered its route with the proxy. A bad value stops it with one line.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub import roles
from tests.helpers.helm_chart import CHART, Helm, copy_chart, find, objects, secret_data, values_args
from tests.helpers.waiting import free_port, wait_for

pytestmark = pytest.mark.docker

IMAGE = os.environ.get("XJH_K8S_HUB_TEST_IMAGE", "xnat-jupyterhub/k8s-hub:xjh-h12-test")
NAME_PREFIX = "xjh-h12-k8s-hub-"  # containers this module creates (removed afterwards)
NAMESPACE = "xnat"


def bridge_gateway() -> str:
    """The host's address on Docker's default bridge (docker0), as containers on that bridge reach the host."""
    done = subprocess.run(["ip", "-4", "-o", "addr", "show", "docker0"], capture_output=True, text=True, check=False)
    fields = done.stdout.split()
    return fields[fields.index("inet") + 1].split("/")[0] if "inet" in fields else "172.17.0.1"


DOCKER_GATEWAY = bridge_gateway()
REQUIREMENTS = CHART / "image" / "requirements.txt"


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check:
        assert done.returncode == 0, f"docker {' '.join(args[:3])}: {done.stderr[-2000:]}"
    return done


@pytest.fixture(scope="module")
def hub_image() -> str:
    if shutil.which("docker") is None or docker("info", check=False).returncode != 0:
        pytest.fail("no Docker engine answers (scripts/test.sh starts one with scripts/engine.sh)")
    done = subprocess.run([str(CHART / "image" / "build.sh"), IMAGE], capture_output=True, text=True, timeout=1200,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return IMAGE


@pytest.fixture(scope="module")
def helm4(helm_binaries: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm("4.1.4", helm_binaries["4.1.4"], tmp_path_factory.mktemp("helm4-home"))


class Rendered:
    """The objects `helm template` made, and the hub Deployment's container and pod spec among them."""

    def __init__(self, manifest: str) -> None:
        self.docs = objects(manifest)
        self.pod = find(self.docs, "Deployment", "hub")["spec"]["template"]["spec"]
        (self.container,) = self.pod["containers"]

    def secret(self, name: str) -> dict[str, str]:
        return secret_data(find(self.docs, "Secret", name))

    def env(self, service_host: str) -> dict[str, str]:
        """The container's environment as the kubelet would give it."""
        env: dict[str, str] = {}
        for doc in self.docs:  # Kubernetes' per-Service variables (the proxy-api Service's are used)
            if doc["kind"] == "Service" and doc["spec"].get("ports"):
                prefix = doc["metadata"]["name"].upper().replace("-", "_")
                env[f"{prefix}_SERVICE_HOST"] = service_host
                env[f"{prefix}_SERVICE_PORT"] = str(doc["spec"]["ports"][0]["port"])
        for item in self.container["env"]:
            if "value" in item:
                env[item["name"]] = item["value"]
            elif "secretKeyRef" in item["valueFrom"]:
                ref = item["valueFrom"]["secretKeyRef"]
                data = self.secret(ref["name"]) if any(
                    d["kind"] == "Secret" and d["metadata"]["name"] == ref["name"] for d in self.docs) else {}
                if ref["key"] in data:
                    env[item["name"]] = data[ref["key"]]
                else:
                    assert ref.get("optional"), f"{item['name']}: {ref} is in no rendered Secret"
            elif item["valueFrom"].get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
                env[item["name"]] = NAMESPACE
            else:
                raise AssertionError(f"unexpected env source {item}")
        return env

    def mounts(self, root: Path) -> list[str]:
        """`-v` arguments: each volume mount of the container, its volume's content written under `root`."""
        gid = self.pod["securityContext"]["fsGroup"]
        volumes = {v["name"]: v for v in self.pod["volumes"]}
        made: dict[str, Path] = {}
        args = []
        for mount in self.container["volumeMounts"]:
            volume = volumes[mount["name"]]
            if mount["name"] not in made:
                made[mount["name"]] = self._volume(root / mount["name"], volume, gid)
            source = made[mount["name"]] / mount["subPath"] if "subPath" in mount else made[mount["name"]]
            args += ["-v", f"{source}:{mount['mountPath']}{':ro' if mount.get('readOnly') else ''}"]
        return args

    def _volume(self, path: Path, volume: dict[str, Any], gid: int) -> Path:
        path.mkdir(parents=True)
        if "configMap" in volume:
            data, mode = find(self.docs, "ConfigMap", volume["configMap"]["name"])["data"], 0o644
        elif "secret" in volume:
            data, mode = self.secret(volume["secret"]["secretName"]), volume["secret"].get("defaultMode", 0o644)
            items = volume["secret"].get("items")
            assert not items, "Secret volumes with items are not modelled here"
        else:
            assert "persistentVolumeClaim" in volume, volume
            os.chown(path, 1000, gid)  # a fresh PVC with fsGroup: writable by the hub's group
            path.chmod(0o2775)
            return path
        for key, value in data.items():
            (path / key).write_text(value)
            os.chown(path / key, 0, gid)  # as the kubelet does with fsGroup
            (path / key).chmod(mode)
        return path


def render(helm: Helm, z2jh_chart: Path, tmp_path: Path, *extra: str) -> Rendered:
    """`helm template` of minimal.yaml and console.yaml (the console's service asked for: both services)."""
    chart = copy_chart(tmp_path / "chart-copy", z2jh_chart)
    password = tmp_path / "password"
    password.write_text("service-account-password")
    done = helm.run("template", "xnat-jupyterhub", chart, "-n", NAMESPACE,
                    *values_args("minimal.yaml", "console.yaml", password=password), *extra)
    return Rendered(done.stdout)


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """A real configurable-http-proxy on the host: (API port, auth token). The token is set per test below."""
    token = secrets.token_hex(32)
    api_port, port = free_port(DOCKER_GATEWAY), free_port("127.0.0.1")
    process = subprocess.Popen(
        ["configurable-http-proxy", "--ip", "127.0.0.1", "--port", str(port), "--api-ip", DOCKER_GATEWAY,
         "--api-port", str(api_port)],
        env={**os.environ, "CONFIGPROXY_AUTH_TOKEN": token}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def answers() -> bool:
        try:
            with socket.create_connection((DOCKER_GATEWAY, api_port), timeout=1):
                return True
        except OSError:
            return process.poll() is not None and pytest.fail("configurable-http-proxy exited")

    try:
        wait_for(answers, 30, "configurable-http-proxy's API")
        yield api_port, token
    finally:
        process.terminate()
        process.wait(timeout=10)


def api(url: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read().decode()
            return response.status, json.loads(body) if "json" in response.headers.get("Content-Type", "") else body
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def container_name() -> Iterator[str]:
    name = NAME_PREFIX + secrets.token_hex(4)
    yield name
    docker("rm", "-f", name, check=False)


def run_args(rendered: Rendered, tmp_path: Path, name: str, env: dict[str, str]) -> list[str]:
    security = rendered.container.get("securityContext", {})
    args = ["--name", name, "--user", f"{security.get('runAsUser', 1000)}:{security.get('runAsGroup', 1000)}",
            "--group-add", str(rendered.pod["securityContext"]["fsGroup"]),
            "--add-host", f"proxy-api:{DOCKER_GATEWAY}", "-p", "127.0.0.1::8081"]
    env_file = tmp_path / "env"  # a file, not -e: the tokens stay out of the process list
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    env_file.chmod(0o600)
    return [*args, "--env-file", str(env_file), *rendered.mounts(tmp_path / "volumes")]


def test_image_installs_exactly_the_pinned_packages(hub_image: str) -> None:
    pinned = {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
              for line in REQUIREMENTS.read_text().splitlines() if line and not line.startswith("#")}
    frozen = docker("run", "--rm", "--entrypoint", "pip", hub_image, "freeze", "--all").stdout.splitlines()
    installed = {name.lower().replace("_", "-"): version for name, version in
                 (line.split("==") for line in frozen if "==" in line)}
    installed.pop("pip")  # Debian's python3-venv's
    assert installed == pinned
    assert [line for line in frozen if "==" not in line] == ["xnat-jupyterhub @ file:///tmp/src"]


def test_hub_starts_with_xnat_login_the_kube_spawner_and_both_services(
        hub_image: str, helm4: Helm, z2jh_chart: Path, proxy: tuple[int, str], tmp_path: Path,
        container_name: str) -> None:
    api_port, proxy_token = proxy
    # The proxy's token as the chart's own: rendered with it given, as in a release that sets proxy.secretToken.
    rendered = render(helm4, z2jh_chart, tmp_path, "--set-string", f"jupyterhub.proxy.secretToken={proxy_token}")
    env = rendered.env(service_host=DOCKER_GATEWAY)
    env["PROXY_API_SERVICE_PORT"] = str(api_port)  # where the host's proxy listens (the Service says 8001)
    assert env["CONFIGPROXY_AUTH_TOKEN"] == proxy_token
    docker("run", "-d", *run_args(rendered, tmp_path, container_name, env), hub_image, *rendered.container["args"])
    port = docker("port", container_name, "8081/tcp").stdout.split(":")[-1].strip()
    base = f"http://127.0.0.1:{port}/jupyterhub/hub"

    def up() -> bool:
        state = docker("inspect", "-f", "{{.State.Running}}", container_name).stdout.strip()
        if state != "true":
            pytest.fail("the hub exited:\n" + docker("logs", container_name).stderr[-3000:])
        try:
            return api(f"{base}/api/")[0] == 200
        except OSError:
            return False

    # Generous: the hub starts in seconds, but this machine's CPU is shared with whole test runs.
    wait_for(up, 300, "the hub's API", details=lambda: docker("logs", container_name).stderr[-3000:])
    ours = rendered.secret("xnat-jupyterhub")
    status, xnat = api(f"{base}/api/user", ours["xnat-service-token"])
    assert status == 200 and (xnat["kind"], xnat["name"]) == ("service", "xnat")
    assert set(roles.XNAT_SCOPES) <= set(xnat["scopes"]) and "proxy" not in xnat["scopes"]
    status, console = api(f"{base}/api/user", ours["console-token"])
    assert status == 200 and (console["kind"], console["name"]) == ("service", "console")
    assert set(roles.CONSOLE_SCOPES) <= set(console["scopes"]) and "admin:users" not in console["scopes"]
    assert api(f"{base}/api/user", "not-a-token")[0] == 403
    status, login = api(f"{base}/login")
    assert status == 200 and 'id="xnat-login-hint"' in login

    logs = docker("logs", container_name).stderr
    assert "Using Authenticator: hub.auth.XnatAuthenticator" in logs
    assert "Using Spawner: hub.kube.XnatKubeSpawner" in logs
    assert "Loading extra config: 10-xnat-jupyterhub" in docker("logs", container_name).stdout + logs
    for secret in (ours["xnat-service-token"], ours["console-token"], ours["xnat-password"], proxy_token):
        assert secret not in logs

    # The hub registers its default route with the proxy before it answers (JupyterHub.start).
    status, routes = api(f"http://{DOCKER_GATEWAY}:{api_port}/api/routes", proxy_token)
    assert status == 200, routes
    assert {route: target["target"] for route, target in routes.items()} == {"/jupyterhub": "http://hub:8081"}, routes


def test_a_bad_value_stops_the_hub_with_one_line(hub_image: str, helm4: Helm, z2jh_chart: Path, tmp_path: Path,
                                                 container_name: str) -> None:
    rendered = render(helm4, z2jh_chart, tmp_path, "--set-string", "jupyterhub.hub.extraEnv.JH_XNAT_TIMEOUT=soon")
    env = rendered.env(service_host=DOCKER_GATEWAY)
    done = docker("run", *run_args(rendered, tmp_path, container_name, env), hub_image, *rendered.container["args"],
                  check=False, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if "[E " in line or "Error" in line or "Traceback" in line]
    assert errors == ["[E jupyterhub_config] JH_XNAT_TIMEOUT must be a number, got 'soon'"], done.stderr
    assert "Traceback" not in done.stdout + done.stderr
