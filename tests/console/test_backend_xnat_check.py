"""The XNAT check against the XNAT stand-in (a real HTTP server) and a real JupyterHub, step by step."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import re
import socket
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from console.backend.models import CheckStatus
from console.backend.xnat_check import XnatCheckSettings, check

pytestmark = pytest.mark.timeout(120)


async def run(settings: XnatCheckSettings) -> dict:
    return {step.name: step async for step in check(settings)}


@pytest.fixture
def healthy(xnat_standin, xnat_service_account, local_hub, tmp_path):
    archive, workspace = tmp_path / "archive", tmp_path / "workspace"
    archive.mkdir()
    workspace.mkdir()
    xnat_standin.set_preferences(
        {
            "jupyterHubApiUrl": local_hub.api_url,
            "jupyterHubToken": local_hub.admin_token,
            "pathTranslationArchiveDockerPrefix": str(archive),
            "pathTranslationWorkspaceDockerPrefix": str(workspace),
        }
    )
    return XnatCheckSettings(xnat_standin.url, xnat_service_account.name, xnat_service_account.password, timeout=5)


async def test_every_step_passes_on_a_good_setup(healthy, xnat_standin):
    steps = await run(healthy)
    assert list(steps) == [
        "DNS",
        "TCP",
        "TLS",
        "HTTP",
        "service account",
        "JupyterHub plugin",
        "hub API URL",
        "hub token",
        "archive root",
        "workspace root",
    ]
    assert steps["TLS"].status == CheckStatus.WARN  # plain http
    others = {k: v for k, v in steps.items() if k != "TLS"}
    assert all(s.status == CheckStatus.PASS for s in others.values()), others
    assert "JupyterHub 5." in steps["hub API URL"].reason
    # The check closes the XNAT session it opened.
    assert xnat_standin.open_sessions == 0


async def test_token_xnat_holds_is_refused_by_the_hub(healthy, xnat_standin):
    xnat_standin.set_preferences({"jupyterHubToken": "secret-token"})
    steps = await run(healthy)
    token = steps["hub token"]
    assert token.status == CheckStatus.FAIL and "refuses the token XNAT holds" in token.reason
    assert "default" in token.reason and token.hint
    assert "secret-token" not in token.reason + token.hint


async def test_hub_url_xnat_holds_does_not_answer(healthy, xnat_standin):
    xnat_standin.set_preferences({"jupyterHubApiUrl": "http://127.0.0.1:9/jupyterhub/hub/api"})
    steps = await run(healthy)
    assert steps["hub API URL"].status == CheckStatus.FAIL and "127.0.0.1:9" in steps["hub API URL"].reason
    assert steps["hub token"].status == CheckStatus.SKIP


async def test_wrong_password_and_missing_role(healthy, xnat_standin, xnat_service_account):
    healthy.password = "wrong"
    steps = await run(healthy)
    assert steps["service account"].status == CheckStatus.FAIL and "401" in steps["service account"].reason
    assert steps["JupyterHub plugin"].status == CheckStatus.SKIP
    xnat_standin.add_user("plainuser", "pw", ["Jupyter"])
    steps = await run(XnatCheckSettings(xnat_standin.url, "plainuser", "pw", timeout=5))
    assert (
        steps["service account"].status == CheckStatus.FAIL
        and "lacks the JupyterHub role" in steps["service account"].reason
    )


async def test_path_roots_missing_on_this_node(healthy, xnat_standin, tmp_path):
    xnat_standin.set_preferences({"pathTranslationArchiveDockerPrefix": str(tmp_path / "not-mounted")})
    steps = await run(healthy)
    assert steps["archive root"].status == CheckStatus.FAIL and "does not exist" in steps["archive root"].reason
    assert steps["workspace root"].status == CheckStatus.PASS


async def test_dns_and_tcp_failures_skip_the_rest():
    steps = await run(XnatCheckSettings("http://xnat.invalid", "u", "p", timeout=3))
    assert steps["DNS"].status == CheckStatus.FAIL and steps["DNS"].hint
    assert all(s.status == CheckStatus.SKIP for name, s in steps.items() if name != "DNS")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        steps = await run(XnatCheckSettings(f"http://127.0.0.1:{port}", "u", "p", timeout=3))
    assert steps["TCP"].status == CheckStatus.FAIL and "refused" in steps["TCP"].reason.lower()


async def test_no_url_is_a_configuration_failure():
    steps = await run(XnatCheckSettings(None, None, None))
    assert steps["configuration"].status == CheckStatus.FAIL and "JH_XNAT_URL" in steps["configuration"].hint


# -- TLS: a real TLS server with a certificate we make --------------------------------------------


def make_cert(tmp_path, days: int):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"cert{days}.pem", tmp_path / f"key{days}.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args):
        pass


@pytest.fixture
def tls_server(tmp_path):
    servers = []

    def start(days: int):
        cert, key = make_cert(tmp_path, days)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"https://localhost:{server.server_port}", cert

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


async def test_tls_untrusted_then_trusted_with_the_ca_bundle(tls_server):
    url, cert = tls_server(days=200)
    steps = await run(XnatCheckSettings(url, None, None, timeout=5))
    assert steps["TLS"].status == CheckStatus.FAIL and "not trusted" in steps["TLS"].reason
    assert "CA" in steps["TLS"].hint and steps["HTTP"].status == CheckStatus.SKIP
    steps = await run(XnatCheckSettings(url, None, None, ca_bundle=str(cert), timeout=5))
    assert steps["TLS"].status == CheckStatus.PASS and re.search(r"expires in (199|200) days", steps["TLS"].reason)
    assert steps["HTTP"].status == CheckStatus.PASS
    assert steps["service account"].status == CheckStatus.FAIL  # no credentials given


async def test_tls_certificate_expiring_soon_warns(tls_server):
    url, cert = tls_server(days=5)
    steps = await run(XnatCheckSettings(url, None, None, ca_bundle=str(cert), timeout=5))
    assert steps["TLS"].status == CheckStatus.WARN and "expires in" in steps["TLS"].reason


def test_script_prints_json_steps_from_the_hubs_variables(xnat_standin_thread):
    url, account = xnat_standin_thread
    env = {"JH_XNAT_URL": url, "JH_XNAT_USERNAME": account[0], "JH_XNAT_PASSWORD": account[1], "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "console.backend.xnat_check", "--json", "--no-paths"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    steps = [json.loads(line) for line in out.stdout.splitlines()]
    by_name = {s["name"]: s for s in steps}
    assert by_name["service account"]["status"] == "pass"
    assert by_name["archive root"]["status"] == "skip"
    assert account[1] not in out.stdout + out.stderr
    # The hub URL in the stand-in's defaults (172.17.0.1) does not answer here: a failed step, exit code 1.
    assert out.returncode == 1


# -- from inside the hub's network ----------------------------------------------------------------

HUB_IMAGE = "xnat-jupyterhub/hub:dev"


@pytest.mark.docker
@pytest.mark.timeout(1800)  # may build the hub image on a fresh machine
def test_check_runs_inside_the_hub_network_with_the_hubs_settings(docker_client, tmp_path):
    """A stand-in XNAT and a hub look-alike (the hub image, its env and password secret) on an overlay network
    of our own; the check runs in a one-off clone of the hub service and reaches XNAT by its service name."""
    import secrets as secrets_module

    import docker.errors
    import docker.types

    from console.backend.docker import DockerAccess
    from console.backend.xnat_check_hub_network import check_in_hub_network
    from tests.helpers.console_backend import TEST_PREFIX
    from tests.helpers.waiting import wait_for

    try:
        docker_client.images.get(HUB_IMAGE)
    except docker.errors.ImageNotFound:
        # A fresh machine: build it now (cached steps; the end-to-end tests need it anyway).
        root = Path(__file__).resolve().parents[2]
        built = subprocess.run(["scripts/build-images.sh"], cwd=root, capture_output=True, text=True, timeout=1500)
        if built.returncode != 0:
            pytest.fail(f"scripts/build-images.sh failed:\n{built.stdout[-2000:]}\n{built.stderr[-2000:]}")
    password = secrets_module.token_urlsafe(12)
    made = []
    # Not the session's TEST_NETWORK (make_service's): this test makes and removes a network of its own.
    network = docker_client.networks.create(TEST_PREFIX + "check-net", driver="overlay", attachable=True)
    secret = docker_client.secrets.create(name=TEST_PREFIX + "xnat-pw", data=password.encode())
    secret_ref = docker.types.SecretReference(secret.id, secret.name)
    try:
        common = {
            "networks": [network.id],
            "secrets": [secret_ref],
            "labels": {"xjc-test": "1"},
            "container_labels": {"xjc-test": "1"},
            "endpoint_spec": docker.types.EndpointSpec(mode="dnsrr"),
            "healthcheck": docker.types.Healthcheck(test=["NONE"]),
        }  # the image's checks the hub's port
        pw_file = f"/run/secrets/{secret.name}"
        made.append(
            docker_client.services.create(
                HUB_IMAGE,
                name=TEST_PREFIX + "standin",
                command=["python", "-m", "hub.standin", "--host", "0.0.0.0", "--port", "8080", "--seed-demo"],
                env=[f"JH_XNAT_PASSWORD_FILE={pw_file}"],
                **common,
            )
        )
        hub_like = docker_client.services.create(
            HUB_IMAGE,
            name=TEST_PREFIX + "stack_jupyterhub",  # the hub service of a stack named xjc-test-stack
            command=["python", "-c", "import time; time.sleep(600)"],
            env=[
                f"JH_XNAT_URL=http://{TEST_PREFIX}standin:8080",
                "JH_XNAT_USERNAME=jupyterhub",
                f"JH_XNAT_PASSWORD_FILE={pw_file}",
            ],
            **common,
        )
        made.append(hub_like)
        access = DockerAccess(timeout=30)

        def running(name: str) -> bool:
            return any(t.state == "running" for t in access.tasks(name))

        for service in made:
            wait_for(
                functools.partial(running, service.name), 90, f"{service.name} to run"
            )

        # The stand-in answers once its process is up; the check itself reports TCP failure until then.
        def checked():
            steps = {s.name: s for s in check_in_hub_network(access, hub_like.name, timeout=90)}
            return steps if steps["TCP"].status == CheckStatus.PASS else None

        steps = wait_for(checked, 120, "the in-network check to reach the stand-in", interval=1)
        assert steps["DNS"].status == CheckStatus.PASS and TEST_PREFIX + "standin" in steps["DNS"].reason
        assert steps["service account"].status == CheckStatus.PASS  # the password came from the cloned secret
        assert steps["JupyterHub plugin"].status == CheckStatus.PASS
        assert steps["archive root"].status == CheckStatus.SKIP  # paths are checked on the node, not in there
        # The one-off service is gone, and never held the password in its spec.
        assert not [s for s in docker_client.services.list() if s.name.startswith("xjc-xnat-check-")]
        assert password not in json.dumps(hub_like.attrs)
        # The same through the command: the stack's hub service is found by the stack's name.
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state"),
               "XDG_CONFIG_HOME": str(tmp_path / "cfg")}  # fmt: skip
        out = subprocess.run(
            [sys.executable, "-m", "console", "--stack", TEST_PREFIX + "stack", "check", "--json", "--hub-network"],
            capture_output=True, text=True, env=env, timeout=180,
        )  # fmt: skip
        by_name = {s["name"]: s for s in json.loads(out.stdout)}
        assert by_name["configuration"]["status"] == "fail"  # no XNAT URL for the console itself here
        assert by_name["service account (hub network)"]["status"] == "pass", out.stdout
        assert out.returncode == 1 and password not in out.stdout + out.stderr
    finally:
        for service in made:
            with contextlib.suppress(docker.errors.APIError):
                service.remove()
        wait_for(
            lambda: not docker_client.containers.list(all=True, filters={"label": "xjc-test=1"}),
            60,
            "the test containers to go",
        )

        def removed(thing):
            try:
                thing.remove()
                return True
            except docker.errors.NotFound:
                return True
            except docker.errors.APIError:
                return False  # still in use for a moment

        wait_for(lambda: removed(secret), 30, "the secret to be removable")
        wait_for(lambda: removed(network), 30, "the network to be removable")
