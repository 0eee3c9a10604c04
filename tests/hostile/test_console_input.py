"""Bad values on the console's command line, in its flags, its environment and its config file: a clear one-line
error and a documented exit code (2 usage/config, 3 unreachable, 1 failed), never a traceback and never the
console's last-resort "unexpected error" line (which would be a crash in disguise).

tests/console/test_cli.py has hand-picked cases; here hypothesis generates the values (in process, through
`console.cli.main`), and a table of broken config files goes through the installed command. The cases this run
first found (a URL or docker host with an unbalanced "[", `~nobody/...`, a file name too long, a NUL in a
configured path) are kept below as regression tests; console/config.py now refuses each with exit 2.
XNATJH_HYPOTHESIS_EXAMPLES=N runs N examples instead of 300.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.cli import main

_OVERRIDE = os.environ.get("XNATJH_HYPOTHESIS_EXAMPLES")
EXIT_CODES = {1, 2, 3}
# Where nothing answers, at once: a reachable-looking value then fails fast with exit 3.
DEAD_HUB = "http://127.0.0.1:9/jupyterhub/hub/api"

VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from([
        "", "-1", "0", "1e999", "nan", "inf", "-0", "99999999999999999999", "abc", "1,5", " 3 ", "0x10",
        "http://", "https://:0", "ftp://x", "tcp://", "ssh://", "unix://", "unix:///nonexistent.sock", "tcp://[::1",
        "http://127.0.0.1:9", "http://u:p@127.0.0.1:9/hub/api", "//x", "../../etc/passwd", "/etc/shadow", "/dev/null",
        "/proc/self/environ", "\x00", "\n", "a/b/c", "/", "..", "x" * 5000, "é💥", "${HOME}", "$(id)", "-h",
    ]),
)
# What a real command line can carry: the OS cannot pass a NUL byte in argv (the config file can: see CONFIGS).
ARGV_VALUES = VALUES.filter(lambda v: "\x00" not in v)
FLAGS = st.sampled_from(["--timeout", "--hub-url", "--docker-host", "--stack", "--token-file", "--config",
                         "--ca-bundle", "--xnat-url", "--xnat-username", "--xnat-password-file"])
COMMANDS = st.sampled_from([
    ["status", "--no-xnat"], ["servers", "--json", "--no-stats"], ["services"], ["logs", "hub", "--tail", "1"],
    ["server", "stop", "alice"], ["services", "alice/x"],
])
TARGETS = st.one_of(ARGV_VALUES, st.sampled_from(["a//b", "/x", "x/", "a/b/c", "jupyter-", "hub/..", "*"]))
LOG_OPTIONS = st.sampled_from(["--since", "--tail"])


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An environment where every reachable-looking endpoint is dead, and a valid 0600 token file."""
    home = tmp_path_factory.mktemp("console-hostile")
    token = home / "token"
    token.write_text("not-a-real-token")
    token.chmod(0o600)
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(("JH_", "DOCKER_", "XDG_")):
            del os.environ[name]
    os.environ.update({"XDG_CONFIG_HOME": str(home / "cfg"), "XDG_STATE_HOME": str(home / "state"),
                       "JH_HUB_API_URL": DEAD_HUB, "JH_CONSOLE_TOKEN_FILE": str(token),
                       "DOCKER_HOST": f"unix://{home}/no-engine.sock"})
    try:
        yield home
    finally:
        os.environ.clear()
        os.environ.update(saved)


