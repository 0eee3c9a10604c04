"""The system on a real multi-node swarm (scripts/cluster.sh), driven as XNAT drives it. The tests run in file
order on one cluster: launches first, then the console, then drain, a manager lost, a worker lost, and down.

Figures (seconds) are printed as `[figure] ...` lines; docs/reliability.md quotes them with the command.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from console.backend.docker import DockerAccess
from tests.helpers.cluster import ADDRESSES, MANAGERS, STATE_DIR, Cluster, api_of, cluster_sh, socket_of, wait_for

pytestmark = [pytest.mark.multinode, pytest.mark.timeout(600)]

# What the earlier tests launched, for the later ones: user -> server
launched: dict[str, str] = {}
tokens: dict[str, str] = {}
GPU_USER, OTHER_USER = "alice", "Alice.Smith"


def figure(text: str) -> None:
    print(f"\n[figure] {text}")
    with open(STATE_DIR.parent / "xjc-figures.txt", "a") as f:
        f.write(f"{time.strftime('%H:%M:%S')} {text}\n")


def answers_everywhere(cluster: Cluster, hub_url: str) -> bool:
    return all(cluster.notebook_answers(user, server, tokens[user], hub_url) for user, server in launched.items())


async def test_gpu_launch_lands_on_the_gpu_worker_pulls_from_the_registry_and_answers_through_the_proxy(
        cluster: Cluster):
    server, seconds = await cluster.launch(GPU_USER, generic_resources={"gpu": "1"},
                                           constraints=["node.role == worker"])
    launched[GPU_USER] = server
    assert cluster.notebook_node(GPU_USER, server) == "w1"
    spec = cluster.notebook_service(GPU_USER, server)["Spec"]["TaskTemplate"]
    generic = spec["Resources"]["Reservations"]["GenericResources"]
    assert {"DiscreteResourceSpec": {"Kind": "gpu", "Value": 1}} in generic
    # the image names the cluster's registry, and the GPU worker has it from there (its digest)
    registry = cluster.env["XJC_REGISTRY"]
    assert spec["ContainerSpec"]["Image"].startswith(f"{registry}/singleuser")
    w1 = api_of("w1")
    try:
        digests = w1.inspect_image(cluster.image)["RepoDigests"]
    finally:
        w1.close()
    assert any(d.startswith(f"{registry}/singleuser@sha256:") for d in digests), digests
    tokens[GPU_USER] = await cluster.token(GPU_USER)
    # hub on a manager, notebook on w1: the proxy reaches it over the overlay network by its dnsrr name
    assert cluster.hub_node() in MANAGERS
    model = wait_for(lambda: cluster.notebook_answers(GPU_USER, server, tokens[GPU_USER]), 60,
                     "the GPU notebook to answer through the proxy")
    assert model is not None and "version" in model
    figure(f"launch to ready on the GPU worker w1, first pull from the registry included: {seconds:.1f} s")


async def test_a_not_equal_constraint_lands_on_the_other_worker(cluster: Cluster):
    server, seconds = await cluster.launch(OTHER_USER, constraints=["node.role == worker",
                                                                    "node.labels.xjh.gpu != true"])
    launched[OTHER_USER] = server
    assert cluster.notebook_node(OTHER_USER, server) == "w2"
    tokens[OTHER_USER] = await cluster.token(OTHER_USER)
    assert wait_for(lambda: cluster.notebook_answers(OTHER_USER, server, tokens[OTHER_USER]), 60,
                    "the w2 notebook to answer through the proxy")
    figure(f"launch to ready on worker w2, first pull from the registry included: {seconds:.1f} s")


async def test_launch_on_a_worker_against_on_a_manager(cluster: Cluster):
    """Both with the image already on the node: the figure is the launch itself, across nodes or not."""
    manager = next(n for n in ("m1", "m2") if n != cluster.hub_node())
    api = api_of(manager, timeout=300)
    started = time.monotonic()
    try:
        api.pull(cluster.image)
    finally:
        api.close()
    pull = time.monotonic() - started
    times = {}
    async with cluster.plugin() as plugin:
        for user, node in (("bob", "w2"), ("carol", manager)):
            server, times[node] = await cluster.launch(user, constraints=[f"node.labels.xjh.node == {node}"])
            assert cluster.notebook_node(user, server) == node
            await plugin.stop_server(user, server)
            await plugin.wait_gone(user, server, timeout=60)
    figure(f"pull of the notebook image from the registry onto {manager}: {pull:.1f} s")
    figure(f"launch to ready, image present: worker w2 {times['w2']:.1f} s, manager {manager} "
           f"{times[manager]:.1f} s, ratio worker/manager {times['w2'] / times[manager]:.2f}")


def test_console_logs_of_a_worker_notebook_and_stats_through_node_engines(cluster: Cluster):
    user, server = GPU_USER, launched[GPU_USER]
    done = cluster.console("logs", f"{user}/{server}", "--tail", "200")
    assert done.returncode == 0, done.stderr
    assert "Jupyter" in done.stdout or "jupyter" in done.stdout, done.stdout[-2000:]

    access = DockerAccess(socket_of("m1"), stack="xjc", network="xjc-network",
                          node_engines={cluster.node_ids["w1"]: socket_of("w1")})
    try:
        def running_task(u: str, s: str):
            name = cluster.notebook_service(u, s)["Spec"]["Name"]
            return next((t for t in access.tasks(name, desired_running=True) if t.state == "running"), None)

        on_w1 = wait_for(lambda: running_task(user, server), 30, "the GPU notebook's task")
        stats = access.container_stats(on_w1)
        assert stats.unavailable_reason == "" and stats.mem_bytes and stats.mem_bytes > 0, stats
        # CPU % is the difference from the console's previous sample: the second one has it
        wait_for(lambda: access.container_stats(on_w1).cpu_percent is not None, 30, "a CPU figure from w1")
        on_w2 = wait_for(lambda: running_task(OTHER_USER, launched[OTHER_USER]), 30, "the w2 notebook's task")
        stats = access.container_stats(on_w2)
        assert stats.cpu_percent is None and stats.mem_bytes is None
        assert stats.unavailable_reason.startswith("n/a:") and "not reachable" in stats.unavailable_reason, stats
    finally:
        access.close()


def browser_login(cluster: Cluster) -> dict[str, str]:
    """Log in as alice through the hub's form; the session's cookies (name -> value)."""
    with httpx.Client(base_url=cluster.hub_url, timeout=30, follow_redirects=True) as client:
        client.get("/hub/login")
        xsrf = client.cookies.get("_xsrf")
        client.post("/hub/login", data={"username": "alice", "password": "alice-password", "_xsrf": xsrf})
        cookies = {c.name: c.value or "" for c in client.cookies.jar}
    assert "jupyterhub-hub-login" in cookies, cookies.keys()
    return cookies


def session_works(cluster: Cluster, cookies: dict[str, str]) -> bool:
    """The browser's cookies, sent to wherever the hub now runs: /hub/home answers without a login."""
    header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    response = httpx.get(f"{cluster.hub_url}/hub/home", headers={"Cookie": header}, timeout=10)
    return response.status_code == 200 and "/hub/login" not in str(response.url)


