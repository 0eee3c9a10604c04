"""Fixtures for the hub core tests: XNAT clients and authenticators aimed at the stand-in, TLS material, a TLS
front for the stand-in, and a clean environment."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import os
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.auth import XnatAuthenticator
from hub.standin.server import XnatStandin
from hub.xnat import XnatClient

HUB_VARIABLES = (
    "JH_XNAT_URL", "JH_XNAT_USERNAME", "JH_XNAT_PASSWORD", "JH_XNAT_PASSWORD_FILE", "JH_XNAT_TIMEOUT",
    "JH_TLS_VERIFY", "JH_TLS_CA_CERT", "JH_TLS_CLIENT_CERT", "JH_TLS_CLIENT_KEY",
    "JH_XNAT_SERVICE_TOKEN", "JH_XNAT_SERVICE_TOKEN_FILE", "JH_CONSOLE_TOKEN", "JH_CONSOLE_TOKEN_FILE",
    "JH_DATA_DIR", "JH_DB_URL", "JH_DB_URL_FILE", "JH_HUB_CONNECT_URL", "JPY_COOKIE_SECRET",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No hub variable set, whatever the machine has; the shared XnatClient forgotten before and after."""
    for name in HUB_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    XnatClient.clear_instance()
    yield monkeypatch
    XnatClient.clear_instance()


@pytest.fixture
def auth_log() -> logging.Logger:
    """The logger the authenticator under test writes to (propagates to caplog)."""
    return logging.getLogger("test.hub.auth")


@pytest.fixture
async def make_client(clean_env: pytest.MonkeyPatch) -> AsyncIterator[Callable[..., XnatClient]]:
    """Build XnatClients (closed at the end of the test)."""
    made: list[XnatClient] = []

    def make(**traits: Any) -> XnatClient:
        client = XnatClient(**traits)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
def xnat_client(xnat_standin: XnatStandin, make_client: Callable[..., XnatClient], xnat_service_account) -> XnatClient:
    return make_client(
        url=xnat_standin.url,
        service_username=xnat_service_account.name,
        service_password=xnat_service_account.password,
        timeout=5.0,
    )


@pytest.fixture
def authenticator(xnat_client: XnatClient, auth_log: logging.Logger) -> XnatAuthenticator:
    return XnatAuthenticator(xnat=xnat_client, log=auth_log)


# -- TLS ---------------------------------------------------------------------------------------------------------------


@dataclass
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_ca_cert: Path
    client_cert: Path
    client_key: Path
    client_combined: Path  # client certificate and key in one file
    not_pem: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(subject: str, issuer: tuple[x509.Name, Any] | None, *, ca: bool, server: bool = False):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer if issuer else (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    cert = builder.sign(issuer_key, hashes.SHA256())
    return cert, key


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _pem_key(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A private CA with a server certificate for 127.0.0.1/localhost, and a second CA with a client certificate."""
    d = tmp_path_factory.mktemp("tls")
    ca, ca_key = _issue("test XNAT CA", None, ca=True)
    server, server_key = _issue("127.0.0.1", (ca.subject, ca_key), ca=False, server=True)
    client_ca, client_ca_key = _issue("test hub client CA", None, ca=True)
    client, client_key = _issue("xnat-jupyterhub hub", (client_ca.subject, client_ca_key), ca=False)
    files = TlsFiles(d / "ca.pem", d / "server.pem", d / "server.key", d / "client-ca.pem", d / "client.pem",
                     d / "client.key", d / "client-combined.pem", d / "not.pem")
    files.ca_cert.write_bytes(_pem_cert(ca))
    files.server_cert.write_bytes(_pem_cert(server))
    files.server_key.write_bytes(_pem_key(server_key))
    files.client_ca_cert.write_bytes(_pem_cert(client_ca))
    files.client_cert.write_bytes(_pem_cert(client))
    files.client_key.write_bytes(_pem_key(client_key))
    files.client_combined.write_bytes(_pem_cert(client) + _pem_key(client_key))
    files.not_pem.write_text("this is not a certificate\n")
    for path in (files.server_key, files.client_key, files.client_combined):
        os.chmod(path, 0o600)
    return files


@dataclass
class TlsFront:
    """An HTTPS endpoint in front of the stand-in (TLS terminated here, bytes relayed to the stand-in)."""

    url: str
    client_subjects: list[str] = field(default_factory=list)


@pytest.fixture
async def tls_front(xnat_standin: XnatStandin, tls_files: TlsFiles) -> AsyncIterator[Callable[..., Any]]:
    """Start an HTTPS front: `await tls_front(require_client_cert=False)` -> TlsFront (closed after the test)."""
    servers: list[asyncio.Server] = []

    async def start(require_client_cert: bool = False) -> TlsFront:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls_files.server_cert, tls_files.server_key)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=tls_files.client_ca_cert)
        front = TlsFront(url="")

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                try:
                    while data := await src.read(65536):
                        dst.write(data)
                        await dst.drain()
                finally:
                    dst.close()

            peer = writer.get_extra_info("peercert")
            if peer:
                front.client_subjects.append(dict(x[0] for x in peer["subject"])["commonName"])
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", xnat_standin.port)
            except OSError:
                writer.close()
                return
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer), return_exceptions=True)

        server = await asyncio.start_server(relay, "127.0.0.1", 0, ssl=context)
        servers.append(server)
        front.url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        return front

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()
