"""The installed command, run as a subprocess: output, --json, exit codes, and clean errors (never a traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.console_backend import TEST_PREFIX, TEST_STACK
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.timeout(180)

CLI = [sys.executable, "-m", "console"]


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """A clean environment: our own XDG dirs, no hub or XNAT settings."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_HOST", "LANG")}
    keep.update({"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_STATE_HOME": str(tmp_path / "state")})
    return keep


@pytest.fixture
def swarm_env(env, tmp_path, test_network) -> dict[str, str]:
    """`env` with a config file naming the tests' stack and network, so a demo up on this swarm stays out."""
    config = tmp_path / "console.toml"
    config.write_text(f'stack = "{TEST_STACK}"\nnetwork = "{test_network}"\n')
    config.chmod(0o600)
    env["JH_CONSOLE_CONFIG"] = str(config)
    return env


@pytest.fixture
def hub_env(swarm_env, local_hub, tmp_path) -> dict[str, str]:
    token = tmp_path / "console-token"
    token.write_text(local_hub.console_token)
    token.chmod(0o600)
    swarm_env.update({"JH_HUB_API_URL": local_hub.api_url, "JH_CONSOLE_TOKEN_FILE": str(token)})
    return swarm_env


def cli(*args: str, env: dict[str, str], stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, input=stdin, timeout=timeout)
    assert "Traceback" not in result.stderr, result.stderr
    return result


# -- usage and configuration errors: exit 2 --------------------------------------------------------


def test_bad_flag_is_a_usage_error(env):
    result = cli("--no-such-flag", "status", env=env)
    assert result.returncode == 2 and "usage:" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--timeout", "abc", "status"], "timeout (command line) must be a number"),
        (["--hub-url", "hub:8000", "status"], "hub_url (command line) must be an http(s):// URL"),
        (["logs", "x", "--since", "yesterday"], "--since must look like"),
        (["server", "stop", "a/b/c"], "expected USER or USER/SERVER"),
    ],
)
def test_bad_values_exit_2_with_a_clear_message(env, args, message, tmp_path):
    token = tmp_path / "t"
    token.write_text("x")
    token.chmod(0o600)
    env["JH_CONSOLE_TOKEN_FILE"] = str(token)
    result = cli(*args, env=env)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_bad_toml_and_unsafe_config_exit_2(env, tmp_path):
    config = Path(env["XDG_CONFIG_HOME"]) / "xnat-jh-console" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("hub_url = \n")
    result = cli("status", env=env)
    assert result.returncode == 2 and "is not valid TOML" in result.stderr
    config.write_text('token = "abc123"\n')
    config.chmod(0o644)
    result = cli("status", env=env)
    assert result.returncode == 2 and f"chmod 600 {config}" in result.stderr and "abc123" not in result.stderr


def test_missing_token_is_a_config_error(env):
    result = cli("servers", env=env)
    assert result.returncode == 2 and "no hub token" in result.stderr


def test_stop_needs_yes_when_it_cannot_ask(env):
    result = cli("stop", env=env, stdin="")
    assert result.returncode == 2 and "without --yes" in result.stderr


# -- against the real hub and engine -------------------------------------------------------------


def test_status_json_and_exit_code_follow_the_health(hub_env, docker_client):
    result = cli("status", "--json", "--no-xnat", env=hub_env)
    data = json.loads(result.stdout)
    health = {c["name"]: c["health"] for c in data["components"]}
    assert health["engine"] == "ok" and health["hub"] == "ok" and data["users"] >= 0
    expected = 0 if all(h == "ok" for h in health.values()) and not data["failed_tasks"] else 1
    assert result.returncode == expected


def test_status_table_when_the_hub_is_dead(env, tmp_path):
    token = tmp_path / "t"
    token.write_text("x")
    token.chmod(0o600)
    result = cli(
        "--hub-url",
        "http://127.0.0.1:9/hub/api",
        "--token-file",
        str(token),
        "--timeout",
        "2",
        "status",
        "--no-xnat",
        env=env,
    )
    assert result.returncode == 3
    hub_line = next(line for line in result.stdout.splitlines() if line.startswith("hub"))
    assert "down" in hub_line and "cannot connect" in hub_line


