"""`ivr call`: a console caller for designers. Prompts print as text; typed lines are the caller.

A line of digits, `*` or `#` is DTMF; other words are speech; an empty line is silence;
`/hangup` (or end of input) hangs up. `/say 0.4 words` sets the recogniser's confidence.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import TextIO

from ivr.engine import actions as act
from ivr.engine import new_session
from ivr.engine.events import (
    CallStarted,
    Digits,
    Event,
    FetchResult,
    HangUp,
    NoInput,
    Recorded,
    Speech,
)
from ivr.engine.session import MASK
from ivr.flow.model import Flow
from ivr.runner import Runner

_DTMF = re.compile(r"^[0-9*#]+$")


def parse_line(line: str, at: float) -> Event:
    """What a typed line means to the engine."""
    text = line.strip()
    if not text:
        return NoInput(at=at)
    if text in ("/hangup", "/bye"):
        return HangUp(at=at)
    if text.startswith("/say "):
        _, conf, words = (text.split(" ", 2) + [""])[:3]
        return Speech(words, float(conf), at=at)
    if _DTMF.match(text.replace(" ", "")):
        return Digits(text.replace(" ", ""), at=at)
    return Speech(text, 1.0, at=at)


async def call(
    flow: Flow,
    runner: Runner,
    inp: TextIO = sys.stdin,
    out: TextIO = sys.stdout,
    caller: str = "console",
) -> str:
    """Run one call on the console; returns its outcome."""
    echo = not inp.isatty()
    clock = runner.clock
    session = new_session(flow, f"console-{int(clock())}")
    event: Event = CallStarted(caller, flow.numbers[0] if flow.numbers else "", at=clock())
    while True:
        turn = await runner.run(flow, session, event)
        session = turn.session
        _show(turn.actions, iter(turn.fetched), out)
        if session.ended:
            tasks = ", ".join(session.tasks) or "none"
            print(f"== outcome: {session.outcome} (tasks resolved: {tasks})", file=out)
            return str(session.outcome)
        listening = next((a for a in reversed(turn.actions) if isinstance(a, act.Listen)), None)
        line = inp.readline()
        if echo and line:  # what a pipe typed is shown; a sensitive answer only masked
            shown = MASK if listening and listening.sensitive and line.strip() else line.rstrip()
            print(f"you> {shown}", file=out)
        if not line:
            event = HangUp(at=clock())
        elif session.waiting == "record" and line.strip() != "/hangup":
            event = Recorded(f"console:{line.strip()}", at=clock())
        else:
            try:
                event = parse_line(line, clock())
            except ValueError:
                print("  [/say takes a confidence from 0 to 1, then words]", file=out)
                event = NoInput(at=clock())


def _show(actions: list[act.Action], results: Iterator[FetchResult], out: TextIO) -> None:
    for a in actions:
        if isinstance(a, act.Prompt):
            print(f"ivr> {a.text}", file=out)
        elif isinstance(a, act.Fetch):
            result = next(results, None)
            outcome = "on hold" if result is None else result.error or result.status
            url = "(masked: sensitive)" if a.sensitive else a.url
            print(f"  [{a.method} {url} -> {outcome}]", file=out)
        elif isinstance(a, act.Transfer):
            print(f"  [transfer to {a.to} queue {a.queue or '-'}; reason {a.reason}]", file=out)
        elif isinstance(a, act.Listen):
            print(f"  [{_hint(a)}]", file=out)
        elif isinstance(a, act.Record):
            print(f"  [recording up to {a.max_seconds} s: type a message]", file=out)


def _hint(listen: act.Listen) -> str:
    how = []
    if "dtmf" in listen.modes:
        how.append(
            f"press {' '.join(listen.keys)}"
            if listen.keys
            else f"enter {listen.min_digits}-{listen.max_digits} digits"
            + (f" then {listen.finish_on}" if listen.finish_on else "")
        )
    if "speech" in listen.modes and listen.phrases:
        how.append(
            "say " + " / ".join(listen.phrases[:6]) + (" ..." if len(listen.phrases) > 6 else "")
        )
    elif "speech" in listen.modes:
        how.append("or say it")
    return "; ".join(how) + "; empty line = silence"
