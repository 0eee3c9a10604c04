"""The XNAT port over HTTPS (`ssl_context=` / `--tls-cert`), for tests of the hub's TLS settings."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import re
import signal
import ssl
import sys
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.standin.server import XnatStandin

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cert_files(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    directory = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "xnat-standin-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


async def test_https_port_is_verified_against_its_certificate(cert_files):
    cert, key = cert_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    standin = XnatStandin()
    urls = await standin.start(ssl_context=context)
    try:
        assert urls.xnat.startswith("https://127.0.0.1:") and urls.control.startswith("http://")
        standin.add_user("alice", "pw", ["Jupyter"])
        trusting = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(verify=trusting) as client:
            assert (await client.get(urls.xnat + "/xapi/users/alice/roles", auth=("alice", "pw"))).json() == ["Jupyter"]
            standin.set_fault(down=True)
            with pytest.raises(httpx.ConnectError):
                await client.get(urls.xnat + "/xapi/users/alice/roles", auth=("alice", "pw"))
            standin.clear_faults()  # comes back speaking TLS
            assert (await client.get(urls.xnat + "/xapi/users/alice/roles", auth=("alice", "pw"))).status_code == 200
        async with httpx.AsyncClient() as default_trust:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await default_trust.get(urls.xnat + "/xapi/users/alice/roles", auth=("alice", "pw"))
    finally:
        await standin.stop()


async def test_cli_serves_https_with_tls_flags(cert_files):
    cert, key = cert_files
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub.standin", "--port", "0", "--control-port", "0",
        "--tls-cert", str(cert), "--tls-key", str(key), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert re.search(r"listening at https://127\.0\.0\.1:\d+,", line), line
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0


@pytest.mark.parametrize("flags", [["--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"],
                                   ["--tls-cert", "/nonexistent.pem"]])
async def test_cli_bad_tls_flags_are_a_clear_error(flags):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub.standin", "--port", "0", "--control-port", "0", *flags, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    assert err.decode().startswith("error: ") and "Traceback" not in err.decode()
