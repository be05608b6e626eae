"""The caller's end of speech: a voice activity detector over 20 ms frames of 8 kHz PCM.

webrtcvad decides per frame; `Endpointer` turns those decisions into two events, speech
started (for barge-in) and speech ended (the driver then asks the recogniser to finish).
Why not Vosk's own endpointing: its shortest rule waits for 0.5 s of trailing silence
after decoding, and fired ~640 ms (p50) later than webrtcvad with a 250 ms hang-over on
the same audio; the time from the caller's last word to our next prompt is the delay
callers notice (docs/speech.md).

Choices, each measured on espeak-ng Korean through the Twilio path (docs/speech.md):
- mode 1: with the first 100 ms ignored (below) no mode started falsely and all ended
  at the same time; mode 0 lets more line noise count as speech, so the next one;
- the first `ignore` seconds (100 ms) of a listen start nothing: the detector adapts to
  the line there, and a prompt's echo may still be arriving;
- webrtcvad keeps calling frames speech for 80-240 ms (p50 140) after the voice stops (its own
  hang-over). A frame `gate_db` below the loudest frame of the utterance counts as
  silence whatever webrtcvad says, so our hang-over is the real silence waited for;
- `hang_over` (250 ms) of silence ends the utterance: a natural turn gap is 200-300 ms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import webrtcvad

from ivr.speech.audio import FRAME_BYTES, FRAME_MS, RATE, Framer

FRAME = FRAME_MS / 1000


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller started speaking `at` seconds into the listen (audio time): barge-in."""

    at: float


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """The caller stopped: decided `at` seconds into the listen, the voice having ended at
    `voice_end` (the end of the last frame with voice; `at - voice_end` is the wait)."""

    at: float
    voice_end: float


VadEvent = SpeechStarted | SpeechEnded


class Endpointer:
    """One call's end-of-speech detector. Feed it the caller's audio as it arrives (any
    chunk size; 8 kHz 16-bit PCM); call `reset()` when a listen starts. Cheap (a few
    microseconds a frame): it may run on the event loop."""

    def __init__(
        self,
        hang_over: float = 0.25,
        *,
        ignore: float = 0.1,
        onset: float = 0.06,
        gate_db: float = 35.0,
        mode: int = 1,
    ) -> None:
        self.hang_over, self.ignore, self.onset, self.gate_db = hang_over, ignore, onset, gate_db
        self._vad = webrtcvad.Vad(mode)
        self._framer = Framer(FRAME_BYTES)
        # frames as counts, so no floating-point drift over a long listen
        self._hang_frames = max(1, math.ceil(round(hang_over / FRAME, 6)))
        self._onset_frames = max(1, math.ceil(round(onset / FRAME, 6)))
        self._ignore_frames = math.ceil(round(ignore / FRAME, 6))
        self.reset()

    def reset(self) -> None:
        """A new listen: forget the last utterance; times count from here."""
        self._framer.reset()
        self._frames = 0  # frames seen in this listen
        self._voiced_run = 0  # consecutive voiced frames before speech started
        self._silent_run = 0  # consecutive silent frames since speech started
        self._speaking = False
        self._peak_db = -math.inf  # the loudest frame of the current utterance
        self._last_voice = 0  # frame count at the end of the last voiced frame

    @property
    def speaking(self) -> bool:
        """True between a SpeechStarted and its SpeechEnded."""
        return self._speaking

    def feed(self, pcm: bytes) -> list[VadEvent]:
        """What this audio changed, in order (usually nothing)."""
        events: list[VadEvent] = []
        for frame in self._framer(pcm):
            event = self._frame(frame)
            if event is not None:
                events.append(event)
        return events

    def _frame(self, frame: bytes) -> VadEvent | None:
        self._frames += 1
        voiced = self._vad.is_speech(frame, RATE)  # always: the detector adapts on it
        if self._frames <= self._ignore_frames:
            return None
        level = _level_db(frame)
        if self._speaking and level < self._peak_db - self.gate_db:
            voiced = False  # webrtcvad's own hang-over: the voice is already gone
        if not self._speaking:
            self._voiced_run = self._voiced_run + 1 if voiced else 0
            self._peak_db = max(self._peak_db, level) if voiced else -math.inf
            if self._voiced_run >= self._onset_frames:
                self._speaking, self._silent_run = True, 0
                self._last_voice = self._frames
                return SpeechStarted(round((self._frames - self._voiced_run) * FRAME, 3))
            return None
        if voiced:
            self._silent_run, self._last_voice = 0, self._frames
            self._peak_db = max(self._peak_db, level)
            return None
        self._silent_run += 1
        if self._silent_run < self._hang_frames:
            return None
        self._speaking, self._voiced_run, self._peak_db = False, 0, -math.inf
        return SpeechEnded(round(self._frames * FRAME, 3), round(self._last_voice * FRAME, 3))


def _level_db(frame: bytes) -> float:
    """A frame's mean power in dB (relative to one LSB squared; only differences count)."""
    samples = np.frombuffer(frame, "<i2").astype(np.float64)
    return 10 * math.log10(float(np.dot(samples, samples)) / len(samples) + 1e-9)
