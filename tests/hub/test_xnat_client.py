"""XnatClient.get_user_options and the client's plumbing, against the XNAT stand-in over real HTTP."""

from __future__ import annotations

import time
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from traitlets import TraitError
from traitlets.config import Config

from hub.settings import SettingsError
from hub.standin.options import user_options
from hub.standin.server import XnatStandin
from hub.xnat import XnatClient, XnatError, XnatNotFound, XnatUnreachable, get_xnat_client, name_problem, segment

pytestmark = pytest.mark.usefixtures("clean_env")

SERVER = "20240615T101530123Z"


async def test_named_server_options(xnat_client: XnatClient, xnat_standin: XnatStandin):
    stored = user_options("Alice.Smith", SERVER)
    xnat_standin.set_user_options("Alice.Smith", SERVER, stored)
    assert await xnat_client.get_user_options("Alice.Smith", SERVER) == stored
    assert [r["path"] for r in xnat_standin.requests if r["method"] == "GET"] == [
        f"/xapi/jupyterhub/users/Alice.Smith/server/{SERVER}/user-options"
    ]


async def test_default_server_path_has_no_double_slash(xnat_client, xnat_standin):
    stored = user_options("Alice.Smith", "")
    xnat_standin.set_user_options("Alice.Smith", "", stored)
    assert await xnat_client.get_user_options("Alice.Smith", "") == stored
    paths = [r["path"] for r in xnat_standin.requests if r["method"] == "GET"]
    assert paths == ["/xapi/jupyterhub/users/Alice.Smith/server/user-options"]
    assert "//" not in paths[0]


async def test_path_segments_are_quoted(xnat_client, xnat_standin):
    user = "alice+smith@example.org"
    xnat_standin.set_user_options(user, "", {"userId": 1})
    assert await xnat_client.get_user_options(user, "") == {"userId": 1}
    (path,) = [r["path"] for r in xnat_standin.requests if r["method"] == "GET"]
    assert "%40" in path and "%2B" in path


async def test_service_account_session_is_ended(xnat_client, xnat_standin):
    xnat_standin.set_user_options("Alice.Smith", SERVER, {"userId": 1})
    for _ in range(3):
        await xnat_client.get_user_options("Alice.Smith", SERVER)
    await xnat_client.drain()
    assert xnat_standin.open_sessions == 0


async def test_missing_options_is_not_found(xnat_client, xnat_standin):
    with pytest.raises(XnatNotFound) as info:
        await xnat_client.get_user_options("Alice.Smith", SERVER)
    assert str(info.value) == "XNAT has no launch options stored for this server. Start it again from XNAT."
    assert info.value.status == 404


async def test_wrong_service_password(make_client, xnat_standin, xnat_service_account):
    client = make_client(url=xnat_standin.url, service_username=xnat_service_account.name,
                         service_password="wrong-password-123")
    with pytest.raises(XnatError) as info:
        await client.get_user_options("Alice.Smith", SERVER)
    assert str(info.value) == "XNAT refused the hub's service account. Tell your administrator."
    assert "JH_XNAT_PASSWORD" in info.value.log_detail
    assert "wrong-password-123" not in info.value.log_detail + str(info.value)


async def test_service_account_without_role(make_client, xnat_standin):
    xnat_standin.add_user("nobody", "nobody-password", ["Jupyter"])
    client = make_client(url=xnat_standin.url, service_username="nobody", service_password="nobody-password")
    with pytest.raises(XnatError) as info:
        await client.get_user_options("Alice.Smith", SERVER)
    assert info.value.status == 403 and "JupyterHub role" in info.value.log_detail


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        ({"status": 500}, XnatError, "XNAT failed (HTTP 500)."),
        ({"garbage": "html"}, XnatError, "XNAT sent an answer the hub cannot read."),
        ({"garbage": "truncated-json"}, XnatError, "XNAT sent an answer the hub cannot read."),
        ({"down": True}, XnatUnreachable, "XNAT is unreachable."),
    ],
)
async def test_xnat_failures(xnat_client, xnat_standin, fault, error, message):
    xnat_standin.set_user_options("Alice.Smith", SERVER, {"userId": 1})
    xnat_standin.set_fault(**fault)
    with pytest.raises(error) as info:
        await xnat_client.get_user_options("Alice.Smith", SERVER)
    assert str(info.value).startswith(message)


async def test_options_must_be_an_object(xnat_client, xnat_standin):
    xnat_standin.set_user_options("Alice.Smith", SERVER, ["not", "an", "object"])
    with pytest.raises(XnatError) as info:
        await xnat_client.get_user_options("Alice.Smith", SERVER)
    assert "not an object" in info.value.log_detail


