"""Text-to-speech on this machine: the `TTS` interface, espeak-ng (the default) and Piper.

Engines run as subprocesses and block: callers run them off the event loop
(`ivr.speech.prompts` does). Each returns 16-bit mono PCM at the engine's own rate;
resampling to the telephone's 8 kHz is the caller's business.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import wave
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

from ivr.errors import IvrError

ESPEAK_MISSING = "espeak-ng is not installed: run `apt-get install -y espeak-ng`"
PIPER_MISSING = (
    "the piper binary is not on PATH: `pip install piper-tts` installs it (with a voice "
    "model: a .onnx file and its .onnx.json beside it)"
)
TIMEOUT = 30.0  # seconds one synthesis may take: a prompt is a few sentences


class TTSError(IvrError):
    """Text could not be synthesised: the engine or its voice is missing, or it failed."""


@dataclass(frozen=True)
class Pcm:
    """Synthesised speech: 16-bit signed little-endian mono samples at `rate` Hz."""

    data: bytes
    rate: int


class TTS(Protocol):
    """A local text-to-speech engine. `name` tells engines (and voice models) apart in the
    keys audio is cached under: the same name, text, language and voice must sound alike."""

    @property
    def name(self) -> str: ...

    def synthesise(self, text: str, language: str, voice: str | None) -> Pcm:
        """`text` spoken in `language` (BCP-47) by `voice` (the flow's; engines ignore a
        voice they do not have); TTSError when it cannot be."""
        ...


def _run(command: list[str], text: str, what: str) -> bytes:
    try:
        done = subprocess.run(command, input=text.encode(), capture_output=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise TTSError(f"{what} took more than {TIMEOUT:g} s") from e
    except OSError as e:
        raise TTSError(f"{what} could not run: {e}") from e
    if done.returncode != 0 or not done.stdout:
        error = done.stderr.decode(errors="replace").strip().splitlines()
        raise TTSError(f"{what} failed ({done.returncode}): {error[-1] if error else 'no audio'}")
    return done.stdout


def read_wav(data: bytes) -> Pcm:
    """A mono 16-bit WAV's samples; its header may claim more than there is (espeak-ng
    writing to a pipe cannot go back to fill the sizes in)."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
                raise TTSError("expected 16-bit mono WAV")
            return Pcm(wav.readframes(wav.getnframes()), wav.getframerate())
    except (wave.Error, EOFError) as e:
        raise TTSError(f"not a WAV file: {e}") from e


class EspeakTTS:
    """espeak-ng: robotic, but in ~100 languages, fast (a sentence in ~20 ms) and in every
    distribution. The voice is the flow's when espeak-ng has it (`ko`, `en-us+f3`), else
    the flow's language's: ko-KR -> ko, en-US -> en-us, pt-BR -> pt-br, de-AT -> de."""

    name = "espeak-ng"

    def __init__(self, binary: str = "espeak-ng") -> None:
        self.binary = binary

    @cached_property
    def voices(self) -> frozenset[str]:
        """Names espeak-ng takes for -v: languages (ko, en-us) and voice files (gmw/en-US)."""
        if shutil.which(self.binary) is None:
            raise TTSError(ESPEAK_MISSING)
        listing = _run([self.binary, "--voices"], "", "espeak-ng --voices").decode()
        names: set[str] = set()
        for line in listing.splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 5:
                names |= {fields[1].lower(), fields[4].lower()}
        return frozenset(names)

    def voice_for(self, language: str, voice: str | None) -> str:
        """The -v argument for a flow's language and voice; TTSError when there is none."""
        if voice and voice.split("+")[0].lower() in self.voices:
            return voice
        tag = language.lower().replace("_", "-")
        for candidate in (tag, tag.split("-")[0]):
            if candidate in self.voices:
                return candidate
        raise TTSError(f"espeak-ng has no voice for {language!r} (see `espeak-ng --voices`)")

    def command(self, language: str, voice: str | None) -> list[str]:
        # text on stdin: one starting with "-" is no option, and no length limit applies
        return [self.binary, "-v", self.voice_for(language, voice), "--stdout", "--stdin"]

    def synthesise(self, text: str, language: str, voice: str | None) -> Pcm:
        return read_wav(_run(self.command(language, voice), text, "espeak-ng"))


class PiperTTS:
    """Piper: neural voices that sound like a person, from a local model (`voice.onnx` with
    its `voice.onnx.json`). A model speaks one language: a flow in another is spoken by
    `fallback` (espeak-ng). A numeric flow voice picks a speaker of a multi-speaker model.
    Each synthesis loads the model again (~1 s): prompts made ahead of calls hide that."""

    def __init__(
        self, model: Path, binary: str = "piper", fallback: EspeakTTS | None = None
    ) -> None:
        self.model, self.binary = model, binary
        self.fallback = fallback or EspeakTTS()

    @property
    def name(self) -> str:
        return f"piper:{self.model.name}"

    @cached_property
    def config(self) -> dict[str, object]:
        """The model's config: its sample rate and language."""
        config = Path(f"{self.model}.json")
        if not self.model.is_file():
            raise TTSError(f"no Piper voice model at {self.model}")
        try:
            loaded = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise TTSError(f"no readable Piper voice config at {config}: {e}") from e
        if not isinstance(loaded, dict):
            raise TTSError(f"{config} is not a Piper voice config")
        return loaded

    @property
    def rate(self) -> int:
        audio = self.config.get("audio")
        return int(audio.get("sample_rate", 22050)) if isinstance(audio, dict) else 22050

    def speaks(self, language: str) -> bool:
        """Whether the model's language (`en_US`) is the flow's (`en-US`, `en`)."""
        code = self.config.get("language")
        spoken = str(code.get("code", "")) if isinstance(code, dict) else ""
        if not spoken:
            return True  # an old config that does not say: trust the operator
        ours, theirs = language.lower().replace("_", "-"), spoken.lower().replace("_", "-")
        return ours == theirs or ours.split("-")[0] == theirs.split("-")[0]

    def command(self, voice: str | None) -> list[str]:
        # raw samples on stdout: the WAV writer of some versions needs a seekable file
        command = [self.binary, "--model", str(self.model), "--output_raw"]
        if voice and voice.isdigit():
            command += ["--speaker", voice]
        return command

    def synthesise(self, text: str, language: str, voice: str | None) -> Pcm:
        if not self.speaks(language):
            return self.fallback.synthesise(text, language, voice)
        if shutil.which(self.binary) is None:
            raise TTSError(PIPER_MISSING)
        # Piper speaks each line apart: one prompt is one line
        line = " ".join(text.split())
        return Pcm(_run(self.command(voice), line + "\n", "piper"), self.rate)


def from_setting(setting: str) -> TTS:
    """The engine `IVR_TTS` names: `espeak` (the default) or `piper:/path/to/voice.onnx`."""
    kind, _, rest = setting.strip().partition(":")
    if kind.lower() in ("", "espeak", "espeak-ng") and not rest:
        return EspeakTTS()
    if kind.lower() == "piper" and rest:
        return PiperTTS(Path(rest).expanduser())
    raise TTSError(f"IVR_TTS: expected espeak or piper:/path/to/voice.onnx, got {setting!r}")
