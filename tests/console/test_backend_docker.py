"""DockerAccess against the live engine: services, tasks, merged logs, stats, redaction, errors, contexts."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from datetime import UTC, datetime, timedelta

import docker.types
import pytest

from console.backend.docker import (
    DockerAccess,
    DockerUnavailable,
    context_endpoint,
    is_secret_name,
    redact_env,
    resolve_endpoint,
)
from console.backend.models import REDACTED, Health
from tests.helpers.console_backend import TEST_PREFIX
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.timeout(180)]

COUNTER = 'i=0; while true; do i=$((i+1)); echo "out $i"; echo "err $i" >&2; sleep 0.2; done'


@pytest.fixture
def access(docker_client):
    d = DockerAccess(timeout=20)
    yield d
    d.close()


def running_task(access: DockerAccess, name: str):
    def find():
        tasks = [t for t in access.tasks(name) if t.state == "running"]
        return tasks[0] if tasks else None

    return wait_for(find, 60, f"{name} to run")


def test_health_and_nodes(access):
    engine, swarm = access.health()
    assert engine.health == Health.OK and "API 1.4" in engine.detail
    assert swarm.health == Health.OK and "manager" in swarm.detail
    nodes = access.nodes()
    assert any(n.role == "manager" and n.leader and n.state == "ready" for n in nodes)
    assert all(n.nano_cpus > 0 and n.memory_bytes > 0 for n in nodes)
    # The combined call hands back the very node list its swarm health was judged from.
    components, judged = access.health_and_nodes()
    assert [c.health for c in components] == [Health.OK, Health.OK]
    assert {n.id for n in judged} == {n.id for n in nodes}


def test_dead_engine_is_down_in_health_and_unavailable_elsewhere(tmp_path):
    dead = DockerAccess(f"unix://{tmp_path}/no.sock", timeout=2)
    engine, swarm = dead.health()
    assert engine.health == Health.DOWN and "no Docker engine answers" in engine.detail
    assert swarm.health == Health.UNKNOWN
    assert dead.health_and_nodes()[1] == []
    with pytest.raises(DockerUnavailable, match="no Docker engine answers"):
        dead.services()


def test_notebook_services_tasks_limits(access, make_service):
    make_service(
        "alice",
        COUNTER,
        labels={"org.xnat.jupyterhub.user": "alice", "org.xnat.jupyterhub.server": "mri"},
        limits={"cpu_limit": 500_000_000, "mem_limit": 64 * 1024 * 1024},
    )
    make_service("other", "sleep 60")  # neither stack nor notebook: not listed
    name = TEST_PREFIX + "alice"
    task = running_task(access, name)
    services = {s.name: s for s in access.services()}
    assert name in services and TEST_PREFIX + "other" not in services
    svc = services[name]
    assert (svc.notebook_user, svc.notebook_server) == ("alice", "mri")
    assert svc.cpu_limit == 0.5 and svc.mem_limit == 64 * 1024 * 1024
    assert svc.image == "xjc-test/tiny:latest" and svc.replicas_desired == 1
    assert task.node_name and task.container_id and task.timestamp is not None
    # `all_services` lists the rest too.
    assert TEST_PREFIX + "other" in {s.name for s in access.services(all_services=True)}


def test_rejected_task_carries_dockers_error_text(access, make_service):
    mount = docker.types.Mount("/data", "/nonexistent/xjc-test-path", type="bind")
    make_service("rejected", "sleep 60", mounts=[mount], labels={"org.xnat.jupyterhub.user": "bob"})

    def rejected():
        return [t for t in access.tasks(TEST_PREFIX + "rejected") if t.state == "rejected"]

    tasks = wait_for(rejected, 60, "the task to be rejected")
    assert "bind source path does not exist" in tasks[0].error
    assert "/nonexistent/xjc-test-path" in tasks[0].error


def test_inspect_redacts_secret_env_and_args(access, make_service):
    make_service(
        "secrets",
        "sleep 60",
        env=[
            "JUPYTERHUB_API_TOKEN=tok-123456",
            "XNAT_PASS=pw-abc",
            "XNAT_USER=alias-tok",
            "JH_XNAT_PASSWORD_FILE=/run/secrets/x",
            "JUPYTERHUB_USER=alice",
            "AWS_SECRET_ACCESS_KEY=aws-1",
        ],
        args=None,
    )
    spec = access.inspect_service(TEST_PREFIX + "secrets")
    text = json.dumps(spec)
    for secret in ("tok-123456", "pw-abc", "alias-tok", "aws-1"):
        assert secret not in text
    env = spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert f"JUPYTERHUB_API_TOKEN={REDACTED}" in env
    assert "JUPYTERHUB_USER=alice" in env and "JH_XNAT_PASSWORD_FILE=/run/secrets/x" in env
    # Docker itself still holds it in plain text (issue 5): only our view is redacted.
    raw = access.inspect_service(TEST_PREFIX + "secrets", redact=False)
    assert "JUPYTERHUB_API_TOKEN=tok-123456" in raw["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]


def test_secret_names():
    assert all(
        map(
            is_secret_name,
            ["JUPYTERHUB_API_TOKEN", "JPY_COOKIE_SECRET", "CONFIGPROXY_AUTH_TOKEN", "db_password", "API_KEY"],
        )
    )
    assert not any(map(is_secret_name, ["JUPYTERHUB_USER", "JH_XNAT_PASSWORD_FILE", "PATH", "HOME", "KEYBOARD_LAYOUT"]))
    assert redact_env(["A=1", "MY_TOKEN=", "X_TOKEN=v"]) == ["A=1", "MY_TOKEN=", f"X_TOKEN={REDACTED}"]


def test_service_logs_merge_tasks_with_prefix_and_streams(access, make_service):
    make_service("logs", COUNTER, mode=docker.types.ServiceMode("replicated", replicas=2))
    name = TEST_PREFIX + "logs"

    def both_logging():
        lines = list(access.service_logs(name, tail=50))
        return lines if len({line.task for line in lines}) == 2 else None

    lines = wait_for(both_logging, 60, "both tasks to log")
    tasks = {t.id: t for t in access.tasks(name)}
    for line in lines:
        service, slot, task_id_node = line.task.split(".", 2)
        task_id, node = task_id_node.split("@")
        assert service == name and slot in ("1", "2")
        assert any(t.startswith(task_id) for t in tasks) and node
    assert {line.stream for line in lines} == {"stdout", "stderr"}
    assert all(line.text.startswith(("out ", "err ")) for line in lines)


def test_service_logs_tail_since_timestamps(access, make_service):
    make_service("tail", "seq 1 40; sleep 600")
    name = TEST_PREFIX + "tail"
    wait_for(lambda: len(list(access.service_logs(name))) >= 40, 60, "all 40 lines")
    assert [line.text for line in access.service_logs(name, tail=3)] == ["38", "39", "40"]
    stamped = list(access.service_logs(name, tail=2, timestamps=True))
    assert all(line.timestamp is not None for line in stamped)
    future = datetime.now(UTC) + timedelta(minutes=5)
    assert list(access.service_logs(name, since=future)) == []


def test_follow_yields_new_lines_and_close_from_another_thread_ends_it(access, make_service):
    make_service("follow", COUNTER)
    name = TEST_PREFIX + "follow"
    running_task(access, name)
    stream = access.service_logs(name, follow=True, tail=0)
    seen = []
    done = threading.Event()

    def reader():
        for line in stream:
            seen.append(line)
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    wait_for(lambda: len(seen) >= 4, 30, "followed lines")
    stream.close()
    assert done.wait(10), "close() did not end the follow"


def test_close_wakes_a_reader_blocked_on_a_silent_follow(access, make_service):
    make_service("silent", "sleep 600")
    name = TEST_PREFIX + "silent"
    running_task(access, name)
    stream = access.service_logs(name, follow=True, tail=0)
    done = threading.Event()
    def read_all() -> None:
        list(stream)
        done.set()

    threading.Thread(target=read_all, daemon=True).start()
    time.sleep(0.5)  # let the reader block in its read: nothing will ever arrive
    started = time.monotonic()
    stream.close()
    assert done.wait(5), "the blocked reader did not wake up"
    assert time.monotonic() - started < 2
    assert access.health()[0].health == Health.OK  # the client is still fine for other calls


def test_container_stats_cpu_from_deltas_and_memory(access, make_service):
    make_service("busy", "yes > /dev/null", limits={"mem_limit": 64 * 1024 * 1024})
    task = running_task(access, TEST_PREFIX + "busy")
    first = access.container_stats(task)
    assert first.unavailable_reason == "" and first.mem_bytes and first.mem_limit_bytes == 64 * 1024 * 1024

    def cpu():
        value = access.container_stats(task).cpu_percent
        return value if value and value > 5 else None

    assert wait_for(cpu, 30, "a CPU figure from two samples") > 5  # `yes` keeps a core busy


def test_container_stats_elsewhere_is_na_with_reason(access, make_service):
    make_service("remote", "sleep 600")
    task = running_task(access, TEST_PREFIX + "remote")
    from dataclasses import replace

    remote = replace(task, node_id="someothernode", node_name="node2")
    stats = access.container_stats(remote)
    assert stats.cpu_percent is None and stats.unavailable_reason.startswith("n/a: task runs on node2")


def test_events_window_is_recent_and_does_not_block(access, make_service):
    since = datetime.now(UTC) - timedelta(seconds=2)
    make_service("events", "sleep 600")
    running_task(access, TEST_PREFIX + "events")
    started = time.monotonic()
    events = access.events(since=since)
    assert time.monotonic() - started < 10
    assert any(e.type == "service" and e.action == "create" and e.actor == TEST_PREFIX + "events" for e in events)


def test_unknown_service_is_a_clear_error(access):
    with pytest.raises(DockerUnavailable, match="no service"):
        access.inspect_service("xjc-test-does-not-exist")


# -- which engine: DOCKER_HOST and contexts -----------------------------------------------------


def _write_context(config_dir, name, host, *, tls_files=(), skip_verify=False):
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config_dir / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(
        json.dumps(
            {"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": skip_verify}}}
        )
    )
    tls = config_dir / "contexts" / "tls" / digest / "docker"
    if tls_files:
        tls.mkdir(parents=True)
        for f in tls_files:
            (tls / f).write_text("-----BEGIN CERTIFICATE-----\n")


def test_context_made_by_the_docker_cli_reaches_the_engine(tmp_path, docker_client):
    import shutil
    import subprocess

    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed; cannot create a context the way operators do")
    env = {"DOCKER_CONFIG": str(tmp_path), "PATH": "/usr/bin:/bin"}
    subprocess.run(
        ["docker", "context", "create", "xjc-local", "--docker", "host=unix:///var/run/docker.sock"],
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(["docker", "context", "use", "xjc-local"], env=env, check=True, capture_output=True)
    endpoint = resolve_endpoint(env=env)
    assert endpoint.host == "unix:///var/run/docker.sock" and "xjc-local" in endpoint.source
    d = DockerAccess(env=env)
    assert d.health()[0].health == Health.OK


def test_tcp_tls_context_and_precedence(tmp_path):
    _write_context(tmp_path, "remote", "tcp://10.1.2.3:2376", tls_files=("ca.pem", "cert.pem", "key.pem"))
    endpoint = context_endpoint("remote", {"DOCKER_CONFIG": str(tmp_path)})
    assert endpoint.host == "tcp://10.1.2.3:2376"
    assert endpoint.tls is not None and endpoint.tls.verify
    assert endpoint.tls.cert is not None and endpoint.tls.cert[0].endswith("cert.pem")
    # DOCKER_HOST beats DOCKER_CONTEXT; an explicit host beats both.
    env = {"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "remote", "DOCKER_HOST": "ssh://admin@manager1"}
    assert resolve_endpoint(env=env).host == "ssh://admin@manager1"
    assert resolve_endpoint("unix:///x.sock", env=env).host == "unix:///x.sock"
    del env["DOCKER_HOST"]
    assert resolve_endpoint(env=env).host == "tcp://10.1.2.3:2376"
    # The CLI's current context from config.json.
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "remote"}))
    assert resolve_endpoint(env={"DOCKER_CONFIG": str(tmp_path)}).host == "tcp://10.1.2.3:2376"


def test_missing_context_is_a_clear_error(tmp_path):
    d = DockerAccess(env={"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "nope"})
    engine, _ = d.health()
    assert engine.health == Health.DOWN and "docker context 'nope' does not exist" in engine.detail


def test_logs_of_a_tty_service_are_plain_text(access, make_service):
    make_service("tty", "seq 1 3; sleep 600", tty=True)
    name = TEST_PREFIX + "tty"
    lines = wait_for(lambda: [line for line in access.service_logs(name) if line.text.strip()], 60, "tty lines")
    assert [line.text for line in lines] == ["1", "2", "3"]  # a TTY's "\r\n" endings are stripped
    assert all(line.task.startswith(name + ".1.") for line in lines)


@pytest.mark.parametrize("scheme", ["tcp://127.0.0.1:9", "ssh://nobody@127.0.0.1:9"])
def test_unreachable_tcp_and_ssh_engines_are_clean_errors(scheme, capfd):
    dead = DockerAccess(scheme, timeout=5)
    engine, _swarm = dead.health()
    assert engine.health == Health.DOWN and f"no Docker engine answers at {scheme}" in engine.detail
    with pytest.raises(DockerUnavailable):
        dead.nodes()
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # nothing written under a full-screen console
