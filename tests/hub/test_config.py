"""hub/jupyterhub_config.py, loaded exactly as JupyterHub loads it, in a fresh process with only our variables."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from hub.roles import CONSOLE_SCOPES, XNAT_SCOPES
from tests.helpers.hub_config import CONFIG, base_env

ROOT = Path(__file__).resolve().parents[2]
JUPYTERHUB = Path(sys.executable).parent / "jupyterhub"
XNAT_TOKEN = "x" * 32
CONSOLE_TOKEN = "c" * 32

# Load the file the way `jupyterhub -f` does, then report what it configured.
LOADER = """
import json, sys
from jupyterhub.app import JupyterHub
app = JupyterHub()
app.load_config_file(sys.argv[1])
hub = app.config.JupyterHub
print(json.dumps({
    "bind_url": app.bind_url, "base_url": app.base_url, "hub_bind_url": app.hub_bind_url,
    "hub_connect_url": app.hub_connect_url, "allow_named_servers": app.allow_named_servers,
    "cleanup_servers": app.cleanup_servers,
    "authenticator_class": app.authenticator_class.__module__ + "." + app.authenticator_class.__name__,
    "spawner_class": hub.spawner_class, "template_paths": app.template_paths, "db_url": app.db_url,
    "cookie_secret_file": app.cookie_secret_file, "services": app.services, "load_roles": app.load_roles,
}))
"""


def load(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", LOADER, str(CONFIG)], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def loaded(env: dict[str, str], cwd: Path) -> tuple[dict, str]:
    result = load(env, cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_hub_wiring(tmp_path):
    config, _ = loaded(base_env(tmp_path, JH_XNAT_SERVICE_TOKEN=XNAT_TOKEN, JH_CONSOLE_TOKEN=CONSOLE_TOKEN), tmp_path)
    assert config["bind_url"] == "http://:8000/jupyterhub" and config["base_url"] == "/jupyterhub/"
    assert config["hub_bind_url"] == "http://:8081"
    assert config["hub_connect_url"] == "http://jupyterhub:8081"
    assert config["allow_named_servers"] is True
    assert config["cleanup_servers"] is False  # a restarted hub keeps its running notebooks
    assert config["authenticator_class"] == "hub.auth.XnatAuthenticator"
    assert config["spawner_class"] == "hub.spawner.XnatSwarmSpawner"
    (templates,) = [p for p in config["template_paths"] if p.startswith(str(ROOT))]
    assert (Path(templates) / "login.html").is_file()


def test_services_and_least_privilege_roles(tmp_path):
    config, _ = loaded(base_env(tmp_path, JH_XNAT_SERVICE_TOKEN=XNAT_TOKEN, JH_CONSOLE_TOKEN=CONSOLE_TOKEN), tmp_path)
    assert config["services"] == [{"name": "xnat", "api_token": XNAT_TOKEN},
                                  {"name": "console", "api_token": CONSOLE_TOKEN}]
    roles = {role["services"][0]: role for role in config["load_roles"]}
    assert set(roles["xnat"]["scopes"]) == {"admin:users", "servers", "tokens", "read:hub"} == set(XNAT_SCOPES)
    assert set(roles["console"]["scopes"]) == set(CONSOLE_SCOPES)
    assert "admin:users" not in roles["console"]["scopes"] and "admin:servers" not in roles["console"]["scopes"]
    assert {"list:users", "read:users", "servers", "read:hub"} <= set(roles["console"]["scopes"])


def test_unset_tokens_register_no_service(tmp_path):
    config, stderr = loaded(base_env(tmp_path), tmp_path)
    assert config["services"] == [] and config["load_roles"] == []
    assert "JH_XNAT_SERVICE_TOKEN (or JH_XNAT_SERVICE_TOKEN_FILE) is not set" in stderr
    assert "JH_CONSOLE_TOKEN (or JH_CONSOLE_TOKEN_FILE) is not set" in stderr


def test_secrets_from_files(tmp_path):
    files = {}
    db_url = "sqlite:///" + str(tmp_path / "o.db")
    for name, value in [("xnat", XNAT_TOKEN), ("console", CONSOLE_TOKEN), ("db", db_url)]:
        files[name] = tmp_path / f"{name}.secret"
        files[name].write_text(value + "\n")
    config, _ = loaded(base_env(tmp_path, JH_XNAT_SERVICE_TOKEN_FILE=str(files["xnat"]),
                                JH_CONSOLE_TOKEN_FILE=str(files["console"]), JH_DB_URL_FILE=str(files["db"])), tmp_path)
    assert [s["api_token"] for s in config["services"]] == [XNAT_TOKEN, CONSOLE_TOKEN]
    assert config["db_url"] == "sqlite:///" + str(tmp_path / "o.db")


def test_state_lives_in_the_data_dir(tmp_path):
    config, _ = loaded(base_env(tmp_path), tmp_path)
    data = tmp_path / "data"
    assert config["db_url"] == f"sqlite:///{data}/jupyterhub.sqlite"
    secret = Path(config["cookie_secret_file"])
    assert secret.parent == data
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    first = secret.read_text()
    assert len(first.strip()) == 64 and int(first, 16)
    loaded(base_env(tmp_path), tmp_path)
    assert secret.read_text() == first, "a restart must keep the cookie secret"


def test_open_data_dir_is_narrowed(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    loaded(base_env(tmp_path), tmp_path)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700


def test_db_url_and_connect_url_from_environment(tmp_path):
    config, _ = loaded(base_env(tmp_path, JH_DB_URL="postgresql://hub@db/jupyterhub",
                                JH_HUB_CONNECT_URL="http://hub.internal:8081"), tmp_path)
    assert config["db_url"] == "postgresql://hub@db/jupyterhub"
    assert config["hub_connect_url"] == "http://hub.internal:8081"


def test_readable_cookie_secret_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    secret = data / "jupyterhub_cookie_secret"
    secret.write_text("ab" * 32 + "\n")
    secret.chmod(0o640)
    result = load(base_env(tmp_path), tmp_path)
    assert result.returncode == 1
    assert f"can be read by group or others (mode 0640): run `chmod 600 {secret}`" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"JH_TLS_VERIFY": "maybe"}, "JH_TLS_VERIFY must be true or false, got 'maybe'"),
        ({"JH_XNAT_TIMEOUT": "soon"}, "JH_XNAT_TIMEOUT must be a number, got 'soon'"),
        ({"JH_XNAT_URL": "ftp://xnat"}, "JH_XNAT_URL must be an http:// or https:// URL with a host"),
        ({"JH_XNAT_URL": ""}, "JH_XNAT_URL is not set: the hub needs XNAT's URL"),
        ({"JH_XNAT_URL": "https://xnat/?token=query-secret-1234"},
         "JH_XNAT_URL must not carry a query, a fragment or credentials, got 'https://xnat/?***'"),
        ({"JH_HUB_CONNECT_URL": "jupyterhub:8081"}, "JH_HUB_CONNECT_URL must be an http:// or https:// URL"),
        ({"JH_TLS_CA_CERT": "/nonexistent.pem"}, "JH_TLS_CA_CERT: /nonexistent.pem is not a file"),
        ({"JH_XNAT_SERVICE_TOKEN": "short-token"}, "JH_XNAT_SERVICE_TOKEN must be at least 16 characters"),
        ({"JH_CONSOLE_TOKEN": "has a space in it, long enough"}, "JH_CONSOLE_TOKEN must not contain spaces"),
        ({"JH_XNAT_SERVICE_TOKEN": XNAT_TOKEN, "JH_CONSOLE_TOKEN": XNAT_TOKEN},
         "JH_CONSOLE_TOKEN and JH_XNAT_SERVICE_TOKEN must be different tokens"),
        ({"JH_XNAT_SERVICE_TOKEN": XNAT_TOKEN, "JH_XNAT_SERVICE_TOKEN_FILE": "/x"},
         "set JH_XNAT_SERVICE_TOKEN or JH_XNAT_SERVICE_TOKEN_FILE, not both"),
        ({"JH_CONSOLE_TOKEN_FILE": "/nonexistent/token"}, "JH_CONSOLE_TOKEN_FILE: cannot read /nonexistent/token"),
        ({"JH_XNAT_PASSWORD_FILE": "/nonexistent/pw"}, "JH_XNAT_PASSWORD_FILE: cannot read /nonexistent/pw"),
        ({"JH_DATA_DIR": "/proc/version/data"}, "JH_DATA_DIR: cannot create /proc/version/data"),
        # the spawner's variables are read at startup too, not at the first spawn
        ({"JH_START_TIMEOUT": "soon"}, "JH_START_TIMEOUT must be a whole number, got 'soon'"),
        ({"JH_ALLOW_TOKEN_IN_URL": "perhaps"}, "JH_ALLOW_TOKEN_IN_URL must be true or false"),
    ],
)
def test_bad_values_stop_the_hub_with_one_clear_line(tmp_path, settings, message):
    result = load(base_env(tmp_path, **settings), tmp_path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("[E jupyterhub_config]")]
    assert errors == [f"[E jupyterhub_config] {errors[0].split('] ', 1)[1]}"] and message in errors[0]
    assert "Traceback" not in result.stderr
    for variable, value in settings.items():
        if variable.endswith("_TOKEN"):
            assert value not in result.stderr, "a token must never be echoed"
    assert "query-secret-1234" not in result.stderr, "a URL's query may hold a token: never echoed"


def test_jupyterhub_cli_stops_cleanly_on_a_bad_value(tmp_path):
    """The real command: `jupyterhub -f hub/jupyterhub_config.py` exits 1 with the message, no traceback."""
    result = subprocess.run([str(JUPYTERHUB), "-f", str(CONFIG), "--show-config"],
                            env=base_env(tmp_path, JH_XNAT_TIMEOUT="-1"), cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert "[E jupyterhub_config] JH_XNAT_TIMEOUT must be a number greater than 0, got '-1'" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_all_documents_our_options(tmp_path):
    registered = {ep.value for ep in entry_points(group="jupyterhub.authenticators")}
    # --help-all lists only entry-point classes: a lost registration must fail here, not skip
    assert "hub.auth:XnatAuthenticator" in registered, (
        "hub.auth:XnatAuthenticator is not registered under the jupyterhub.authenticators entry point "
        "(pyproject.toml; reinstall with scripts/bootstrap-python.sh)"
    )
    result = subprocess.run([str(JUPYTERHUB), "-f", str(CONFIG), "--help-all"], env=base_env(tmp_path),
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for option in ("XnatAuthenticator.jupyter_role", "XnatAuthenticator.allow_xnat_approved", "XnatClient.url",
                   "XnatClient.timeout", "XnatClient.tls_ca_cert", "XnatClient.tls_verify",
                   "XnatClient.service_password"):
        assert f"--{option}=" in result.stdout
    assert "$JH_XNAT_URL" in result.stdout


def test_startup_check_leaves_the_shared_client_to_the_app(clean_env):
    """Reading the variables at startup must not create the shared XnatClient outside the app's config."""
    from hub.auth import XnatAuthenticator
    from hub.settings import check_environment
    from hub.xnat import XnatClient

    check_environment(XnatAuthenticator)
    XnatClient.check_environment()
    assert not XnatClient.initialized()
