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
from urllib.parse import quote, urlencode

from twilio.twiml import TwiML
from twilio.twiml.voice_response import Gather, VoiceResponse

from ivr.engine import actions as act
from ivr.flow import phrases as builtin
from ivr.flow.model import Wait
from ivr.flow.ssml import Markup, plain
from ivr.telephony.voices import speaker

TURN = "__TURN__"  # placeholder for the turn number in action URLs
# Twilio refuses speechTimeout="auto" once a speechModel is set (its warning 13335): then
# the end of speech is this many seconds of silence, unless the flow says otherwise
SPEECH_TIMEOUT = 2
MAX_HINTS, MAX_HINT = 500, 100  # Twilio's limits: hints per <Gather>, characters per hint
SIP_HEADERS_MAX = 1024  # Twilio's limit on the X- headers of a <Sip> URI
# what Twilio plays to a caller in a queue when it is told nothing else
HOLD_MUSIC = "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3"


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
                    # the task is done, and the outcome final, once the recording is stored
                    recording_status_callback=f"{voice.base}/recording",
                    recording_status_callback_method="POST",
                    recording_status_callback_event="completed absent",
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
        # a subflow's own language and voice, or another of the flow's languages than its
        # own (that language's voice): else the flow's
        if prompt.voice or prompt.language not in (None, voice.language):
            name, language = speaker(prompt.language or voice.language, prompt.voice)
        else:
            name, language = speaker(voice.language, voice.voice)
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
    action = f"{voice.base}/dial?t={TURN}"
    wait_url = f"{voice.base}/wait?t={TURN}" if t.wait else None
    if t.queue and voice.workflow_sid:
        enqueue = response.enqueue(
            workflow_sid=voice.workflow_sid, action=action, method="POST", wait_url=wait_url
        )
        enqueue.task(json.dumps({"queue": t.queue, **context(t)}))
        return
    if t.queue and t.wait:  # a Twilio queue its agents take callers from (<Dial><Queue>)
        response.enqueue(t.queue, action=action, method="POST", wait_url=wait_url)
        return
    dial = response.dial(
        caller_id=t.caller_id,
        timeout=round(t.timeout) if t.timeout else None,
        action=action,
        method="POST",
    )
    # said to the agent before the caller is put through: the text rides in the signed URL
    whisper = f"{voice.base}/whisper?{urlencode({'say': t.whisper})}" if t.whisper else None
    if t.to.startswith("sip:"):
        dial.sip(sip_uri(t.to, context(t)), url=whisper)
    else:
        dial.number(t.to, url=whisper)


def context(t: act.Transfer) -> dict[str, str]:
    """What the agent is told of the caller: why the transfer, what they did by themselves,
    and the flow's attributes."""
    told = {"reason": t.reason, "tasks": ",".join(t.tasks)} if t.tasks else {"reason": t.reason}
    return {**told, **t.attributes}


def sip_uri(uri: str, told: Mapping[str, str]) -> str:
    """`uri` with `told` as X- headers (Twilio passes a SIP URI's query on as headers),
    within Twilio's 1,024 characters for them."""
    headers, size = [], 0
    for name, value in told.items():
        header = f"X-IVR-{''.join(c for c in name.title() if c.isalnum())}={quote(value, safe='')}"
        if size + len(header) + 1 > SIP_HEADERS_MAX:
            break
        headers.append(header)
        size += len(header) + 1
    if not headers:
        return uri
    return f"{uri}{'&' if '?' in uri else '?'}{'&'.join(headers)}"


def waiting(
    wait: Wait | None,
    voice: Voice,
    turn: int,
    position: int | None,
    seconds: int | None,
    offer: act.Prompt | None = None,
) -> str:
    """A queue's wait TwiML: the caller's place and expected wait, the leave key's offer,
    then hold music (Twilio asks again when it ends). Never silent."""
    response = VoiceResponse()
    music = f"{voice.audio}/{quote(wait.music)}" if wait and wait.music else HOLD_MUSIC
    if wait is not None and wait.announce:
        said = []
        if position:
            said.append(builtin.phrase("queue_position", voice.language).format(position=position))
        if seconds:
            minutes = max(1, round(seconds / 60))
            said.append(builtin.phrase("queue_wait", voice.language).format(minutes=minutes))
        _speak(response, [act.Prompt(tuple(act.Text(t) for t in said))], voice)
    if wait is not None and wait.leave_key:
        gather = response.gather(
            input="dtmf",
            num_digits=1,
            timeout=1,
            action=f"{voice.base}/wait?leave=1&t={turn}",
            method="POST",
        )
        if offer is not None:
            _speak(gather, [offer], voice)
        gather.play(music)
    else:
        response.play(music)
    return str(response.to_xml())


def leave() -> str:
    """Out of the queue: the `<Enqueue action>` hears QueueResult=leave, and the flow goes on."""
    response = VoiceResponse()
    response.leave()
    return str(response.to_xml())
