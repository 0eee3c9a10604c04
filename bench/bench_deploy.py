"""Deploy: from images present to the hub answering /hub/health. Ours (`console.backend.stack.deploy`: pre-flight
checks, `docker stack deploy`, convergence, health) against a bare `docker stack deploy` of the same stack file
followed by polling /hub/health at the same interval, in the same run, alternating.

    .venv/bin/python -m bench.bench_deploy [--rounds 3]

Goal: ours ≤ 10 s. Needs a Docker engine in swarm mode (scripts/engine.sh up); builds the images if needed.
"""

from __future__ import annotations

import argparse
import sys
import time

import httpx

from bench.flows import median
from console.backend.stack import POLL, _run_docker, deploy, stop
from tests.helpers.live import demo_stack

GOAL_SECONDS = 10.0


def hub_answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/hub/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def bare_deploy(settings) -> float:
    started = time.perf_counter()
    result = _run_docker(["stack", "deploy", "--resolve-image", "never", "-c", str(settings.stack_file),
                          settings.stack_name], settings.environment, 120)
    if result.returncode != 0:
        sys.exit(f"docker stack deploy failed: {result.stderr}")
    deadline = time.monotonic() + 180
    while not hub_answers(settings.hub_url):
        if time.monotonic() > deadline:
            sys.exit("the hub did not answer within 180 s")
        time.sleep(POLL)
    return time.perf_counter() - started


def our_deploy(settings) -> float:
    started = time.perf_counter()
    for _line in deploy(settings):
        pass
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ours: list[float] = []
    bare: list[float] = []
    print("scripts/demo.sh up as xjh-bench (builds the images if needed, creates the secrets) ...", flush=True)
    with demo_stack("xjh-bench") as stack:
        settings = stack.settings
        stop(settings, remove_data=True)  # the rounds deploy from here: images present, secrets made, nothing up
        for round_number in range(1, args.rounds + 1):
            for name, runner, results in (("ours", our_deploy, ours), ("bare", bare_deploy, bare)):
                seconds = runner(settings)
                results.append(seconds)
                print(f"round {round_number}: {name:4} {seconds:5.2f} s", flush=True)
                stop(settings, remove_data=True)
    ours_s, bare_s = median(ours), median(bare)
    print()
    print(f"deploy, images present -> hub answering (median of {args.rounds})")
    print(f"  ours (pre-flight + deploy + converge + health): {ours_s:5.2f} s")
    print(f"  bare `docker stack deploy` + health polling:     {bare_s:5.2f} s")
    print(f"  ratio ours/bare: {ours_s / bare_s:.2f}x   goal: ours <= {GOAL_SECONDS:g} s -> "
          f"{'met' if ours_s <= GOAL_SECONDS else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
