"""console.config: file < environment < flags, secret files, unsafe permissions, bad values."""

from __future__ import annotations

import pytest

from console.config import ConfigError, default_config_path, load_config


def write(path, text: str, mode: int = 0o600):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def env(tmp_path):
    return {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path)}


def test_defaults_without_a_file(env, tmp_path):
    config = load_config(env=env)
    assert config.hub_url == "http://127.0.0.1:8000/jupyterhub/hub/api"
    assert config.verify is True and config.read_only is False and config.timeout == 10.0
    assert config.audit_log == str(tmp_path / "state" / "xnat-jh-console" / "audit.log")
    assert config.path is None and config.token is None


def test_the_demo_file_is_read_from_the_xdg_dir(env, tmp_path):
    token = write(tmp_path / "console-token", "tok-from-file\n")
    password = write(tmp_path / "xnat-password", "pw-from-file")
    write(
        default_config_path(env),
        f'''
hub_url = "http://hub.example:8000/jupyterhub/hub/api/"
token_file = "{token}"
xnat_url = "https://xnat.example"
xnat_username = "jupyterhub"
xnat_password_file = "{password}"
timeout = 3
read_only = true
theme = "nord"
[keys]
refresh = "ctrl+r"
''',
    )
    config = load_config(env=env)
    assert config.hub_url == "http://hub.example:8000/jupyterhub/hub/api"
    assert config.token == "tok-from-file" and config.xnat_password == "pw-from-file"
    assert config.timeout == 3.0 and config.read_only and config.keys == {"refresh": "ctrl+r"}
    assert config.path == str(default_config_path(env))
    assert "tok-from-file" not in repr(config) and "pw-from-file" not in repr(config)


def test_environment_beats_file_and_flags_beat_environment(env, tmp_path):
    write(
        default_config_path(env),
        'hub_url = "http://file:1/hub/api"\nxnat_username = "file-user"\ntoken = "file-token"\n',
    )
    env.update(
        {"JH_HUB_API_URL": "http://env:2/hub/api", "JH_CONSOLE_TOKEN": "env-token", "JH_XNAT_USERNAME": "env-user"}
    )
    config = load_config(env=env)
    assert (config.hub_url, config.token, config.xnat_username) == ("http://env:2/hub/api", "env-token", "env-user")
    flag_token = write(tmp_path / "flag-token", "flag-token")
    config = load_config(env=env, overrides={"hub_url": "http://flag:3/hub/api", "token_file": str(flag_token)})
    assert (config.hub_url, config.token) == ("http://flag:3/hub/api", "flag-token")


def test_env_token_file_may_be_a_docker_secret_file(env, tmp_path):
    # *_FILE variables point at Docker secrets (mode 0444 in /run/secrets): not refused for their mode.
    secret = write(tmp_path / "secret", "secret-token\n", mode=0o444)
    env["JH_CONSOLE_TOKEN_FILE"] = str(secret)
    assert load_config(env=env).token == "secret-token"
    env["JH_CONSOLE_TOKEN"] = "also"
    with pytest.raises(ConfigError, match="JH_CONSOLE_TOKEN or JH_CONSOLE_TOKEN_FILE, not both"):
        load_config(env=env)


def test_config_file_with_a_secret_readable_by_others_is_refused_with_the_chmod(env):
    path = write(default_config_path(env), 'token = "s3cret"\n', mode=0o644)
    with pytest.raises(ConfigError) as err:
        load_config(env=env)
    assert f"chmod 600 {path}" in str(err.value) and "s3cret" not in str(err.value)
    path.chmod(0o600)
    assert load_config(env=env).token == "s3cret"


def test_config_without_secrets_may_be_world_readable(env):
    write(default_config_path(env), 'hub_url = "http://h:1/hub/api"\n', mode=0o644)
    assert load_config(env=env).hub_url == "http://h:1/hub/api"