def test_status_checks_xnat_beside_a_dead_hub(env, tmp_path):
    token = tmp_path / "t"
    token.write_text("x")
    token.chmod(0o600)
    env = {**env, "JH_XNAT_URL": "http://127.0.0.1:9/xnat", "JH_XNAT_USERNAME": "jupyterhub"}
    result = cli("--hub-url", "http://127.0.0.1:9/hub/api", "--token-file", str(token), "--timeout", "2",
                 "status", "--json", env=env)  # fmt: skip
    assert result.returncode == 3, result.stderr
    components = [(c["name"], c["health"]) for c in json.loads(result.stdout)["components"]]
    # The XNAT check runs while the hub is asked, yet its row still comes last.
    assert [name for name, _ in components] == ["engine", "swarm", "hub", "xnat"]
    assert dict(components)["hub"] == "down" and dict(components)["xnat"] == "down"


def test_servers_and_server_stop_and_read_only(hub_env, local_hub):
    with local_hub.admin() as admin:
        admin.post("users", json={"usernames": ["gina-cli"]})
        assert admin.post(
            "users/gina-cli/servers/nb", json={"xsiType": "xnat:projectData", "itemId": "P1"}
        ).status_code in (201, 202)
        wait_for(lambda: admin.get("users/gina-cli").json()["servers"]["nb"]["ready"], 30, "gina's server")
    try:
        result = cli("servers", "--json", "--no-stats", env=hub_env)
        assert result.returncode in (0, 1)
        rows = {f"{r['user']}/{r['server']}": r for r in json.loads(result.stdout)}
        assert rows["gina-cli/nb"]["state"] == "ready" and rows["gina-cli/nb"]["item_id"] == "P1"
        table = cli("servers", "--no-stats", env=hub_env).stdout.splitlines()
        assert table[0].split()[:3] == ["USER", "SERVER", "STATE"]
        assert any(line.split()[:3] == ["gina-cli", "nb", "ready"] for line in table[1:])

        refused = cli("--read-only", "server", "stop", "gina-cli/nb", env=hub_env)
        assert refused.returncode == 1 and "read-only" in refused.stdout
        stopped = cli("server", "stop", "gina-cli/nb", "--json", env=hub_env)
        assert stopped.returncode == 0 and json.loads(stopped.stdout)["outcome"] == "ok"
        with local_hub.admin() as admin:
            assert "nb" not in admin.get("users/gina-cli").json()["servers"]
        audit = (Path(hub_env["XDG_STATE_HOME"]) / "xnat-jh-console" / "audit.log").read_text()
        outcomes = [(e["action"], e["outcome"]) for e in map(json.loads, audit.splitlines())]
        assert outcomes == [("stop", "refused"), ("stop", "ok")]
        assert local_hub.console_token not in audit
    finally:
        with local_hub.admin() as admin:
            admin.delete("users/gina-cli")


def test_server_restart_prints_progress(hub_env, local_hub):
    with local_hub.admin() as admin:
        admin.post("users", json={"usernames": ["hank-cli"]})
        admin.post("users/hank-cli/server", json={"projectId": "P9"})
        wait_for(lambda: admin.get("users/hank-cli").json()["servers"].get("", {}).get("ready"), 30, "hank's server")
    try:
        result = cli("server", "restart", "hank-cli", env=hub_env)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == "stopping hank-cli" and "stopped" in lines
        assert lines[-1].startswith("restart hank-cli: ok")
        with local_hub.admin() as admin:
            assert admin.get("users/hank-cli").json()["servers"][""]["user_options"] == {"projectId": "P9"}
    finally:
        with local_hub.admin() as admin:
            admin.delete("users/hank-cli/server")
            wait_for(lambda: "" not in admin.get("users/hank-cli").json()["servers"], 30, "hank's server to stop")
            admin.delete("users/hank-cli")


