"""`python -m console.backend.stack deploy|stop|secrets`: the stack's logic as a script (scripts/demo.sh)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import docker
import docker.errors

from console.backend.stack.deploy import deploy
from console.backend.stack.engine import (
    _short,
    write_secret_files,
)
from console.backend.stack.settings import (
    REPO_STACK_FILE,
    STACK_NAME,
    StackError,
    StackSettings,
)
from console.backend.stack.stop import stop
from console.config import ConfigError, read_secret_file


def _read_token(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return read_secret_file(path, "token file", check_private=False)
    except ConfigError as e:
        raise StackError(str(e)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m console.backend.stack",
        description="Deploy or stop the xnat-jupyterhub stack. Stack variables (JH_XNAT_URL, JH_NETWORK, JH_PORT, "
        "JH_IMAGE, ...) come from the environment, as for `docker stack deploy`.",
    )
    parser.add_argument("--stack-file", type=Path, help=f"default: $JH_STACK_FILE or {REPO_STACK_FILE}")
    parser.add_argument("--stack-name", help=f"default: $JH_STACK_NAME or {STACK_NAME}")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (default 120)")
    sub = parser.add_subparsers(dest="command", required=True)
    dep = sub.add_parser("deploy", help="pre-flight checks, docker stack deploy, wait until the hub answers")
    dep.add_argument("--secrets-dir", type=Path, help="create missing Docker secrets from files here (demo)")
    stp = sub.add_parser("stop", help="stop every server, remove notebook services, docker stack rm")
    stp.add_argument("--token-file", default=os.environ.get("JH_CONSOLE_TOKEN_FILE"),
                     help="file holding a hub token that may stop servers (default: $JH_CONSOLE_TOKEN_FILE)")
    stp.add_argument("--remove-data", action="store_true", help="also remove the hub's volume (database)")
    stp.add_argument("--remove-secrets", action="store_true", help="also remove the stack's Docker secrets")
    sec = sub.add_parser("secrets", help="write a random value for each missing secret file (0600)")
    sec.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)

    settings = StackSettings.from_env(stack_file=args.stack_file, stack_name=args.stack_name, timeout=args.timeout)
    try:
        if args.command == "secrets":
            for path in write_secret_files(args.dir, settings.secret_names):
                print(f"wrote {path}")
            return 0
        if args.command == "deploy":
            settings = StackSettings.from_env(
                stack_file=args.stack_file, stack_name=args.stack_name, timeout=args.timeout,
                secrets_dir=args.secrets_dir,
            )
            for line in deploy(settings):
                print(line, flush=True)
            return 0
        result = stop(
            settings,
            token=_read_token(args.token_file),
            remove_data=args.remove_data,
            remove_secrets=args.remove_secrets,
            progress=lambda line: print(line, flush=True),
        )
    except StackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except docker.errors.DockerException as e:
        print(f"error: Docker: {_short(e)}", file=sys.stderr)
        return 1
    for item in result.removed:
        print(f"removed {item}")
    print(("stopped: " if result.ok else "stopped with problems: ") + result.detail)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
