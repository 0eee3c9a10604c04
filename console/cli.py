"""Command-line entry point: `xnat-jh-console` opens the TUI; subcommands are its scriptable views."""

from __future__ import annotations

import argparse
import sys

from console import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xnat-jh-console",
        description="Operator's console for XNAT's JupyterHub on Docker Swarm. "
        "With no command it opens the interactive console.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--read-only", action="store_true", help="refuse every action that changes something")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("status", help="health of engine, swarm, hub and XNAT")
    sub.add_parser("servers", help="hub servers joined with their swarm services")
    sub.add_parser("services", help="the stack's services and every notebook service")
    logs = sub.add_parser("logs", help="service logs of the hub or a user's notebook service")
    logs.add_argument("target", metavar="USER[/SERVER]")
    logs.add_argument("-f", "--follow", action="store_true")
    sub.add_parser("check", help="step-by-step XNAT connectivity check")
    sub.add_parser("deploy", help="check and deploy the stack")
    sub.add_parser("stop", help="stop every server and remove the stack")
    server = sub.add_parser("server", help="stop or restart one server")
    server.add_argument("action", choices=["stop", "restart"])
    server.add_argument("target", metavar="USER[/SERVER]")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:
        print("xnat-jh-console: the interactive console is not built yet", file=sys.stderr)
        return 2
    print(f"xnat-jh-console: '{args.command}' is not built yet", file=sys.stderr)
    return 2