def test_services_and_logs_of_a_test_service(swarm_env, make_service):
    make_service("cli-logs", "seq 1 5; sleep 600", labels={"org.xnat.jupyterhub.user": "ivy"})
    name = TEST_PREFIX + "cli-logs"
    wait_for(lambda: len(cli("logs", name, env=swarm_env).stdout.splitlines()) >= 5, 60, "the five lines")
    result = cli("logs", "ivy", "--tail", "2", env=swarm_env)  # by hub user name, through the label
    assert result.returncode == 0
    assert [line.split(" | ")[1] for line in result.stdout.splitlines()] == ["4", "5"]
    assert all(line.startswith(name + ".1.") for line in result.stdout.splitlines())
    as_json = [
        json.loads(line) for line in cli("logs", name, "--tail", "1", "--json", "-t", env=swarm_env).stdout.splitlines()
    ]
    assert as_json[0]["text"] == "5" and as_json[0]["timestamp"]
    services = cli("services", "--json", env=swarm_env)
    assert name in {s["name"] for s in json.loads(services.stdout)}
    tasks = cli("services", name, env=swarm_env)
    assert tasks.stdout.splitlines()[0].split()[:4] == ["TASK", "SLOT", "NODE", "STATE"]
    missing = cli("logs", "nobody-xyz", env=swarm_env)
    assert missing.returncode == 1 and "no service for 'nobody-xyz'" in missing.stderr


def test_dead_engine_is_unreachable(env, tmp_path):
    result = cli("--docker-host", f"unix://{tmp_path}/none.sock", "services", env=env)
    assert result.returncode == 3 and "no Docker engine answers" in result.stderr


def test_check_json_against_the_standin(env, xnat_standin_thread):
    url, (user, password) = xnat_standin_thread
    env.update({"JH_XNAT_URL": url, "JH_XNAT_USERNAME": user, "JH_XNAT_PASSWORD": password})
    result = cli("check", "--json", env=env)
    steps = {s["name"]: s for s in json.loads(result.stdout)}
    assert steps["service account"]["status"] == "pass" and steps["JupyterHub plugin"]["status"] == "pass"
    assert steps["hub API URL"]["status"] == "fail"  # the stand-in's default hub URL does not answer here
    assert result.returncode == 1 and password not in result.stdout
    env["JH_XNAT_URL"] = "http://127.0.0.1:9"
    assert cli("check", env=env).returncode == 3


def test_servers_table_joins_the_swarm_with_live_cpu(hub_env, local_hub, make_service):
    with local_hub.admin() as admin:
        admin.post("users", json={"usernames": ["jill-cli"]})
        admin.post("users/jill-cli/servers/nb", json={"xsiType": "xnat:subjectData", "itemId": "S1"})
        wait_for(lambda: admin.get("users/jill-cli").json()["servers"]["nb"]["ready"], 30, "jill's server")
    try:
        make_service(
            "jill-cli-nb",
            "yes > /dev/null",
            labels={"org.xnat.jupyterhub.user": "jill-cli", "org.xnat.jupyterhub.server": "nb"},
        )

        def joined():
            rows = json.loads(cli("servers", "--json", env=hub_env).stdout)
            row = next(r for r in rows if r["user"] == "jill-cli")
            return row if row["task_state"] == "running" and row["stats"] else None

        row = wait_for(joined, 90, "jill's row with its running task and stats", interval=1)
        assert row["service_name"] == TEST_PREFIX + "jill-cli-nb" and row["node"]
        assert row["stats"]["cpu_percent"] is not None and row["stats"]["cpu_percent"] > 5  # two samples, `yes` busy
        assert row["stats"]["mem_bytes"] > 0
        line = next(line for line in cli("servers", env=hub_env).stdout.splitlines() if line.startswith("jill-cli"))
        assert line.split()[5:7] == ["xnat:subjectData", "S1"] and TEST_PREFIX + "jill-cli-nb" in line and "%" in line
    finally:
        with local_hub.admin() as admin:
            admin.request("DELETE", "users/jill-cli/servers/nb", json={"remove": True})
            wait_for(lambda: "nb" not in admin.get("users/jill-cli").json()["servers"], 30, "jill's server to go")
            admin.delete("users/jill-cli")


def test_help_lists_every_scriptable_command():
    out = subprocess.run([*CLI, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("status", "servers", "services", "logs", "check", "deploy", "stop", "server"):
        assert command in out
