"""`ivr call`: a console caller for designers. Prompts print as text; typed lines are the caller.

A line of digits, `*` or `#` is DTMF; other words are speech; an empty line is silence;
`/hangup` (or end of input) hangs up. `/say 0.4 words` sets the recogniser's confidence.
With `--channel sms|whatsapp|chat` it is a text conversation instead: the messages the
channel would send, typed lines read as messages (`ivr.channels.text.message_event`).

With `--speech vosk` (a `Voice`) the caller's speech goes through the real recogniser,
as on a Media Streams call (`ivr.speech.offline`): the audio given (`--wav`, `--say`)
answers the listens that take speech, one each, in order; after it, typed lines go on
as above, their words spoken by espeak-ng and recognised too (`/say` still bypasses the
recogniser). What was recognised, its confidence and alternatives are shown each time.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ivr.engine import actions as act
from ivr.engine import new_session
from ivr.engine.events import (
    NO_HISTORY,
    CallStarted,
    Digits,
    Event,
    FetchResult,
    HangUp,
    MessageSent,
    NoInput,
    Recorded,
    RecordingStatus,
    Speech,
    TransferEnded,
)
from ivr.engine.session import MASK, Session
from ivr.errors import ConfigError
from ivr.flow.hours import Closure
from ivr.flow.model import Flow
from ivr.runner import Runner
from ivr.telephony.rest import masked

if TYPE_CHECKING:
    from ivr.speech.offline import Models
    from ivr.speech.recognizer import Recognizer
    from ivr.speech.vosk_speech import VoskSpeech

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


@dataclass
class Voice:
    """The caller's voice through a recogniser (`--speech vosk`): `audio` (label, 8 kHz
    line PCM) answers the listens that take speech, in order; typed words are spoken in
    the flow's language and voice."""

    recognizer: Recognizer
    audio: deque[tuple[str, bytes]] = field(default_factory=deque)
    language: str = ""
    voice: str | None = None
    # the call's language may change (a menu chose it): that language's model, from these
    speech: VoskSpeech | None = None

    async def hear(
        self, flow: Flow, session: Session, listen: act.Listen, pcm: bytes, at: float, out: TextIO
    ) -> Event:
        """The event the audio gives at `listen`, after showing what was recognised."""
        from ivr.speech import offline

        self.follow(flow, listen)
        heard = await asyncio.to_thread(
            offline.hear, self.recognizer, flow, session, listen, pcm, at
        )
        for line in heard.lines(listen.sensitive):
            print(f"  [{line}]", file=out)
        return heard.event

    def follow(self, flow: Flow, listen: act.Listen) -> None:
        """Hear (and speak typed words) in the call's language at `listen`."""
        from ivr.speech import offline

        language = listen.language or flow.language
        if language != self.language and self.speech is not None:
            self.recognizer = offline.recognizer(self.speech, language)
            self.language = language
            self.voice = flow.voice if language == flow.language else None

    async def say(self, text: str) -> bytes:
        from ivr.speech.offline import spoken_audio

        return await asyncio.to_thread(spoken_audio, text, self.language, self.voice)


