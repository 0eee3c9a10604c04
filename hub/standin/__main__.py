"""`python -m hub.standin`: run the XNAT stand-in until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
import sys

from hub.settings import SettingsError, env_secret

from .demo import DEMO_IMAGE, DEMO_USERS, SERVICE_ACCOUNT, seed_demo
from .server import XnatStandin


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m hub.standin", description="An XNAT stand-in for tests and demos.")
    parser.add_argument("--host", default="127.0.0.1", help="address of the XNAT port (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8080, help="XNAT port (default 8080)")
    parser.add_argument("--control-host", default="127.0.0.1",
                        help="address of the control API, which has no authentication (default 127.0.0.1)")
    parser.add_argument("--control-port", type=_port, default=8081, help="control API port (default 8081)")
    parser.add_argument("--seed-demo", action="store_true",
                        help="create the demo users and the 'jupyterhub' service account "
                             "(password from JH_XNAT_PASSWORD or JH_XNAT_PASSWORD_FILE)")
    parser.add_argument("--tls-cert", metavar="PEM", help="serve the XNAT port over HTTPS with this certificate chain")
    parser.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert (0600)")
    parser.add_argument("--demo-image", default=DEMO_IMAGE, help=f"image in the demo user options ({DEMO_IMAGE})")
    return parser.parse_args(argv)


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not args.tls_cert and not args.tls_key:
        return None
    if not (args.tls_cert and args.tls_key):
        raise ValueError("--tls-cert and --tls-key go together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as e:
        raise ValueError(f"cannot load the TLS certificate or key: {getattr(e, 'strerror', None) or e}") from None
    return context


async def serve(args: argparse.Namespace) -> int:
    standin = XnatStandin()
    try:
        ssl_context = _tls_context(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.seed_demo:
        try:
            password = env_secret("JH_XNAT_PASSWORD")
        except SettingsError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if password is None:
            print("error: --seed-demo needs JH_XNAT_PASSWORD or JH_XNAT_PASSWORD_FILE for the "
                  f"{SERVICE_ACCOUNT!r} service account", file=sys.stderr)
            return 2
        seed_demo(standin, password, image=args.demo_image)
    try:
        urls = await standin.start(args.host, args.port, args.control_port, control_host=args.control_host,
                                   ssl_context=ssl_context)
    except OSError as e:
        print(f"error: cannot listen: {e.strerror or e}", file=sys.stderr)
        return 1
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    print(f"XNAT stand-in listening at {urls.xnat}, control API at {urls.control}/_standin/", flush=True)
    if args.seed_demo:
        names = ", ".join(name for name, _, _ in DEMO_USERS)
        print(f"demo users: {names}; service account: {SERVICE_ACCOUNT}", flush=True)
    await stopping.wait()
    await standin.stop()
    print("XNAT stand-in stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