async def check_after_move(cluster: Cluster, cookies: dict[str, str], started: float, what: str) -> None:
    hub_seconds = time.monotonic() - started
    async with cluster.plugin() as plugin:
        for user, server in launched.items():
            model = await plugin.get_server(user, server)
            assert model is not None and model.get("ready"), f"{user}/{server} after {what}: {model}"
    hub_url = cluster.hub_url
    wait_for(lambda: answers_everywhere(cluster, hub_url), 60, f"every notebook to answer after {what}")
    notebooks_seconds = time.monotonic() - started
    assert session_works(cluster, cookies), f"the browser session made before {what} no longer works"
    figure(f"{what}: hub answering after {hub_seconds:.1f} s, every notebook answering through it after "
           f"{notebooks_seconds:.1f} s")


async def test_drain_of_the_hubs_manager_keeps_users_servers_and_sessions(cluster: Cluster):
    cookies = browser_login(cluster)
    assert session_works(cluster, cookies)
    before = cluster.wait_hub()
    api = cluster.manager()
    node_id = cluster.node_ids[before]
    try:
        spec = api.inspect_node(node_id)
        started = time.monotonic()
        api.update_node(node_id, spec["Version"]["Index"], {**spec["Spec"], "Availability": "drain"})
        after = cluster.wait_hub(180, not_on=before)
        assert after in MANAGERS and after != before
        await check_after_move(cluster, cookies, started, f"drain of {before} (hub now on {after})")
    finally:
        spec = api.inspect_node(node_id)
        api.update_node(node_id, spec["Version"]["Index"], {**spec["Spec"], "Availability": "active"})
        api.close()


