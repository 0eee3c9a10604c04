"""Command-line entry point: `xnat-jh-console` opens the TUI; subcommands are its scriptable views.

    xnat-jh-console [global options] [status | servers | services | logs | check | deploy | stop | server ...]

Exit codes (for cron and scripts):
    0  it worked, everything healthy
    1  it ran but something failed or is degraded (a failed step, a failed server, an action that failed)
    2  usage or configuration error (bad flag, bad config file, missing token, unsafe file permissions)
    3  unreachable: the Docker engine or the hub could not be reached
  130  interrupted (Ctrl-C)
Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from console import __version__
from console.config import ConfigError, ConsoleConfig, load_config
from console.formatting import SERVER_COLUMNS, age, print_json, server_cells, table, to_jsonable

OK, FAILED, USAGE, UNREACHABLE, INTERRUPTED = 0, 1, 2, 3, 130
SINCE = re.compile(r"^(\d+)([smhd])$")


class CliError(Exception):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xnat-jh-console",
        description="Operator's console for XNAT's JupyterHub on Docker Swarm. "
        "With no command it opens the interactive console.",
        epilog="Exit codes: 0 ok, 1 failed or degraded, 2 usage/config error, 3 engine or hub unreachable.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--read-only", action="store_true", default=None, help="refuse every action that changes something"
    )
    parser.add_argument(
        "--config", metavar="PATH", help="config file (default: $XDG_CONFIG_HOME/xnat-jh-console/config.toml)"
    )
    parser.add_argument("--hub-url", metavar="URL", help="hub API URL, e.g. http://127.0.0.1:8000/jupyterhub/hub/api")
    parser.add_argument("--token-file", metavar="PATH", help="file holding the console's hub token (mode 0600)")
    parser.add_argument("--xnat-url", metavar="URL")
    parser.add_argument("--xnat-username", metavar="NAME")
    parser.add_argument("--xnat-password-file", metavar="PATH")
    parser.add_argument(
        "--docker-host", metavar="URL", help="unix://, tcp:// or ssh:// (default: DOCKER_HOST, docker context)"
    )
    parser.add_argument("--ca-bundle", metavar="PATH", help="CA bundle for the hub and XNAT")
    parser.add_argument("--timeout", metavar="SECONDS", help="timeout of every call (default 10)")
    parser.add_argument("--stack", metavar="NAME", help="stack name (default xnat-jupyterhub)")

    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    status = sub.add_parser("status", help="health of engine, swarm, hub and XNAT, and counts")
    status.add_argument("--json", action="store_true")
    status.add_argument("--no-xnat", action="store_true", help="skip the XNAT check")

    servers = sub.add_parser("servers", help="hub servers joined with their swarm services")
    servers.add_argument("--json", action="store_true")
    servers.add_argument("--all", action="store_true", help="include stopped named servers")
    servers.add_argument("--no-stats", action="store_true", help="skip the containers' CPU/memory")

    services = sub.add_parser("services", help="the stack's services and every notebook service (or one's tasks)")
    services.add_argument("service", nargs="?", metavar="SERVICE|USER[/SERVER]", help="show this service's tasks")
    services.add_argument("--json", action="store_true")

    logs = sub.add_parser("logs", help="service logs of the hub or a user's notebook service")
    logs.add_argument("target", metavar="hub|SERVICE|USER[/SERVER]")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--since", metavar="DURATION", help="1m, 5m, 15m, 1h, ... or all")
    logs.add_argument("--tail", metavar="N", type=int, help="last N lines of each task")
    logs.add_argument("-t", "--timestamps", action="store_true")
    logs.add_argument("--json", action="store_true", help="one JSON object per line")

    check = sub.add_parser("check", help="step-by-step XNAT connectivity check")
    check.add_argument("--json", action="store_true")
    check.add_argument("--hub-network", action="store_true", help="also run it from inside the hub's network")

    deploy = sub.add_parser("deploy", help="check and deploy the stack")
    deploy.add_argument("--json", action="store_true")
    stop = sub.add_parser("stop", help="stop every server and remove the stack")
    stop.add_argument("--yes", action="store_true", help="do not ask for the stack's name")
    stop.add_argument("--json", action="store_true")

    server = sub.add_parser("server", help="stop, restart or delete one server")
    server.add_argument("action", choices=["stop", "restart", "delete"])
    server.add_argument("target", metavar="USER[/SERVER]")
    server.add_argument("--json", action="store_true")

    images = sub.add_parser("images", help="notebook images on every node that may run notebooks")
    images.add_argument("action", choices=["pull"])
    images.add_argument("image", nargs="*", help="default: the images of the notebook services running now")
    return parser


# -- output ---------------------------------------------------------------------------------------


def parse_since(text: str | None) -> datetime | None:
    if text is None or text == "all":
        return None
    m = SINCE.match(text)
    if not m:
        raise CliError(f"--since must look like 30s, 5m, 1h, 2d or all, got {text[:20]!r}", USAGE)
    seconds = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return datetime.now(UTC) - timedelta(seconds=seconds)


def split_target(target: str) -> tuple[str, str]:
    user, _, server = target.partition("/")
    if not user or "/" in server:
        raise CliError(f"expected USER or USER/SERVER, got {target[:60]!r}", USAGE)
    return user, server


# -- commands -------------------------------------------------------------------------------------


def _need_token(config: ConsoleConfig) -> None:
    if not config.token:
        raise CliError(
            "no hub token: set JH_CONSOLE_TOKEN or JH_CONSOLE_TOKEN_FILE, token_file in the config file, "
            "or --token-file",
            USAGE,
        )


async def cmd_status(backend, config: ConsoleConfig, args) -> int:
    from console.backend.health import xnat_health
    from console.backend.models import ComponentHealth, Health

    async def xnat_steps():
        return [s async for s in backend.xnat_check()]

    # XNAT is checked while the engine and hub are asked: `status` waits for the slowest, not the sum.
    xnat = asyncio.ensure_future(xnat_steps()) if not args.no_xnat and config.xnat_url else None
    try:
        if not config.token:
            overview_components = list(await asyncio.to_thread(backend.docker_health))
            overview_components.append(ComponentHealth("hub", Health.UNKNOWN, "no hub token configured"))
            overview = None
        else:
            overview = await backend.overview()
            overview_components = list(overview.components)
    except BaseException:
        if xnat is not None:
            xnat.cancel()
        raise
    if not args.no_xnat:
        if xnat is None:
            overview_components.append(ComponentHealth("xnat", Health.UNKNOWN, "JH_XNAT_URL / xnat_url not set"))
        else:
            overview_components.append(xnat_health(await xnat))
    if args.json:
        data = {"components": overview_components}
        if overview:
            data.update(
                {
                    k: getattr(overview, k)
                    for k in (
                        "users",
                        "running_servers",
                        "pending_servers",
                        "failed_tasks",
                        "nodes",
                        "managers",
                        "hub_version",
                    )
                }
            )
        print_json(data)
    else:
        print(
            table(["COMPONENT", "HEALTH", "DETAIL"], [(c.name, c.health.value, c.detail) for c in overview_components])
        )
        if overview:
            print()
            print(
                f"users {overview.users}  running {overview.running_servers}  pending {overview.pending_servers}  "
                f"failed tasks {overview.failed_tasks}  nodes {overview.nodes} ({overview.managers} manager(s))"
            )
    by_name = {c.name: c.health for c in overview_components}
    if by_name.get("engine") == Health.DOWN or by_name.get("hub") == Health.DOWN:
        return UNREACHABLE
    if any(c.health != Health.OK for c in overview_components):
        return FAILED
    if overview and overview.failed_tasks:
        return FAILED
    return OK


async def cmd_servers(backend, config: ConsoleConfig, args) -> int:
    _need_token(config)
    rows = await backend.hub_servers(include_stopped=args.all, stats=not args.no_stats)
    if any(r.stats and r.stats.cpu_percent is None and not r.stats.unavailable_reason for r in rows):
        await asyncio.sleep(1.0)  # CPU % is the change between two samples: take the second one
        rows = await backend.hub_servers(include_stopped=args.all, stats=True)
    if args.json:
        print_json(rows)
    else:
        now = datetime.now(UTC)
        print(table([title for _, title in SERVER_COLUMNS], [[c.text for c in server_cells(r, now)] for r in rows]))
        unavailable = sorted({r.stats.unavailable_reason for r in rows if r.stats and r.stats.unavailable_reason})
        for reason in unavailable:
            print(reason, file=sys.stderr)
    return FAILED if any(r.state == "failed" for r in rows) else OK


async def cmd_services(backend, config: ConsoleConfig, args) -> int:
    now = datetime.now(UTC)
    if args.service:
        tasks = await asyncio.to_thread(backend.tasks, args.service)
        if args.json:
            print_json(tasks)
        else:
            print(
                table(
                    ["TASK", "SLOT", "NODE", "STATE", "DESIRED", "AGE", "ERROR"],
                    [
                        (
                            t.id[:12],
                            t.slot or "-",
                            t.node_name or "-",
                            t.state,
                            t.desired_state,
                            age(t.timestamp, now),
                            t.error or t.message,
                        )
                        for t in tasks
                    ],
                )
            )
        return FAILED if any(t.state in ("failed", "rejected") and t.desired_state == "running" for t in tasks) else OK
    services = await asyncio.to_thread(backend.services)
    if args.json:
        print_json(services)
    else:
        print(
            table(
                ["NAME", "MODE", "REPLICAS", "IMAGE", "UPDATED", "USER"],
                [
                    (
                        s.name,
                        s.mode,
                        f"{s.replicas_running}/{s.replicas_desired}",
                        s.image,
                        age(s.updated_at, now),
                        (s.notebook_user + (f"/{s.notebook_server}" if s.notebook_server else "")) or "-",
                    )
                    for s in services
                ],
            )
        )
    return FAILED if any(s.replicas_running < s.replicas_desired for s in services) else OK


def cmd_logs(backend, config: ConsoleConfig, args) -> int:
    since = parse_since(args.since)
    if args.tail is not None and args.tail < 0:
        raise CliError("--tail must be 0 or more", USAGE)
    stream = backend.service_logs(
        args.target, follow=args.follow, since=since, tail=args.tail, timestamps=args.timestamps
    )
    try:
        for line in stream:
            if args.json:
                print(json.dumps(to_jsonable(line), ensure_ascii=False), flush=args.follow)
            else:
                stamp = f"{line.timestamp.isoformat()} " if args.timestamps and line.timestamp else ""
                print(f"{stamp}{line.task} | {line.text}", flush=args.follow)
    finally:
        stream.close()
    return OK


async def cmd_check(backend, config: ConsoleConfig, args) -> int:
    from console.backend.models import CheckStatus

    steps = []
    async for step in backend.xnat_check():
        steps.append(step)
        if not args.json:
            _print_step(step)
    if args.hub_network:
        inside = await backend.xnat_check_in_hub_network()
        steps += inside
        if not args.json:
            for step in inside:
                _print_step(step)
    if args.json:
        print_json(steps)
    failed = [s for s in steps if s.status == CheckStatus.FAIL]
    if failed and failed[0].name in ("DNS", "TCP"):
        return UNREACHABLE
    return FAILED if failed else OK


def _print_step(step) -> None:
    hint = f"\n      hint: {step.hint}" if step.hint and step.status.value in ("fail", "warn") else ""
    print(f"{step.status.value.upper():<5} {step.name:<28} {step.reason}{hint}", flush=True)


def cmd_deploy(backend, config: ConsoleConfig, args) -> int:
    def show(line: str) -> None:
        print(json.dumps({"progress": line}) if args.json else line, flush=True)

    result = backend.deploy(progress=show)
    _print_result(result, args.json)
    return OK if result.ok else FAILED


def cmd_stop(backend, config: ConsoleConfig, args) -> int:
    if not args.yes and not backend.read_only:
        if not sys.stdin.isatty():
            raise CliError(f"refusing to stop {config.stack} without --yes (stdin is not a terminal to ask)", USAGE)
        answer = input(f"This stops every server and removes the stack. Type its name ({config.stack}) to go on: ")
        if answer.strip() != config.stack:
            print("not stopped: the name did not match", file=sys.stderr)
            return FAILED
    result = backend.stop_stack(progress=None if args.json else lambda line: print(line, flush=True))
    _print_result(result, args.json)
    return OK if result.ok else FAILED


def _print_result(result, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    detail = f" ({result.detail})" if result.detail else ""
    print(f"{result.action} {result.target}: {result.outcome.value if result.ok else result.outcome.value.upper()}"
          f"{detail}")
    for item in result.removed:
        print(f"  removed {item}")


async def cmd_server(backend, config: ConsoleConfig, args) -> int:
    _need_token(config)
    user, server = split_target(args.target)
    if args.action == "stop":
        result = await backend.stop_server(user, server)
    elif args.action == "delete":
        result = await backend.delete_server(user, server)
    else:
        result = await backend.restart_server(
            user, server, progress=None if args.json else lambda message: print(message, flush=True)
        )
    _print_result(result, args.json)
    return OK if result.ok else FAILED


# -- main -----------------------------------------------------------------------------------------


def _overrides(args) -> dict[str, Any]:
    keys = {
        "hub_url": args.hub_url, "token_file": args.token_file, "xnat_url": args.xnat_url,
        "xnat_username": args.xnat_username, "xnat_password_file": args.xnat_password_file,
        "docker_host": args.docker_host, "ca_bundle": args.ca_bundle, "timeout": args.timeout,
        "read_only": args.read_only, "stack": args.stack,
    }  # fmt: skip
    return {k: v for k, v in keys.items() if v is not None}


async def _run_async(command, backend, config, args) -> int:
    try:
        return await command(backend, config, args)
    finally:
        await backend.aclose()


def cmd_images(backend, config: ConsoleConfig, args) -> int:
    """Through the same backend calls as the console's action (Nodes screen, `P`)."""
    if backend.read_only:
        raise CliError("read-only: pulling images changes the nodes", FAILED)
    plan = backend.pull_plan(args.image)
    if not plan.images:
        raise CliError("no notebook service runs now, so no image to pull: name the images", USAGE)
    result = backend.pull_images(list(plan.images), lambda update: print(update.describe(), flush=True))
    for held in result.holders:
        print(f"{held.image}: on {', '.join(held.nodes) or 'no node'}")
    if not result.ok:
        print(f"xnat-jh-console: pull {result.outcome.value}: {result.detail}", file=sys.stderr)
    return OK if result.ok else FAILED


