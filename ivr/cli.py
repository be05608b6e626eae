"""The `ivr` command: validate, graph, call and test flows."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from ivr.errors import FlowError
from ivr.flow import flow_files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ivr", description="Programmable IVR engine.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "validate", help="check flow files: every error and warning, with file:line:col"
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="flow files or directories")
    p.set_defaults(run=_validate)

    p = sub.add_parser("graph", help="draw a flow as a Mermaid or Graphviz diagram")
    p.add_argument("flow", type=Path)
    p.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")
    p.set_defaults(run=_graph)

    p = sub.add_parser("call", help="call a flow from the console (type digits, words, or nothing)")
    p.add_argument("flow", type=Path)
    p.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="HOST",
        help="backend host the flow may call (adds to IVR_HTTP_ALLOW)",
    )
    p.add_argument("--caller", default="+15550000000", help="the caller's number")
    p.set_defaults(run=_call)

    p = sub.add_parser("serve", help="run the Twilio webhook server")
    p.add_argument("--host", help="address to listen on (IVR_HOST, default 0.0.0.0)")
    p.add_argument("--port", type=int, help="port (IVR_PORT, default 8080)")
    p.add_argument("--flows", type=Path, help="flows directory (IVR_FLOWS, default flows)")
    p.add_argument("--audio", type=Path, help="prompt recordings (IVR_AUDIO, default audio)")
    p.add_argument("--data", type=Path, help="data directory for SQLite (IVR_DATA, default data)")
    p.add_argument(
        "--sessions", help="sqlite:///path | memory:// | redis://host:port/db (IVR_SESSIONS)"
    )
    p.add_argument("--public-url", help="this server's URL as Twilio calls it (IVR_PUBLIC_URL)")
    p.add_argument(
        "--trust-proxy",
        action="store_true",
        default=None,
        help="take scheme and host from X-Forwarded-Proto/Host (IVR_TRUST_PROXY)",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="do not check Twilio signatures: local development only (IVR_INSECURE)",
    )
    p.add_argument(
        "--no-watch",
        dest="watch",
        action="store_false",
        default=None,
        help="do not reload flows when their files change (SIGHUP still does)",
    )
    p.set_defaults(run=_serve)

    p = sub.add_parser("test", help="run conversation tests (default: flows/tests/*.yaml)")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH")
    p.set_defaults(run=_test)

    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except FlowError as e:
        print(e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _flow_files(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += flow_files(path)
        else:
            files.append(path)
    return files


def _validate(args: argparse.Namespace) -> int:
    from ivr.flow import check_flow

    errors = warnings = 0
    files = _flow_files(args.paths)
    for path in files:
        flow, problems = check_flow(path)
        for problem in problems:
            print(problem)
        errors += sum(p.severity == "error" for p in problems)
        warnings += sum(p.severity == "warning" for p in problems)
        if flow is not None:
            print(f"{path}: ok ({flow.id} version {flow.version}, {len(flow.nodes)} nodes)")
    print(f"{len(files)} file(s): {errors} error(s), {warnings} warning(s)")
    return 1 if errors else 0


def _graph(args: argparse.Namespace) -> int:
    from ivr.flow import load_flow
    from ivr.flow.graph import to_dot, to_mermaid

    flow = load_flow(args.flow)
    print(to_mermaid(flow) if args.format == "mermaid" else to_dot(flow))
    return 0


def _call(args: argparse.Namespace) -> int:
    from ivr.backend import Backend, allowed_hosts
    from ivr.console import call
    from ivr.flow import load_flow

    flow = load_flow(args.flow)
    allow = [*allowed_hosts(), *(urlsplit(f"//{h}").netloc or h for h in args.allow)]

    async def run() -> str:
        backend = Backend(allow)
        try:
            return await call(flow, backend, caller=args.caller)
        finally:
            await backend.close()

    outcome = asyncio.run(run())
    return 0 if outcome in ("contained", "transferred", "abandoned") else 1


def _serve(args: argparse.Namespace) -> int:
    from ivr.config import Config
    from ivr.server import serve

    config = Config.from_env()
    for name in (
        "host",
        "port",
        "flows",
        "audio",
        "data",
        "sessions",
        "public_url",
        "trust_proxy",
        "insecure",
        "watch",
    ):
        value = getattr(args, name)
        if value is not None:
            setattr(config, name, value)
    serve(config)
    return 0


def _test(args: argparse.Namespace) -> int:
    from ivr.conversation import main as run_tests

    paths = args.paths or sorted(Path("flows/tests").glob("*.yaml"))
    return run_tests(paths)


if __name__ == "__main__":
    sys.exit(main())