async def test_a_lost_manager_keeps_quorum_users_servers_and_sessions(cluster: Cluster):
    cookies = browser_login(cluster)
    before = cluster.wait_hub()
    started = time.monotonic()
    cluster.stop_node(before)
    try:
        after = cluster.wait_hub(240, not_on=before)
        api = cluster.manager()  # a remaining manager still answers swarm calls: quorum (2 of 3)
        try:
            nodes = {cluster.label_of(n["ID"]): n for n in api.nodes()}
        finally:
            api.close()
        assert nodes[before]["Status"]["State"] == "down"
        await check_after_move(cluster, cookies, started, f"manager {before} lost (hub now on {after})")
    finally:
        cluster.start_node(before)


async def test_a_lost_worker_shows_in_the_console_and_the_next_start_runs_elsewhere(cluster: Cluster):
    user, server = OTHER_USER, launched[OTHER_USER]
    assert cluster.notebook_node(user, server) == "w2"
    service = cluster.notebook_service(user, server)["Spec"]["Name"]
    cluster.stop_node("w2")
    try:
        access = DockerAccess(socket_of(next(n for n in MANAGERS if n not in cluster.stopped)), stack="xjc",
                              network="xjc-network")
        try:
            def w2_down():
                return next((n for n in access.nodes() if n.id == cluster.node_ids["w2"] and n.state == "down"),
                            None)

            wait_for(w2_down, 60, "the console to show w2 down")
            # the task on the lost node, as the console lists it; swarm's replacement waits for a node its
            # placement allows (w2 only), so none runs anywhere else
            tasks = access.tasks(service)
            on_w2 = [t for t in tasks if t.node_id == cluster.node_ids["w2"]]
            assert on_w2, tasks
            assert not [t for t in tasks if t.node_id != cluster.node_ids["w2"] and t.state == "running"], tasks
            print(f"\n[worker lost] tasks shown: {[(t.node_name or '-', t.state, t.desired_state) for t in tasks]}")
        finally:
            access.close()

        async with cluster.plugin() as plugin:
            async def not_running() -> bool:
                return await plugin.get_server(user, server) is None

            deadline = time.monotonic() + 120
            while not await not_running():
                assert time.monotonic() < deadline, "the hub still reports the server on the lost worker running"
                await __import__("asyncio").sleep(1)
        # XNAT's next start of the same server, with a placement the remaining worker meets
        again, seconds = await cluster.launch(user, server=server, constraints=["node.role == worker"])
        assert cluster.notebook_node(user, again) == "w1"
        assert wait_for(lambda: cluster.notebook_answers(user, again, tokens[user]), 60,
                        "the restarted notebook to answer")
        figure(f"worker w2 lost: next start of {user}/{server} ready on w1 after {seconds:.1f} s")
    finally:
        cluster.start_node("w2")


def push_fresh_tag(cluster: Cluster, what: str) -> str:
    """A tag of the notebook image pushed to the cluster's registry just now, which no node has pulled (the earlier
    tests pull the notebook image wherever they place notebooks)."""
    fresh = f"{cluster.env['XJC_REGISTRY']}/singleuser:{what}-{secrets.token_hex(4)}"
    for args in (["tag", cluster.image, fresh], ["push", fresh], ["rmi", fresh]):
        done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr[-500:]}"
    return fresh


def test_deploy_preflight_asks_the_registry_not_the_managers_engine(cluster: Cluster):
    import docker

    from console.backend import registry

    # The pre-flight passes on m3 for a tag no node holds, because it asks the registry.
    fresh = push_fresh_tag(cluster, "preflight")
    client = docker.DockerClient(base_url=socket_of("m3"), version="1.41", timeout=30)
    try:
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(fresh)
        assert registry.check_image(client, fresh) is None
        missing = registry.check_image(client, f"{cluster.env['XJC_REGISTRY']}/singleuser:no-such-tag")
        assert missing == f"not in the registry {cluster.env['XJC_REGISTRY']}"
    finally:
        client.close()


def notebook_nodes(cluster: Cluster) -> dict[str, str]:
    """The nodes that may run notebooks (ready and active), by their label: label -> node id."""
    api = cluster.manager()
    try:
        nodes = api.nodes()
    finally:
        api.close()
    return {n["Spec"]["Labels"]["xjh.node"]: n["ID"] for n in nodes
            if n["Status"]["State"] == "ready" and n["Spec"]["Availability"] == "active"}


def holds(node: str, image: str) -> bool:
    api = api_of(node)
    try:
        return any(image in (i.get("RepoTags") or []) for i in api.images())
    finally:
        api.close()


def named_ids(names: list[str] | tuple[str, ...]) -> set[str]:
    """The node ids in a pull report's names: every cluster node has this machine's hostname, so the report
    names each `hostname (id)`."""
    matches = [re.fullmatch(r".+ \(([0-9a-z]{12})\)", name) for name in names]
    ids = {m.group(1) for m in matches if m}
    assert len(ids) == len(names), names
    return ids