def run(args, config: ConsoleConfig) -> int:
    from console.backend.live import LiveBackend

    backend = LiveBackend(config)
    sync_commands = {"logs": cmd_logs, "deploy": cmd_deploy, "stop": cmd_stop, "images": cmd_images}
    async_commands = {
        "status": cmd_status,
        "servers": cmd_servers,
        "services": cmd_services,
        "check": cmd_check,
        "server": cmd_server,
    }
    if args.command in sync_commands:
        try:
            return sync_commands[args.command](backend, config, args)
        finally:
            asyncio.run(backend.aclose())
    return asyncio.run(_run_async(async_commands[args.command], backend, config, args))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, overrides=_overrides(args))
        if args.command is None:
            from console.app import XnatConsoleApp
            from console.backend.live import LiveBackend

            XnatConsoleApp(LiveBackend(config), config).run()
            return OK
        return run(args, config)
    except ConfigError as e:
        print(f"xnat-jh-console: config error: {e}", file=sys.stderr)
        return USAGE
    except CliError as e:
        print(f"xnat-jh-console: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return INTERRUPTED
    except LookupError as e:
        print(f"xnat-jh-console: {e}", file=sys.stderr)
        return FAILED
    except BrokenPipeError:
        return OK
    except ConnectionError as e:
        # HubError / DockerUnavailable: a hub that answered with an error status is a failure, not unreachable.
        status = getattr(e, "status", None)
        print(f"xnat-jh-console: {e}", file=sys.stderr)
        return FAILED if status else UNREACHABLE
    except Exception as e:  # the last guard: a clean line, never a traceback
        print(f"xnat-jh-console: unexpected error: {type(e).__name__}: {e}", file=sys.stderr)
        return FAILED
