"""Prompt audio: recordings converted once (real ffmpeg), text synthesised once (real
espeak-ng), both cached on disk and in memory; a flow's static prompts made at load."""

from __future__ import annotations

import asyncio
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from ivr.flow import load_flow, parse_and_compile
from ivr.flow.model import Audio, Text
from ivr.speech.audio import ulaw_to_pcm
from ivr.speech.prompts import PromptAudio, PromptError, resample
from ivr.speech.tts import Pcm
from tests.tts import CountingTTS

REPO = Path(__file__).resolve().parents[3]
BALANCE = "잔액은 12,345원입니다."


def tone(path: Path, seconds: float = 1.0, rate: int = 44100, channels: int = 2) -> Path:
    """A 440 Hz tone in whatever format the name says, made by ffmpeg now (audio is never
    committed)."""
    source = f"sine=frequency=440:duration={seconds}"
    command = ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", source]
    subprocess.run([*command, "-ar", str(rate), "-ac", str(channels), str(path)], check=True)
    return path


@pytest.fixture
def tts() -> CountingTTS:
    return CountingTTS()


@pytest.fixture
def audio_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "audio"
    directory.mkdir()
    return directory


@pytest.fixture
def prompts(tmp_path: Path, audio_dir: Path, tts: CountingTTS) -> PromptAudio:
    return PromptAudio(audio_dir, tmp_path / "cache", tts)


def seconds(ulaw: bytes) -> float:
    return len(ulaw) / 8000  # one byte a sample at 8 kHz


async def test_text_is_synthesised_once(prompts: PromptAudio, tts: CountingTTS) -> None:
    first = await prompts.mulaw([Text(BALANCE)], "ko-KR", None)
    again = await prompts.mulaw([Text(BALANCE)], "ko-KR", None)
    assert first == again and 1.0 < seconds(first) < 6.0
    assert tts.texts == [BALANCE]
    await prompts.mulaw([Text(BALANCE)], "ko-KR", "en-us")  # another voice: another key
    await prompts.mulaw([Text(BALANCE)], "en-US", None)  # another language too
    assert len(tts.texts) == 3


async def test_the_disk_cache_outlives_the_process(
    prompts: PromptAudio, tts: CountingTTS, tmp_path: Path, audio_dir: Path
) -> None:
    first = await prompts.mulaw([Text(BALANCE)], "ko-KR", None)
    restarted = PromptAudio(audio_dir, tmp_path / "cache", tts)
    assert await restarted.mulaw([Text(BALANCE)], "ko-KR", None) == first
    assert tts.texts == [BALANCE]


async def test_calls_asking_at_once_share_one_synthesis(
    prompts: PromptAudio, tts: CountingTTS
) -> None:
    said = await asyncio.gather(
        *(prompts.mulaw([Text("One moment.")], "en-US", None) for _ in range(5))
    )
    assert len(set(said)) == 1 and tts.texts == ["One moment."]


async def test_a_recording_in_any_format_is_converted_once(
    prompts: PromptAudio, audio_dir: Path, tmp_path: Path
) -> None:
    tone(audio_dir / "tone.mp3", seconds=1.0)
    tone(audio_dir / "tone.ogg", seconds=0.5, rate=48000, channels=1)
    mp3 = await prompts.mulaw([Audio("tone.mp3")], "en-US", None)
    ogg = await prompts.mulaw([Audio("tone.ogg")], "en-US", None)
    assert seconds(mp3) == pytest.approx(1.0, abs=0.06)  # mp3 frames pad a little
    assert seconds(ogg) == pytest.approx(0.5, abs=0.02)
    pcm = np.frombuffer(ulaw_to_pcm(mp3), "<i2").astype(float)
    peak = np.argmax(np.abs(np.fft.rfft(pcm))) * 8000 / len(pcm)
    assert peak == pytest.approx(440, abs=3)  # still 440 Hz at 8 kHz
    converted = sorted((tmp_path / "cache").iterdir())
    assert len(converted) == 2
    for path in converted:
        with wave.open(str(path)) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
    times = [p.stat().st_mtime_ns for p in converted]
    prompts.memory.items.clear()  # from the disk now: not converted again
    assert await prompts.mulaw([Audio("tone.mp3")], "en-US", None) == mp3
    assert [p.stat().st_mtime_ns for p in sorted((tmp_path / "cache").iterdir())] == times


async def test_a_replaced_recording_is_heard_on_the_next_call(
    prompts: PromptAudio, audio_dir: Path
) -> None:
    tone(audio_dir / "welcome.wav", seconds=0.5)
    assert seconds(await prompts.mulaw([Audio("welcome.wav")], "en-US", None)) == 0.5
    tone(audio_dir / "welcome.wav", seconds=1.5)
    assert seconds(await prompts.mulaw([Audio("welcome.wav")], "en-US", None)) == 1.5


async def test_a_prompt_is_its_parts_in_order(
    prompts: PromptAudio, audio_dir: Path, tts: CountingTTS
) -> None:
    tone(audio_dir / "chime.wav", seconds=0.25, rate=8000, channels=1)
    chime = await prompts.mulaw([Audio("chime.wav")], "en-US", None)
    hello = await prompts.mulaw([Text("Hello.")], "en-US", None)
    both = await prompts.mulaw([Audio("chime.wav"), Text("  "), Text("Hello.")], "en-US", None)
    assert both == chime + hello and tts.texts == ["Hello."]


