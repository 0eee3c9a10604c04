"""Launch overhead: an XNAT-style launch to `ready` on our hub (XnatSwarmSpawner: the launch options fetched from
XNAT and validated before the service is built) against a plain dockerspawner SwarmSpawner spawn of the same
image on a second hub beside it (same image, network, endpoint mode and user), in the same run, alternating.

    .venv/bin/python -m bench.bench_launch [--rounds 5]

Both are timed the way XNAT sees a launch: from the start request to the server model's `ready: true`, polled
every 50 ms. Goal: ours / plain ≤ 1.05. Needs a Docker engine in swarm mode (scripts/engine.sh up).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import httpx

from bench.flows import launch_and_wait, median, stop_and_wait
from console.backend.stack import POLL, _run_docker
from hub.standin import options as xnat_options
from tests.helpers.live import HUB_IMAGE, REPO, SINGLEUSER_IMAGE, LiveStack, demo_stack
from tests.helpers.waiting import free_port

GOAL_RATIO = 1.05
PLAIN_HUB = "xjh-bench-plainhub"


def start_plain_hub(stack: LiveStack) -> str:
    """The baseline hub as a service on the bench network; returns its hub API URL once it answers."""
    env, network, secrets = stack.settings.environment, stack.settings.network, stack.env["JH_SECRETS_PREFIX"]
    port = free_port("0.0.0.0")
    result = _run_docker([
        # --hostname: the proxy reaches the hub by this name before the task is healthy, and so listed in DNS
        "service", "create", "--detach", "--quiet", "--name", PLAIN_HUB, "--hostname", PLAIN_HUB, "--network", network,
        "--endpoint-mode", "dnsrr", "--publish", f"mode=host,target=8000,published={port}",
        "--constraint", "node.role==manager",
        "--mount", "type=bind,src=/var/run/docker.sock,dst=/var/run/docker.sock",
        "--mount", f"type=bind,src={REPO / 'bench' / 'plain_swarmspawner_config.py'},dst=/srv/plain_config.py,ro",
        "--secret", f"source={secrets}_xnat_service_token,target=xnat_service_token",
        "--secret", f"source={secrets}_xnat_password,target=xnat_password",
        "--env", "JH_XNAT_SERVICE_TOKEN_FILE=/run/secrets/xnat_service_token",
        "--env", "JH_XNAT_PASSWORD_FILE=/run/secrets/xnat_password",
        "--env", f"JH_XNAT_URL=http://{stack.env['XJH_STANDIN_NAME']}:8080",
        "--env", f"JH_NETWORK={network}",
        "--env", f"JH_HUB_CONNECT_URL=http://{PLAIN_HUB}:8081",
        "--env", f"BENCH_NOTEBOOK_IMAGE={SINGLEUSER_IMAGE}",
        HUB_IMAGE, "jupyterhub", "-f", "/srv/plain_config.py", "--JupyterHub.cleanup_servers=False",
    ], env, 60)
    if result.returncode != 0:
        sys.exit(f"could not start the baseline hub: {result.stderr}")
    url = f"http://127.0.0.1:{port}/jupyterhub"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/hub/health", timeout=2).status_code == 200:
                return f"{url}/hub/api"
        except httpx.HTTPError:
            pass
        time.sleep(POLL)
    logs = _run_docker(["service", "logs", "--tail", "15", PLAIN_HUB], env, 30)
    sys.exit(f"the baseline hub did not answer within 120 s; its last lines:\n{logs.stdout}{logs.stderr}")


async def rounds(stack, plain_api: str, count: int) -> tuple[list[float], list[float]]:
    ours: list[float] = []
    plain: list[float] = []
    async with stack.plugin() as our_hub, stack.plugin(plain_api) as plain_hub:
        await our_hub.ensure_user("benchx")
        await plain_hub.ensure_user("benchp")
        for round_number in range(count + 1):  # round 0 warms both up and is not counted
            server = xnat_options.event_tracking_id()
            stack.store_options("benchx", server)
            seconds = await launch_and_wait(our_hub, "benchx", server)
            await stop_and_wait(our_hub, "benchx", server)
            plain_server = xnat_options.event_tracking_id()
            plain_seconds = await launch_and_wait(plain_hub, "benchp", plain_server)
            await stop_and_wait(plain_hub, "benchp", plain_server)
            if round_number:
                ours.append(seconds)
                plain.append(plain_seconds)
                print(f"round {round_number}: ours {seconds:5.2f} s   plain {plain_seconds:5.2f} s", flush=True)
    return ours, plain


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with demo_stack("xjh-bench") as stack:
        env = stack.settings.environment
        try:
            plain_api = start_plain_hub(stack)
            ours, plain = asyncio.run(rounds(stack, plain_api, args.rounds))
        finally:
            _run_docker(["service", "rm", PLAIN_HUB], env, 60)
    ours_s, plain_s = median(ours), median(plain)
    ratio = ours_s / plain_s
    print()
    print(f"launch to ready (median of {args.rounds})")
    print(f"  ours: XNAT-style launch, options fetched from XNAT (XnatSwarmSpawner): {ours_s:5.2f} s")
    print(f"  plain dockerspawner SwarmSpawner, same image:                          {plain_s:5.2f} s")
    print(f"  ratio ours/plain: {ratio:.3f}x   goal <= {GOAL_RATIO}x -> {'met' if ratio <= GOAL_RATIO else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
