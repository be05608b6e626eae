"""What speech recognition gives the rest of ivr: the interfaces and what was heard.

The Media Streams driver (ivr/telephony/stream.py) owns one `Recognizer` per call and
uses it from one worker thread at a time (a Vosk recogniser shared by two threads
aborts the process). `Speech` (ivr/speech/vosk.py) is the adapter for Vosk models;
tests and tools may bring others. Audio is 8 kHz, 16-bit signed little-endian mono
PCM, as decoded from Twilio's mu-law: the adapter resamples to its model's rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Heard:
    """An utterance's result: the best hypothesis ("" when nothing was recognised), its
    confidence from 0 to 1, and the N-best texts, best first (`text` among them), with
    each one's confidence in `confidences` (same order; they sum to at most 1)."""

    text: str
    confidence: float
    alternatives: tuple[str, ...] = ()
    confidences: tuple[float, ...] = ()


class Recognizer(Protocol):
    """One call's recogniser; not thread-safe: one thread at a time."""

    def expect(self, phrases: Sequence[str] | None) -> None:
        """Start an utterance: recognise these phrases only (a menu, yes/no), or free
        speech (None). Called between utterances, never while one is being fed."""

    def feed(self, pcm: bytes) -> None:
        """Caller audio, 8 kHz 16-bit mono PCM (20 ms chunks as they arrive)."""

    def finish(self) -> Heard:
        """The utterance is over (the voice activity detector said so): its result. The
        recogniser is ready for the next `expect`."""


class Speech(Protocol):
    """Recognisers by language: models loaded once per process, shared by their calls."""

    def languages(self) -> Sequence[str]:
        """The BCP-47 languages a model is loaded for ("ko-KR", "en-US")."""

    def recognizer(self, language: str) -> Recognizer | None:
        """A recogniser for one call; None when no model serves `language`."""
