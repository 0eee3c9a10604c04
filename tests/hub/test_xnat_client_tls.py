"""JH_TLS_* apply to the XNAT calls: a real HTTPS XNAT (a TLS front on the stand-in) with a private CA."""

from __future__ import annotations

import logging

import pytest
from tornado import web

from hub.auth import XnatAuthenticator
from hub.settings import SettingsError
from hub.standin.server import XnatStandin
from hub.xnat import XnatClient, XnatUnreachable

pytestmark = pytest.mark.usefixtures("clean_env")

PASSWORD = "tls-Pa55word"


@pytest.fixture
def alice(xnat_standin: XnatStandin) -> str:
    xnat_standin.add_user("Alice.Smith", PASSWORD, ["Jupyter"])
    return "Alice.Smith"


async def login(client: XnatClient, name: str) -> dict:
    authenticator = XnatAuthenticator(xnat=client, log=logging.getLogger("test.hub.tls"))
    return await authenticator.get_authenticated_user(None, {"username": name, "password": PASSWORD})


async def test_unknown_ca_is_refused(tls_front, make_client, alice, caplog):
    front = await tls_front()
    with pytest.raises(web.HTTPError) as info:
        await login(make_client(url=front.url), alice)
    assert getattr(info.value, "jupyterhub_message", "").startswith("XNAT is unreachable")  # set by hub.xnat
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "TLS certificate not trusted" in line and "JH_TLS_CA_CERT" in line


async def test_ca_from_environment_is_trusted(tls_front, make_client, alice, tls_files, clean_env, xnat_standin):
    front = await tls_front()
    clean_env.setenv("JH_XNAT_URL", front.url)
    clean_env.setenv("JH_TLS_CA_CERT", str(tls_files.ca_cert))
    client = make_client()  # every setting from the environment
    assert (await login(client, alice))["name"] == alice
    assert xnat_standin.requests_to("/xapi/users/Alice.Smith/roles")


async def test_verify_off_accepts_any_certificate(tls_front, make_client, alice, clean_env, caplog):
    front = await tls_front()
    clean_env.setenv("JH_TLS_VERIFY", "false")
    client = make_client(url=front.url)
    assert (await login(client, alice))["name"] == alice
    assert any("JH_TLS_VERIFY is off" in r.getMessage() for r in caplog.records)


async def test_client_certificate_is_presented(tls_front, make_client, alice, tls_files, clean_env):
    front = await tls_front(require_client_cert=True)
    clean_env.setenv("JH_TLS_CA_CERT", str(tls_files.ca_cert))
    without = make_client(url=front.url)
    with pytest.raises(web.HTTPError):
        await login(without, alice)
    clean_env.setenv("JH_TLS_CLIENT_CERT", str(tls_files.client_cert))
    clean_env.setenv("JH_TLS_CLIENT_KEY", str(tls_files.client_key))
    assert (await login(make_client(url=front.url), alice))["name"] == alice
    assert front.client_subjects == ["xnat-jupyterhub hub"]


async def test_client_certificate_with_key_in_one_file(tls_front, make_client, alice, tls_files):
    front = await tls_front(require_client_cert=True)
    client = make_client(url=front.url, tls_ca_cert=str(tls_files.ca_cert),
                         tls_client_cert=str(tls_files.client_combined))
    assert (await login(client, alice))["name"] == alice


async def test_service_account_call_uses_tls_too(tls_front, make_client, tls_files, xnat_standin,
                                                 xnat_service_account):
    front = await tls_front()
    xnat_standin.set_user_options("Alice.Smith", "", {"userId": 1})
    trusted = make_client(url=front.url, tls_ca_cert=str(tls_files.ca_cert),
                          service_username=xnat_service_account.name, service_password=xnat_service_account.password)
    assert await trusted.get_user_options("Alice.Smith", "") == {"userId": 1}
    untrusted = make_client(url=front.url, service_username=xnat_service_account.name,
                            service_password=xnat_service_account.password)
    with pytest.raises(XnatUnreachable) as info:
        await untrusted.get_user_options("Alice.Smith", "")
    assert "TLS certificate not trusted" in info.value.log_detail


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"JH_TLS_CA_CERT": "not_pem"}, "JH_TLS_CA_CERT"),
        ({"JH_TLS_CLIENT_CERT": "not_pem"}, "cannot load the client certificate"),
        ({"JH_TLS_CLIENT_CERT": "client_cert"}, "cannot load the client certificate"),  # no key anywhere
        ({"JH_TLS_CLIENT_KEY": "client_key"}, "JH_TLS_CLIENT_KEY is set without JH_TLS_CLIENT_CERT"),
    ],
)
def test_unusable_tls_files_are_clear_errors(clean_env, tls_files, settings, message):
    for variable, attribute in settings.items():
        clean_env.setenv(variable, str(getattr(tls_files, attribute)))
    with pytest.raises(SettingsError, match=message):
        XnatClient.check_environment()
