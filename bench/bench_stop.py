"""Stop: from 20 running notebook servers to nothing of the stack left (servers, notebook services, hub service,
network). Ours (`console.backend.stack.stop`: every server stopped through the hub API, leftovers removed,
`docker stack rm`, network gone) against the by-hand way, `docker service rm` of every notebook service plus
`docker stack rm`, waiting for the network to go, in the same run.

    .venv/bin/python -m bench.bench_stop [--servers 20]

Goal: ours ≤ 10 s with 20 servers. Needs a Docker engine in swarm mode (scripts/engine.sh up).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from bench.flows import launch_and_wait
from console.backend.stack import POLL, _run_docker, notebook_services, stop
from hub.standin import options as xnat_options
from hub.standin.container import remove_standin
from tests.helpers.live import demo_stack

GOAL_SECONDS = 10.0
STACK = "xjh-bench"


async def start_servers(stack, count: int) -> None:
    users = [f"bench{i:02d}" for i in range(count)]
    async with stack.plugin() as plugin:
        servers = []
        for user in users:
            server = xnat_options.event_tracking_id()
            stack.store_options(user, server)
            await plugin.ensure_user(user)
            servers.append((user, server))
        await asyncio.gather(*(launch_and_wait(plugin, user, server, interval=0.5) for user, server in servers))


def network_exists(name: str, env) -> bool:
    return _run_docker(["network", "inspect", name], env, 30).returncode == 0


def by_hand(settings) -> float:
    started = time.perf_counter()
    names = [s.name for s in notebook_services(_client(), settings.network)]
    if names:
        _run_docker(["service", "rm", *names], settings.environment, 60)
    _run_docker(["stack", "rm", settings.stack_name], settings.environment, 60)
    deadline = time.monotonic() + 120
    while network_exists(settings.network, settings.environment):
        if time.monotonic() > deadline:
            sys.exit(f"network {settings.network} was still in use 120 s after docker stack rm")
        _run_docker(["network", "rm", settings.network], settings.environment, 30)
        time.sleep(POLL)
    return time.perf_counter() - started


def ours(stack) -> float:
    started = time.perf_counter()
    result = stop(stack.settings, token=stack.console_token)
    seconds = time.perf_counter() - started
    if not result.ok:
        sys.exit(f"stop reported problems: {result.detail}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=20)
    args = parser.parse_args()
    results: dict[str, float] = {}
    with demo_stack(STACK) as stack:
        for name in ("ours", "by hand"):
            if name != "ours":
                stack.demo("up")  # images built already: the stack, its secrets and the stand-in again
            print(f"{name}: starting {args.servers} servers", flush=True)
            asyncio.run(start_servers(stack, args.servers))
            running = {s.name for s in notebook_services(_client(), stack.settings.network)}
            assert len(running) == args.servers, f"{len(running)} notebook services run, not {args.servers}"
            remove_standin(stack.env["XJH_STANDIN_NAME"])  # not part of the stack: XNAT stays up when JupyterHub stops
            results[name] = ours(stack) if name == "ours" else by_hand(stack.settings)
            left = running & set(_run_docker(["service", "ls", "--format", "{{.Name}}"],
                                             stack.settings.environment, 30).stdout.split())
            assert not left and not network_exists(stack.settings.network, stack.settings.environment), \
                f"{name}: something was left ({len(left)} notebook services)"
            print(f"{name}: {args.servers} servers -> nothing left in {results[name]:.2f} s", flush=True)
    ours_s, hand_s = results["ours"], results["by hand"]
    print()
    print(f"stop, {args.servers} running servers -> nothing of {STACK} left")
    print(f"  ours (through the hub, then leftovers, stack rm, network): {ours_s:5.2f} s")
    print(f"  by hand (docker service rm + docker stack rm, network):    {hand_s:5.2f} s")
    print(f"  ratio ours/by hand: {ours_s / hand_s:.2f}x   goal: ours <= {GOAL_SECONDS:g} s -> "
          f"{'met' if ours_s <= GOAL_SECONDS else 'NOT met'}")
    return 0


def _client():
    from console.backend.stack import docker_client

    return docker_client()


if __name__ == "__main__":
    sys.exit(main())
