"""`ivr call`: a console caller for designers. Prompts print as text; typed lines are the caller.

A line of digits, `*` or `#` is DTMF; other words are speech; an empty line is silence;
`/hangup` (or end of input) hangs up. `/say 0.4 words` sets the recogniser's confidence.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from typing import TextIO

from ivr.backend import Backend
from ivr.engine import actions as act
from ivr.engine import new_session, step
from ivr.engine.events import (
    CallStarted,
    Digits,
    Event,
    HangUp,
    NoInput,
    Recorded,
    Speech,
)
from ivr.flow.model import Flow

_DTMF = re.compile(r"^[0-9*#]+$")


def parse_line(line: str, at: float) -> Event:
    """What a typed line means to the engine."""
    text = line.strip()
    if not text:
        return NoInput(at)
    if text in ("/hangup", "/bye"):
        return HangUp(at)
    if text.startswith("/say "):
        _, conf, words = (text.split(" ", 2) + [""])[:3]
        return Speech(words, float(conf), at)
    if _DTMF.match(text.replace(" ", "")):
        return Digits(text.replace(" ", ""), at)
    return Speech(text, 1.0, at)


async def call(
    flow: Flow,
    backend: Backend,
    inp: TextIO = sys.stdin,
    out: TextIO = sys.stdout,
    clock: Callable[[], float] = time.time,
    caller: str = "console",
) -> str:
    """Run one call on the console; returns its outcome."""
    echo = not inp.isatty()
    session = new_session(flow, f"console-{int(clock())}")
    event: Event = CallStarted(clock(), caller, flow.numbers[0] if flow.numbers else "")
    while True:
        session, actions = step(flow, session, event)
        waiting = None
        for a in actions:
            if isinstance(a, act.Prompt):
                print(f"ivr> {a.text}", file=out)
            elif isinstance(a, act.Fetch):
                result = await backend.fetch(a)
                url = "(masked: sensitive)" if a.sensitive else a.url
                print(f"  [{a.method} {url} -> {result.error or result.status}]", file=out)
                waiting = result
            elif isinstance(a, act.Transfer):
                print(f"  [transfer to {a.to} queue {a.queue or '-'}; reason {a.reason}]", file=out)
            elif isinstance(a, act.Listen):
                print(f"  [{_hint(a)}]", file=out)
            elif isinstance(a, act.Record):
                print(f"  [recording up to {a.max_seconds} s: type a message]", file=out)
        if session.ended:
            tasks = ", ".join(session.tasks) or "none"
            print(f"== outcome: {session.outcome} (tasks resolved: {tasks})", file=out)
            return str(session.outcome)
        if waiting is not None:
            event = waiting
            continue
        line = inp.readline()
        if echo and line:
            print(f"you> {line.rstrip()}", file=out)
        if not line:
            event = HangUp(clock())
        elif session.waiting == "record" and line.strip() != "/hangup":
            event = Recorded(f"console:{line.strip()}", at=clock())
        else:
            try:
                event = parse_line(line, clock())
            except ValueError:
                print("  [/say takes a confidence from 0 to 1, then words]", file=out)
                event = NoInput(clock())


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
