"""Engine actions -> TwiML, with the twilio library. Pure: no request, no session.

A turn's TwiML depends only on its actions, the flow's voice and language and
the turn number, so documents are cached with the turn left as a placeholder:
static prompts (most of them) cost one string replace after the first call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from twilio.twiml.voice_response import Gather, VoiceResponse

from ivr.engine import actions as act

TURN = "__TURN__"  # placeholder for the turn number in action URLs


@dataclass(frozen=True)
class Voice:
    """How prompts are spoken and where the webhook routes live."""

    language: str = "en-US"
    voice: str | None = None
    base: str = "/twilio"  # route prefix for action URLs
    audio: str = "/audio"  # URL prefix of prompt recordings
    workflow_sid: str | None = None  # TaskRouter workflow: transfers with a queue go to <Enqueue>


def render(actions: Sequence[act.Action], voice: Voice, turn: int) -> str:
    """The TwiML document for one turn's actions (never empty, never silent)."""
    key = tuple(actions)
    try:
        doc = _cached(key, voice)
    except TypeError:  # an action holding a dict (transfer attributes, JSON): not hashable
        doc = _build(key, voice)
    return doc.replace(TURN, str(turn))


@lru_cache(maxsize=4096)
def _cached(actions: tuple[act.Action, ...], voice: Voice) -> str:
    return _build(actions, voice)


def _build(actions: tuple[act.Action, ...], voice: Voice) -> str:
    response = VoiceResponse()
    prompts: list[act.Prompt] = []
    for a in actions:
        if isinstance(a, act.Prompt):
            prompts.append(a)
        elif isinstance(a, act.Listen):
            _gather(response, a, prompts, voice)
            prompts = []
        else:
            _speak(response, prompts, voice)
            prompts = []
            if isinstance(a, act.Transfer):
                _transfer(response, a, voice)
            elif isinstance(a, act.Record):
                response.record(
                    action=f"{voice.base}/recorded?t={TURN}",
                    method="POST",
                    max_length=a.max_seconds,
                    finish_on_key=a.finish_on or None,
                    play_beep=True,
                )
                response.redirect(f"{voice.base}/recorded?t={TURN}&empty=1", method="POST")
            elif isinstance(a, act.Hangup):
                response.hangup()
            elif isinstance(a, act.Hold):
                if a.music:
                    response.play(f"{voice.audio}/{quote(a.music)}")
                elif a.pause:
                    response.pause(length=max(1, round(a.pause)))
                response.redirect(f"{voice.base}/hold?t={TURN}", method="POST")
    _speak(response, prompts, voice)
    if not actions:
        response.hangup()
    return str(response.to_xml())


def connect(stream_url: str, action: str, parameters: Mapping[str, str]) -> str:
    """`<Connect action><Stream url>`: the call's audio goes both ways over the Media Streams
    WebSocket at `stream_url` (whose URL may carry no query: the `<Parameter>`s carry what
    the stream needs); when the stream closes, Twilio asks `action` what comes next."""
    response = VoiceResponse()
    stream = response.connect(action=action, method="POST").stream(url=stream_url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    return str(response.to_xml())


def _speak(target: VoiceResponse | Gather, prompts: Sequence[act.Prompt], voice: Voice) -> None:
    for prompt in prompts:
        for part in prompt.parts:
            if isinstance(part, act.Audio):
                target.play(f"{voice.audio}/{quote(part.file)}")
            else:
                target.say(part.text, voice=voice.voice, language=voice.language)


def _gather(
    response: VoiceResponse, listen: act.Listen, prompts: Sequence[act.Prompt], voice: Voice
) -> None:
    if not listen.barge_in:
        _speak(response, prompts, voice)  # heard in full before listening starts
    menu = bool(listen.keys)
    gather = response.gather(
        input=" ".join(sorted(listen.modes)) or "dtmf",
        action=f"{voice.base}/gather?t={TURN}",
        method="POST",
        timeout=max(1, round(listen.timeout)),
        num_digits=1 if menu else (listen.max_digits if not listen.finish_on else None),
        finish_on_key="" if menu else listen.finish_on,  # Twilio's default "#" would eat a key
        speech_timeout="auto" if "speech" in listen.modes else None,
        hints=", ".join(listen.phrases) or None,
        language=voice.language if "speech" in listen.modes else None,
    )
    if listen.barge_in:
        _speak(gather, prompts, voice)
    # Twilio falls through to the next verb when the caller says nothing
    response.redirect(f"{voice.base}/gather?t={TURN}&silence=1", method="POST")


def _transfer(response: VoiceResponse, t: act.Transfer, voice: Voice) -> None:
    if t.queue and voice.workflow_sid:
        enqueue = response.enqueue(
            workflow_sid=voice.workflow_sid, action=f"{voice.base}/dial?t={TURN}", method="POST"
        )
        enqueue.task(json.dumps({"queue": t.queue, "reason": t.reason, **t.attributes}))
        return
    dial = response.dial(
        caller_id=t.caller_id,
        timeout=round(t.timeout) if t.timeout else None,
        action=f"{voice.base}/dial?t={TURN}",
        method="POST",
    )
    if t.to.startswith("sip:"):
        dial.sip(t.to)
    else:
        dial.number(t.to)
