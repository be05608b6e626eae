"""Text-to-speech for tests: real espeak-ng (a test needing it fails without it, never
skips), and a wrapper that counts what it is asked to say."""

from __future__ import annotations

import shutil

import pytest

from ivr.speech.tts import ESPEAK_MISSING, EspeakTTS, Pcm


def espeak() -> EspeakTTS:
    """espeak-ng, or the test fails saying how to install it."""
    if shutil.which("espeak-ng") is None:
        pytest.fail(ESPEAK_MISSING + " (make test does this)", pytrace=False)
    return EspeakTTS()


class CountingTTS:
    """A TTS that speaks through espeak-ng and keeps each text it was asked for."""

    def __init__(self) -> None:
        self.inner = espeak()
        self.texts: list[str] = []
        self.asked: list[tuple[str, str, str | None]] = []  # (text, language, voice)

    @property
    def name(self) -> str:
        return self.inner.name

    def synthesise(self, text: str, language: str, voice: str | None) -> Pcm:
        self.texts.append(text)
        self.asked.append((text, language, voice))
        return self.inner.synthesise(text, language, voice)
