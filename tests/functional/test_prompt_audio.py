"""Prompt audio over HTTP: `<Play>`'s recordings converted to 8 kHz mono WAV (real ffmpeg),
and a stream flow's static prompts synthesised when it loads (real espeak-ng)."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ivr.config import Config
from ivr.server import FLOWS, PROMPTS, build_app
from tests.conftest import free_port
from tests.functional.conftest import edit_file
from tests.tts import CountingTTS
from tests.unit.speech.test_prompts import tone

Started = tuple[str, web.Application]
Start = Callable[..., Awaitable[Started]]


@pytest.fixture
def audio_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "audio"
    directory.mkdir()
    return directory


@pytest.fixture
def tts() -> CountingTTS:
    return CountingTTS()


@pytest.fixture
async def start(
    flows_dir: Path, audio_dir: Path, tmp_path: Path, tts: CountingTTS
) -> AsyncIterator[Start]:
    """Starts the app on loopback with the counting TTS: its URL and the app."""
    runners: list[web.AppRunner] = []

    async def run(**overrides: Any) -> Started:
        port = free_port()
        config = Config(
            host="127.0.0.1",
            port=port,
            flows=flows_dir,
            audio=audio_dir,
            data=tmp_path / "data",
            auth_token="test-token",
            sessions="memory://",
            watch=False,
            **overrides,
        )
        app = build_app(config, tts=tts)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        return f"http://127.0.0.1:{port}", app

    yield run
    for runner in runners:
        await runner.cleanup()


async def settled(app: web.Application) -> None:
    """Until the flows loaded so far are warm."""
    await asyncio.gather(*app[PROMPTS].warming)


async def test_play_gets_a_converted_copy_of_any_recording(start: Start, audio_dir: Path) -> None:
    tone(audio_dir / "welcome.mp3", seconds=1.0)  # 44.1 kHz stereo
    tone(audio_dir / "hd.wav", seconds=0.5, rate=48000)
    url, _ = await start()
    async with aiohttp.ClientSession() as http:
        for name, length in (("welcome.mp3", 1.0), ("hd.wav", 0.5)):
            async with http.get(f"{url}/audio/{name}") as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == "audio/wav"
                assert response.headers["Cache-Control"] == "public, max-age=300"
                with wave.open(io.BytesIO(await response.read())) as wav:
                    assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (
                        8000,
                        1,
                        2,
                    )
                    assert wav.getnframes() / 8000 == pytest.approx(length, abs=0.06)
                etag = response.headers["ETag"]
            async with http.get(f"{url}/audio/{name}", headers={"If-None-Match": etag}) as again:
                assert again.status == 304  # Twilio's cache revalidates cheaply
        async with http.head(f"{url}/audio/welcome.mp3") as head:
            assert head.status == 200 and head.headers["Content-Type"] == "audio/wav"


async def test_play_serves_nothing_outside_the_recordings(
    start: Start, audio_dir: Path, tmp_path: Path
) -> None:
    tone(tmp_path / "secret.wav", seconds=0.1)
    (audio_dir / "link.wav").symlink_to(tmp_path / "secret.wav")
    (audio_dir / "README.md").write_text("not a recording")
    (audio_dir / "broken.mp3").write_bytes(b"ID3 but nothing else")
    url, _ = await start()
    async with aiohttp.ClientSession() as http:
        for path in (
            "/audio/missing.wav",
            "/audio/../secret.wav",
            "/audio/%2e%2e/secret.wav",
            "/audio/..%2fsecret.wav",
            "/audio/%2Fetc%2Fpasswd",
            "/audio/link.wav",  # a symlink out of audio/
            "/audio/README.md",
            "/audio/broken.mp3",
            "/audio/" + "a" * 300 + ".wav",  # a name longer than the file system takes
            "/audio/" + "d/" * 3000 + "x.wav",  # a path longer than it takes
            "/audio/nul%00.wav",
        ):
            async with http.get(url + path) as response:
                assert response.status == 404, path


async def test_stream_flows_are_warmed_when_they_load(
    start: Start, tts: CountingTTS, flows_dir: Path
) -> None:
    _, app = await start(speech="vosk")
    await settled(app)
    assert "Welcome to Example Bank." in tts.texts
    assert "Thank you for shopping with Example Shop. Goodbye." in tts.texts
    assert "예제 은행입니다." in tts.texts  # telebanking_ko's, in Korean
    assert len(tts.asked) == len(set(tts.asked))  # shared by flows: made once a language
    before = len(tts.texts)
    edit_file(flows_dir / "telebanking.yaml", "Welcome to Example Bank.", "Welcome back.")
    assert await app[FLOWS].reload_aside() == ["telebanking"]
    await settled(app)
    assert tts.texts[before:] == ["Welcome back."]  # the reloaded flow's new prompt only
    flow = app[FLOWS].current["telebanking"]
    await app[PROMPTS].mulaw(flow.nodes["welcome"].spec.static, flow.language, flow.voice)
    assert len(tts.texts) == before + 1  # the turn synthesises nothing


async def test_only_stream_flows_are_warmed_by_default(start: Start, tts: CountingTTS) -> None:
    _, app = await start()  # `speech: vosk` flows are on the stream; Twilio speaks the others'
    await settled(app)
    assert "예제 은행입니다." in tts.texts  # telebanking_ko
    # and prompts in a language Twilio has no voice for (bank_ru_kk's Kazakh), not its Russian
    assert {language for _, language, _ in tts.asked} == {"ko-KR", "kk-KZ"}
    assert "Мысал Банкке қош келдіңіз." in tts.texts