def examples(count: int) -> settings:
    return settings(max_examples=int(_OVERRIDE) if _OVERRIDE else count, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own usage errors
        code = e.code if isinstance(e.code, int) else 2
    out, err = capsys.readouterr()
    return code, out + err


def assert_clean(code: int, output: str, argv: list[str]) -> None:
    assert code in EXIT_CODES, (code, argv, output[-500:])
    assert "Traceback" not in output, output[-2000:]
    assert "unexpected error" not in output, (argv, output[-500:])
    error_lines = [line for line in output.splitlines() if line.startswith(("xnat-jh-console:", "usage:"))]
    status_table = "status" in argv and "down" in output  # `status` reports a dead part in its table
    assert error_lines or status_table or code == 1, (argv, output[-500:])


@examples(300)
@given(FLAGS, ARGV_VALUES, COMMANDS)
def test_generated_flag_values(sandbox: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str,
                               command: list[str]) -> None:
    argv = ["--timeout", "2", f"{flag}={value}", *command]
    assert_clean(*run_main(argv, capsys), argv)


@pytest.mark.parametrize("flag", ["--hub-url", "--xnat-url"])
def test_a_url_with_an_unbalanced_bracket_is_a_config_error(sandbox: Path, capsys: pytest.CaptureFixture[str],
                                                             flag: str) -> None:
    argv = ["--timeout", "2", f"{flag}=http://[", "status", "--no-xnat"]
    code, output = run_main(argv, capsys)
    assert code == 2 and "unexpected error" not in output, output


def test_a_docker_host_with_an_unbalanced_bracket_is_a_config_error(sandbox: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, output = run_main(["--timeout", "2", "--docker-host=[", "status", "--no-xnat"], capsys)
    assert code == 2 and "unexpected error" not in output, output


def test_a_path_in_an_unknown_home_is_a_config_error(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = run_main(["--timeout", "2", "--token-file=~no-such-user-xjh/token", "status", "--no-xnat"], capsys)
    assert code == 2 and "unexpected error" not in output, output


def test_a_path_too_long_for_the_filesystem_is_a_config_error(sandbox: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, output = run_main(["--timeout", "2", f"--config={'x' * 300}", "status", "--no-xnat"], capsys)
    assert code == 2 and "unexpected error" not in output, output


@examples(150)
@given(st.sampled_from(["stop", "restart", "delete"]), TARGETS)
def test_generated_server_targets(sandbox: Path, capsys: pytest.CaptureFixture[str], action: str, target: str) -> None:
    argv = ["--timeout", "2", "--read-only", "server", action, "--", target]
    assert_clean(*run_main(argv, capsys), argv)


@examples(150)
@given(LOG_OPTIONS, ARGV_VALUES)
def test_generated_log_options(sandbox: Path, capsys: pytest.CaptureFixture[str], option: str, value: str) -> None:
    argv = ["--timeout", "2", "logs", "hub", f"{option}={value}"]
    assert_clean(*run_main(argv, capsys), argv)


CONFIGS = {
    "not TOML": ("hub_url = \n", "is not valid TOML"),
    "binary": ("\x00\xff\xfe", "config"),
    "wrong type": ('timeout = "soon"\n', "timeout"),
    "negative timeout": ("timeout = -5\n", "timeout"),
    "huge timeout": ("timeout = 1e308\n", "timeout"),
    "unknown key": ("hub_ulr = \"http://x\"\n", "hub_ulr"),
    "table for a string": ("[hub_url]\nx = 1\n", "hub_url"),
    "bad URL": ('hub_url = "javascript:alert(1)"\n', "hub_url"),
    "bad keys table": ('[keys]\nrefresh = 5\n', "keys"),
    "token readable by others": ('token = "s3cret-in-config"\n', "chmod 600"),
    "NUL in a path": ('token_file = "/tmp/a\\u0000b"\n', "token_file"),
}


@pytest.mark.parametrize("case", list(CONFIGS))
def test_broken_config_files_through_the_installed_command(sandbox: Path, tmp_path: Path, case: str) -> None:
    text, message = CONFIGS[case]
    config = tmp_path / "config.toml"
    config.write_text(text, errors="surrogateescape")
    config.chmod(0o644 if case == "token readable by others" else 0o600)
    command = Path(sys.executable).parent / "xnat-jh-console"
    # the file alone decides: no hub URL or token file in the environment to override it
    env = {k: v for k, v in os.environ.items() if k not in ("JH_HUB_API_URL", "JH_CONSOLE_TOKEN_FILE")}
    result = subprocess.run([str(command), "--config", str(config), "status", "--no-xnat"], capture_output=True,
                            text=True, timeout=60, env=env)
    assert result.returncode == 2, (case, result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr
    assert message in result.stderr and len(result.stderr.splitlines()) <= 3, result.stderr
    assert "s3cret-in-config" not in result.stdout + result.stderr