def console_clock(flow: Flow, text: str) -> Callable[[], float]:
    """`ivr call --clock`: a clock that starts at `text` (an ISO datetime; without an
    offset, in the time zone of the flow's hours) and runs on from there."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--clock {text!r}: write a date and time such as '2026-12-25 10:00' (in the "
            "flow's hours' time zone) or '2026-12-25T10:00+05:00'"
        ) from None
    if when.tzinfo is None:
        zones = {h.tz.key: h.tz for h in flow.hours.values()}
        if len(zones) > 1:
            raise ConfigError(
                f"--clock {text!r}: the flow's hours are in {', '.join(sorted(zones))}: "
                "give the time with its offset, e.g. 2026-12-25T10:00+05:00"
            )
        when = when.replace(
            tzinfo=next(iter(zones.values()), None) or datetime.now().astimezone().tzinfo
        )
    offset = when.timestamp() - time.time()
    return lambda: time.time() + offset


def console_closures(flow: Flow, given: Sequence[str]) -> list[Closure]:
    """`ivr call --closed NAME[=MESSAGE]`: hours closed as ops close them, for this call."""
    out = []
    for text in given:
        name, _, message = text.partition("=")
        if name not in flow.hours:
            known = ", ".join(flow.hours) or "none"
            raise ConfigError(f"--closed {name}: the flow has no hours of that name ({known})")
        out.append(Closure(name, message=message))
    return out


def voice_for(flow: Flow, models: Models | None, audio: Sequence[tuple[str, str]]) -> Voice:
    """The `Voice` of `ivr call --speech vosk`: the model for the flow's language (from
    `models`, else IVR_VOSK_MODELS), loaded now, and the audio given, read now, as
    ("wav", path) or ("say", text); ConfigError when any of it cannot be had."""
    from ivr.errors import ConfigError, IvrError
    from ivr.speech import offline

    given = offline.configured(models)
    speech = offline.speech_for(given) if given else None
    recognizer = offline.recognizer(speech, flow.language)
    model = speech.model(flow.language) if speech is not None else None
    try:
        if model is not None:
            model.load()
    except IvrError as e:
        raise ConfigError(str(e)) from None
    made = Voice(recognizer, language=flow.language, voice=flow.voice, speech=speech)
    for kind, value in audio:
        if kind == "wav":
            made.audio.append((f"audio {value}", offline.file_audio(Path(value))))
        else:
            label = f"espeak-ng says {value!r}"
            made.audio.append((label, offline.spoken_audio(value, flow.language, flow.voice)))
    return made


async def call(
    flow: Flow,
    runner: Runner,
    inp: TextIO | None = None,
    out: TextIO | None = None,
    caller: str = "console",
    voice: Voice | None = None,
    history: Mapping[str, Any] | None = None,
    channel: str = "voice",
) -> str:
    """Run one call on the console (stdin and stdout unless told); returns its outcome.
    With a `voice`, speech goes through its recogniser; `history` pretends the caller's
    (`history.*`: a first-time caller's when None). On a text `channel` (sms, whatsapp,
    chat) it is a text conversation (`texting`)."""
    inp, out = inp or sys.stdin, out or sys.stdout
    if channel != "voice":
        return await texting(flow, runner, inp, out, caller, channel, history)
    echo = not inp.isatty()
    clock = runner.clock
    session = new_session(flow, f"console-{int(clock())}")
    called = flow.numbers[0] if flow.numbers else ""
    event: Event = CallStarted(caller, called, at=clock(), history=history or NO_HISTORY)
    while True:
        turn = await runner.run(flow, session, event)
        session = turn.session
        _show(turn.actions, iter(turn.fetched), out, iter(turn.sent))
        if session.awaiting and isinstance(event, Recorded):  # stored at once, here
            stored = RecordingStatus("completed", event.reference, at=clock())
            session = (await runner.run(flow, session, stored)).session
        if session.ended:
            return _ended(session, out)
        listening = next((a for a in reversed(turn.actions) if isinstance(a, act.Listen)), None)
        spoken = voice is not None and listening is not None and "speech" in listening.modes
        if voice is not None and listening is not None and spoken and voice.audio:
            label, pcm = voice.audio.popleft()
            print(f"you> [{label}]", file=out)
            event = await voice.hear(flow, session, listening, pcm, clock(), out)
            continue
        if session.waiting == "transfer":  # the flow goes on after the transfer
            ends = "completed (empty line), no-answer, busy, failed, leave"
            print(f"  [how the transfer ends: {ends}]", file=out)
        line = inp.readline()
        if echo and line:  # what a pipe typed is shown; a sensitive answer only masked
            shown = MASK if listening and listening.sensitive and line.strip() else line.rstrip()
            print(f"you> {shown}", file=out)
        if not line:
            event = HangUp(at=clock())
        elif session.waiting == "transfer" and line.strip() != "/hangup":
            event = TransferEnded(line.strip() or "completed", at=clock())
        elif session.waiting == "record" and line.strip() != "/hangup":
            event = Recorded(f"console:{line.strip()}", at=clock())
        else:
            try:
                event = parse_line(line, clock())
            except ValueError:
                print("  [/say takes a confidence from 0 to 1, then words]", file=out)
                event = NoInput(at=clock())
            typed = isinstance(event, Speech) and not line.strip().startswith("/say ")
            if voice is not None and listening is not None and spoken and typed:
                voice.follow(flow, listening)
                pcm = await voice.say(line.strip())
                event = await voice.hear(flow, session, listening, pcm, clock(), out)


async def texting(
    flow: Flow,
    runner: Runner,
    inp: TextIO,
    out: TextIO,
    caller: str,
    channel: str,
    history: Mapping[str, Any] | None = None,
) -> str:
    """A text conversation on the console: each turn shown as the messages the channel
    sends, each typed line a message (`ivr.channels.text.message_event`); `/hangup` or the end
    of input leaves it (abandoned, as the idle timeout would end it)."""
    from ivr.channels.text import message_event, render

    echo, clock = not inp.isatty(), runner.clock
    session = new_session(flow, f"console-{int(clock())}")
    session.channel = channel
    number = "" if channel == "chat" else caller
    called = flow.numbers[0] if flow.numbers else ""
    event: Event = CallStarted(number, called, at=clock(), history=history or NO_HISTORY)
    while True:
        turn = await runner.run(flow, session, event)
        session = turn.session
        _show([a for a in turn.actions if isinstance(a, act.Fetch)], iter(turn.fetched), out)
        reply = render(flow, turn.actions)
        for message in reply.messages:
            print(f"{channel}> {message}", file=out)
        if reply.choices and channel == "chat":
            buttons = " | ".join(f"{c.key} {c.label}" for c in reply.choices)
            print(f"  [buttons: {buttons}]", file=out)
        if session.ended:
            return _ended(session, out)
        line = inp.readline()
        if echo and line:
            listen = session.waiting == "listen" and any(
                isinstance(a, act.Listen) and a.sensitive for a in turn.actions
            )
            print(f"you> {MASK if listen and line.strip() else line.rstrip()}", file=out)
        if not line or line.strip() in ("/hangup", "/bye"):
            event = HangUp(at=clock())
        else:
            event = message_event(flow, session, line, clock())


def _ended(session: Session, out: TextIO) -> str:
    tasks = ", ".join(session.tasks) or "none"
    print(f"== path: {' > '.join(session.path)}", file=out)
    print(f"== outcome: {session.outcome} (tasks resolved: {tasks})", file=out)
    return str(session.outcome)


def _show(
    actions: list[act.Action],
    results: Iterator[FetchResult],
    out: TextIO,
    sent: Iterator[MessageSent] | None = None,
) -> None:
    sent = sent or iter(())
    for a in actions:
        if isinstance(a, act.Prompt):
            # in another language than the flow's (a subflow's, the call's): it says which
            spoken = f"[{a.language}{', ' + a.voice if a.voice else ''}] " if a.language else ""
            print(f"ivr> {spoken}{a.text}", file=out)
        elif isinstance(a, act.Fetch):
            result = next(results, None)
            outcome = "on hold" if result is None else result.error or result.status
            url = "(masked: sensitive)" if a.sensitive else a.url
            print(f"  [{a.method} {url} -> {outcome}]", file=out)
        elif isinstance(a, act.Message):
            told = next(sent, None)
            how = f"not sent: {told.error}" if told and not told.ok else "shown, not sent"
            print(f"  [{a.channel} to {masked(a.to)}: {a.text}] ({how})", file=out)
        elif isinstance(a, act.Transfer):
            print(f"  [transfer to {a.to} queue {a.queue or '-'}; reason {a.reason}]", file=out)
            if a.whisper:
                print(f"  [the agent hears: {a.whisper}]", file=out)
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
            + (f" (or {' '.join(listen.global_keys)})" if listen.global_keys else "")
        )
    if "speech" in listen.modes and listen.phrases:
        how.append(
            "say " + " / ".join(listen.phrases[:6]) + (" ..." if len(listen.phrases) > 6 else "")
        )
    elif "speech" in listen.modes:
        how.append("or say it")
    return "; ".join(how) + "; empty line = silence"