async def test_oversized_answer_refused(make_client, xnat_standin, xnat_service_account):
    client = make_client(url=xnat_standin.url, service_username=xnat_service_account.name,
                         service_password=xnat_service_account.password, max_body_bytes=100)
    xnat_standin.set_user_options("Alice.Smith", SERVER, {"padding": "x" * 1000})
    with pytest.raises(XnatError) as info:
        await client.get_user_options("Alice.Smith", SERVER)
    assert "longer than 100 bytes" in info.value.log_detail


async def test_slow_xnat_bounded_by_timeout(make_client, xnat_standin, xnat_service_account):
    client = make_client(url=xnat_standin.url, service_username=xnat_service_account.name,
                         service_password=xnat_service_account.password, timeout=0.3)
    xnat_standin.set_fault(latency=30)
    started = time.monotonic()
    with pytest.raises(XnatUnreachable):
        await client.get_user_options("Alice.Smith", SERVER)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(("user", "server"), [("a/b", SERVER), ("..", SERVER), ("Alice", "x/y"), ("Alice", ".."),
                                              ("", SERVER), ("Alice", "a b")])
async def test_odd_names_refused_without_request(xnat_client, xnat_standin, user, server):
    with pytest.raises(XnatError):
        await xnat_client.get_user_options(user, server)
    assert xnat_standin.requests == []


async def test_unconfigured_client_says_so(make_client):
    with pytest.raises(XnatError) as info:
        await make_client(service_password="x" * 16).get_user_options("Alice", SERVER)
    assert "not connected to an XNAT" in str(info.value) and "JH_XNAT_URL" in info.value.log_detail
    with pytest.raises(XnatError) as info:
        await make_client(url="http://127.0.0.1:9").get_user_options("Alice", SERVER)
    assert "JH_XNAT_PASSWORD" in info.value.log_detail


# -- configuration -----------------------------------------------------------------------------------------------------


def test_environment_defaults(clean_env, tmp_path):
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    clean_env.setenv("JH_XNAT_URL", "https://xnat.example.org/")
    clean_env.setenv("JH_XNAT_USERNAME", "svc")
    clean_env.setenv("JH_XNAT_PASSWORD_FILE", str(secret))
    clean_env.setenv("JH_XNAT_TIMEOUT", "2.5")
    clean_env.setenv("JH_TLS_VERIFY", "false")
    client = XnatClient()
    assert client.url == "https://xnat.example.org"
    assert (client.service_username, client.service_password) == ("svc", "from-a-file")
    assert client.timeout == 2.5 and client.tls_verify is False
    clean_env.delenv("JH_XNAT_USERNAME")
    clean_env.delenv("JH_TLS_VERIFY")
    assert XnatClient().service_username == "jupyterhub"
    assert XnatClient().tls_verify is True


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("JH_XNAT_URL", "xnat.example.org", "JH_XNAT_URL must be an http:// or https:// URL"),
        ("JH_XNAT_URL", "https://user:hunter2@xnat.example.org", "must not carry"),
        ("JH_XNAT_TIMEOUT", "soon", "JH_XNAT_TIMEOUT must be a number"),
        ("JH_XNAT_TIMEOUT", "0", "JH_XNAT_TIMEOUT must be a number greater than 0"),
        ("JH_XNAT_TIMEOUT", "inf", "JH_XNAT_TIMEOUT must be a number greater than 0"),
        ("JH_TLS_VERIFY", "maybe", "JH_TLS_VERIFY must be true or false"),
        ("JH_TLS_CA_CERT", "/nonexistent/ca.pem", "JH_TLS_CA_CERT: /nonexistent/ca.pem is not a file"),
    ],
)
def test_bad_environment_is_a_clear_error(clean_env, variable, value, message):
    clean_env.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        XnatClient.check_environment()
    assert message in str(info.value)
    assert "hunter2" not in str(info.value)


def test_context_path_kept():
    assert XnatClient(url="https://xnat.example.org/xnat/").url == "https://xnat.example.org/xnat"


def test_bad_configured_url_is_a_trait_error():
    with pytest.raises(TraitError, match=r"XnatClient\.url must be an http"):
        XnatClient(url="ftp://xnat")


def test_shared_instance_takes_parent_config(clean_env):
    from traitlets.config import Configurable

    parent = Configurable(config=Config({"XnatClient": {"url": "http://xnat.test:8080/", "timeout": 3.0}}))
    client = get_xnat_client(parent)
    assert client is get_xnat_client(parent) is get_xnat_client()
    assert (client.url, client.timeout) == ("http://xnat.test:8080", 3.0)


# -- names ------------------------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_accepted_names_are_one_clean_path_segment(name):
    """Whatever a user types: either refused with a sentence, or sent as exactly one segment that decodes back."""
    problem = name_problem(name)
    if problem is not None:
        assert problem.startswith("The username ")
        return
    quoted = segment(name)
    assert "/" not in quoted and "?" not in quoted and "#" not in quoted
    assert quoted not in (".", "..") and ".." not in name
    assert unquote(quoted) == name
    assert 0 < len(name) <= 255