def test_images_pull_puts_a_fresh_tag_on_every_notebook_node(cluster: Cluster, tmp_path: Path):
    """`xnat-jh-console images pull`, then the backend call the console's action makes (Nodes, `P`), each with a
    tag no node holds; afterwards every node that may run notebooks holds it, and the report names them."""
    from console.backend.live import LiveBackend
    from console.backend.models import PullUpdate
    from console.config import ConsoleConfig

    # both workers (w2 may still be coming back from the lost-worker test)
    def with_both_workers() -> dict[str, str] | None:
        found = notebook_nodes(cluster)
        return found if {"w1", "w2"} <= set(found) else None

    nodes = wait_for(with_both_workers, 120, "both workers ready and active")
    assert nodes is not None and len(nodes) >= 3, nodes
    expected_ids = {node_id[:12] for node_id in nodes.values()}
    engines = {node_id: socket_of(label) for label, node_id in nodes.items()}
    by_cli, by_backend = push_fresh_tag(cluster, "pull-cli"), push_fresh_tag(cluster, "pull-tui")
    assert not any(holds(label, image) for label in nodes for image in (by_cli, by_backend))

    config = tmp_path / "console.toml"
    config.write_text("[node_engines]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in engines.items()))
    started = time.monotonic()
    done = cluster.console("--config", str(config), "images", "pull", by_cli, timeout=300)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    summary = next(line for line in done.stdout.splitlines() if line.startswith(f"{by_cli}: on "))
    assert named_ids(summary.removeprefix(f"{by_cli}: on ").split(", ")) == expected_ids, summary
    assert all(holds(label, by_cli) for label in nodes), done.stdout[-2000:]
    figure(f"images pull (CLI) of a fresh tag onto {len(nodes)} nodes at once (layers: as earlier tests left them): "
           f"{seconds:.1f} s")

    backend = LiveBackend(ConsoleConfig(docker_host=socket_of("m1"), stack="xjc", network="xjc-network",
                                        node_engines=engines, audit_log=str(tmp_path / "audit.log")))
    updates: list[PullUpdate] = []
    try:
        plan = backend.pull_plan([by_backend])
        assert plan.images == (by_backend,) and named_ids(plan.nodes) == expected_ids
        started = time.monotonic()
        result = backend.pull_images(list(plan.images), updates.append)
        seconds = time.monotonic() - started
    finally:
        asyncio.run(backend.aclose())
    assert result.ok, result.detail
    assert [h.image for h in result.holders] == [by_backend] and named_ids(result.holders[0].nodes) == expected_ids
    pulled = [u.node for u in updates if u.state == "pulled"]
    assert sorted(pulled) == sorted(plan.nodes), [u.describe() for u in updates]  # pulled on each, none skipped
    assert all(holds(label, by_backend) for label in nodes)
    assert backend.audit.entries()[-1]["action"] == "pull" and backend.audit.entries()[-1]["outcome"] == "ok"
    figure(f"images pull (the console's action) of another fresh tag onto {len(nodes)} nodes, every layer present: "
           f"{seconds:.1f} s")


def test_zz_down_leaves_nothing(cluster: Cluster):
    started = time.monotonic()
    cluster_sh("down", timeout=300)
    figure(f"scripts/cluster.sh down: {time.monotonic() - started:.1f} s")
    assert not STATE_DIR.exists()
    assert not Path("/etc/docker/certs.d/10.98.0.1:5000").exists()
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not re.search(r"^xjc-", namespaces, re.M), namespaces
    assert subprocess.run(["ip", "link", "show", "xjch0"], capture_output=True).returncode != 0
    ours = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if str(STATE_DIR) in (proc / "cmdline").read_bytes().decode(errors="replace"):
                ours.append(proc.name)
        except OSError:
            pass
    assert not ours, f"processes left: {ours}"
    # no container process in the engines' cgroups, and no stand-in listening
    left = [p for p in Path("/sys/fs/cgroup/pids").glob("xjc-*/*/cgroup.procs") if p.read_text().strip()]
    assert not left, f"container processes left in {left}"
    with pytest.raises(httpx.HTTPError):
        httpx.get(cluster.env["XJC_STANDIN_CONTROL"], timeout=2)
    mounts = Path("/proc/self/mounts").read_text()
    assert str(STATE_DIR) not in mounts
    for address in ADDRESSES.values():
        assert subprocess.run(["ip", "route", "get", address], capture_output=True, text=True).stdout.find(
            "xjch0") < 0
    assert os.path.exists("/var/run/docker.sock")  # the shared engine's socket: untouched