def test_a_token_file_named_in_the_config_must_be_private(env, tmp_path):
    token = write(tmp_path / "token", "t", mode=0o640)
    write(default_config_path(env), f'token_file = "{token}"\n')
    with pytest.raises(ConfigError, match=f"chmod 600 {token}"):
        load_config(env=env)


@pytest.mark.parametrize(
    "text, message",
    [
        ("hub_url = ", "not valid TOML"),
        ('hub_url = "ftp://x"', "must be an http"),
        ("timeout = -1", "between 0 and 600"),
        ('timeout = "soon"', "number of seconds"),
        ("verify = 3", "true or false"),
        ('keys = "ctrl+r"', "table of strings"),
        ("colour = 1", "unknown key(s) colour"),
        ("hub_url = 5", "must be a string"),
        ("log_max_lines = 5", "between 10000"),
    ],
)
def test_bad_values_name_the_key(env, text, message):
    write(default_config_path(env), text + "\n")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(env=env)


def test_explicit_missing_file_and_missing_secret_file(env, tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(str(tmp_path / "nope.toml"), env=env)
    env["JH_CONSOLE_TOKEN_FILE"] = str(tmp_path / "absent")
    with pytest.raises(ConfigError, match="cannot read token file"):
        load_config(env=env)
    empty = write(tmp_path / "empty", "")
    env["JH_CONSOLE_TOKEN_FILE"] = str(empty)
    with pytest.raises(ConfigError, match="is empty"):
        load_config(env=env)


def test_bad_env_value(env):
    env["JH_CONSOLE_READ_ONLY"] = "maybe"
    with pytest.raises(ConfigError, match="read_only \\(environment\\) must be true or false"):
        load_config(env=env)
    env["JH_CONSOLE_READ_ONLY"] = "yes"
    assert load_config(env=env).read_only is True


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"hub_url": "http://["}, "hub_url (command line) is not a valid URL"),
        ({"xnat_url": "http://host:port"}, "xnat_url (command line) is not a valid URL"),
        ({"docker_host": "["}, "docker_host (command line) must start with unix://"),
        ({"docker_host": "tcp://["}, "docker_host (command line) is not a valid address"),
        ({"docker_host": "unix://"}, "names no socket"),
        ({"token_file": "~no-such-user-xjc/token"}, "no such user's home directory"),
        ({"token_file": "/tmp/" + "x" * 300}, "longer than 255 bytes"),
        ({"token_file": "/tmp/a\x00b"}, "token file (token_file) contains a NUL byte"),
    ],
)
def test_unusable_urls_addresses_and_paths_are_config_errors(env, overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config(env=env, overrides=overrides)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"xnat_url": "https://admin:hunter2@xnat.example"}, "use xnat_username and xnat_password_file"),
        ({"hub_url": "https://x:hunter2@hub.example/hub/api"}, "use token or token_file"),
        ({"xnat_url": "https://admin:hunter2@xnat.example:port"}, "xnat_url (command line) is not a valid URL"),
        ({"hub_url": "ftp://admin:hunter2@hub.example"}, "must be an http(s):// URL"),
    ],
)
def test_a_password_in_a_url_is_refused_without_echoing_it(env, overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config(env=env, overrides=overrides)
    assert message in str(err.value) and "hunter2" not in str(err.value) and "<redacted>@" in str(err.value)


def test_a_bad_docker_host_in_the_environment_is_a_config_error(env):
    env["DOCKER_HOST"] = "docker.example:2375"
    with pytest.raises(ConfigError, match="DOCKER_HOST must start with unix://"):
        load_config(env=env)
    env["DOCKER_HOST"] = "ssh://admin@manager1"
    assert load_config(env=env).docker_host is None  # valid: the Docker layer reads it


def test_a_nul_in_a_path_in_the_file(env):
    write(default_config_path(env), 'token_file = "/tmp/a\\u0000b"\n')
    with pytest.raises(ConfigError, match="token_file"):
        load_config(env=env)


def test_an_overlong_config_path(env):
    with pytest.raises(ConfigError, match="config file"):
        load_config("x" * 300, env=env)
