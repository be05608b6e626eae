"""Engine actions -> TwiML, with the twilio library. Pure: no request, no session.

A turn's TwiML depends only on its actions, the flow's voice, language and speech
model (`Voice`) and the turn number, so documents are cached with the turn left as a
placeholder: static prompts (most of them) cost one string replace after the first call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from twilio.twiml import TwiML
from twilio.twiml.voice_response import Gather, VoiceResponse

from ivr.engine import actions as act
from ivr.flow.ssml import Markup, plain
from ivr.telephony.voices import speaker

TURN = "__TURN__"  # placeholder for the turn number in action URLs
# Twilio refuses speechTimeout="auto" once a speechModel is set (its warning 13335): then
# the end of speech is this many seconds of silence, unless the flow says otherwise
SPEECH_TIMEOUT = 2
MAX_HINTS, MAX_HINT = 500, 100  # Twilio's limits: hints per <Gather>, characters per hint


@dataclass(frozen=True)
class Voice:
    """How prompts are spoken and where the webhook routes live."""

    language: str = "en-US"
    voice: str | None = None
    base: str = "/twilio"  # route prefix for action URLs
    audio: str = "/audio"  # URL prefix of prompt recordings
    workflow_sid: str | None = None  # TaskRouter workflow: transfers with a queue go to <Enqueue>
    speech_model: str | None = None  # <Gather speechModel>; None: Twilio chooses
    speech_timeout: int | None = None  # seconds; None: "auto", or SPEECH_TIMEOUT with a model


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
        # a prompt in another of the flow's languages than its own: that language's voice
        name, language = (
            speaker(voice.language, voice.voice)
            if prompt.language in (None, voice.language)
            else speaker(prompt.language, None)
        )
        for part in prompt.parts:
            if isinstance(part, act.Audio):
                target.play(f"{voice.audio}/{quote(part.file)}")
            elif part.ssml:
                _ssml(target.say(None, voice=name, language=language), part.ssml)
            else:
                target.say(part.text, voice=name, language=language)


def _ssml(element: TwiML, markup: Sequence[Markup]) -> None:
    """The prompt's checked SSML tree under `element` with the twilio library's builders:
    text goes in as text (escaped when written), so no value can become a tag."""
    text = ""  # consecutive text goes in as one (the library keeps only the last)
    for item in (*markup, None):
        if isinstance(item, str):
            text += item
            continue
        if text:
            element.append(text)
            text = ""
        if item is None:
            break
        attrs = {key.replace("-", "_"): value for key, value in item.attrs}
        if item.name == "break":
            element.break_(**attrs)
        elif item.name == "say-as":
            element.say_as(plain(item.children), **attrs)
        elif item.name == "prosody":
            _ssml(element.prosody(**attrs), item.children)
        elif item.name == "emphasis":
            _ssml(element.emphasis(**attrs), item.children)


def _gather(
    response: VoiceResponse, listen: act.Listen, prompts: Sequence[act.Prompt], voice: Voice
) -> None:
    if not listen.barge_in:
        _speak(response, prompts, voice)  # heard in full before listening starts
    menu = bool(listen.keys)
    speech = "speech" in listen.modes
    gather = response.gather(
        input=" ".join(sorted(listen.modes)) or "dtmf",
        action=f"{voice.base}/gather?t={TURN}",
        method="POST",
        timeout=max(1, round(listen.timeout)),
        num_digits=1 if menu else (listen.max_digits if not listen.finish_on else None),
        finish_on_key="" if menu else listen.finish_on,  # Twilio's default "#" would eat a key
        speech_timeout=speech_timeout(voice) if speech else None,
        speech_model=voice.speech_model if speech else None,
        hints=hints(listen.phrases) if speech else None,
        language=(listen.language or voice.language) if speech else None,
    )
    if listen.barge_in:
        _speak(gather, prompts, voice)
    # Twilio falls through to the next verb when the caller says nothing
    response.redirect(f"{voice.base}/gather?t={TURN}&silence=1", method="POST")


def hints(phrases: Sequence[str]) -> str | None:
    """Twilio's `hints`: phrases joined by commas, so a comma inside a phrase would split
    it in two; each phrase is kept whole (its commas become spaces), once, within Twilio's
    limits (a phrase too long to be a hint is left out)."""
    kept: dict[str, None] = {}
    for phrase in phrases:
        hint = " ".join(phrase.replace(",", " ").split())
        if hint and len(hint) <= MAX_HINT:
            kept[hint] = None
    return ", ".join(list(kept)[:MAX_HINTS]) or None


def speech_timeout(voice: Voice) -> str:
    """`speechTimeout` valid for the voice's speech model: "auto" only without one."""
    if voice.speech_timeout is not None:
        return str(voice.speech_timeout)
    return "auto" if voice.speech_model is None else str(SPEECH_TIMEOUT)


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