async def test_a_missing_recording_is_left_out(prompts: PromptAudio, audio_dir: Path) -> None:
    (audio_dir / "broken.wav").write_bytes(b"RIFF but not audio")
    hello = await prompts.mulaw([Text("Hello.")], "en-US", None)
    parts = [Audio("missing.wav"), Audio("broken.wav"), Text("Hello.")]
    assert await prompts.mulaw(parts, "en-US", None) == hello


@pytest.mark.parametrize(
    "name",
    [
        "../secret.wav",
        "/etc/passwd.wav",
        "a/../../secret.wav",
        "x\\..\\y.wav",
        "notes.txt",
        "bad\0.wav",
    ],
)
def test_names_outside_audio_or_not_recordings_are_refused(
    prompts: PromptAudio, tmp_path: Path, name: str
) -> None:
    tone(tmp_path / "secret.wav", seconds=0.1)
    with pytest.raises(PromptError):
        prompts.converted(name)


def test_a_symlink_out_of_audio_is_refused(
    prompts: PromptAudio, audio_dir: Path, tmp_path: Path
) -> None:
    (audio_dir / "link.wav").symlink_to(tone(tmp_path / "secret.wav", seconds=0.1))
    with pytest.raises(PromptError):
        prompts.converted("link.wav")


async def test_warm_makes_every_static_prompt_at_load(
    prompts: PromptAudio, tts: CountingTTS
) -> None:
    flow = load_flow(REPO / "flows" / "telebanking.yaml")
    ready = await prompts.warm(flow)
    warmed = set(tts.texts)
    assert len(warmed) == len(tts.texts) == ready  # each text once, shared ones too
    assert {
        "Welcome to Example Bank.",
        "Sorry, I didn't hear anything.",  # defaults: no_input, no_match
        "Sorry, I didn't catch that.",
        "That account number is not valid.",
        "Connecting you to an agent.",  # transfer say
        "Thank you for calling Example Bank. Goodbye.",  # end say
    } <= warmed
    assert not any("{{" in text for text in warmed)  # templates wait for their turn
    # a turn of the flow: a static prompt costs no synthesis
    prompt = flow.nodes["main"].spec.prompt.static
    await prompts.mulaw(prompt, flow.language, flow.voice)
    assert len(tts.texts) == ready
    assert await prompts.warm(flow) == ready and len(tts.texts) == ready


async def test_warm_covers_hold_apology_and_recordings(
    prompts: PromptAudio, tts: CountingTTS, audio_dir: Path
) -> None:
    tone(audio_dir / "hold.mp3", seconds=0.2)
    flow = parse_and_compile(
        """
flow: f
language: ko-KR
start: look
defaults: {apology: "죄송합니다.", hold_music: hold.mp3, speech_down: "버튼을 눌러 주세요."}
nodes:
  look:
    http: {url: "http://bank/x", timeout: 1, hold: [{audio: hold.mp3}, "잠시만요."]}
    next: bye
    on_error: bye
  bye: {end: {say: "안녕히 가세요."}}
"""
    )
    await prompts.warm(flow)
    assert {"죄송합니다.", "잠시만요.", "안녕히 가세요.", "버튼을 눌러 주세요."} <= set(tts.texts)
    assert any(key[:2] == ("audio", "hold.mp3") for key in prompts.memory.items)


def test_resampling_keeps_the_telephone_band() -> None:
    rate, t = 22050, np.arange(22050) / 22050
    # 1 kHz stays; 6 kHz (above 4 kHz, the 8 kHz Nyquist) must not fold into the band
    signal = 8000 * np.sin(2 * np.pi * 1000 * t) + 8000 * np.sin(2 * np.pi * 6000 * t)
    out = resample(Pcm(signal.astype("<i2").tobytes(), rate)).astype(float)
    assert len(out) == 8000
    spectrum = np.abs(np.fft.rfft(out[1000:-1000]))
    freqs = np.fft.rfftfreq(len(out) - 2000, 1 / 8000)
    at = {f: spectrum[np.argmin(np.abs(freqs - f))] for f in (1000, 2000)}  # 6 kHz folds to 2
    assert at[2000] < at[1000] / 100


async def test_memory_keeps_the_most_recent_prompts(
    tmp_path: Path, audio_dir: Path, tts: CountingTTS
) -> None:
    small = PromptAudio(audio_dir, tmp_path / "cache", tts, memory=12_000)  # ~2 of them
    for text in ("One.", "Two.", "Three.", "Four."):
        await small.mulaw([Text(text)], "en-US", None)
    assert small.memory.size <= 12_000 and len(small.memory.items) < 4
    assert ("tts", "espeak-ng", "en-US", "", "Four.") in small.memory.items


async def test_a_broken_recording_is_tried_once_until_it_changes(
    prompts: PromptAudio, audio_dir: Path
) -> None:
    (audio_dir / "broken.mp3").write_bytes(b"ID3 but nothing else")
    for _ in range(2):
        assert await prompts.mulaw([Audio("broken.mp3")], "en-US", None) == b""
    assert [key[1] for key in prompts.memory.items] == ["broken.mp3"]  # remembered as silence
    tone(audio_dir / "broken.mp3", seconds=0.5)  # fixed: another size and time
    assert seconds(await prompts.mulaw([Audio("broken.mp3")], "en-US", None)) > 0.4
