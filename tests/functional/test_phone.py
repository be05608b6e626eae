"""`/phone`, the softphone, in headless Chromium (Debian's chromium and chromium-driver,
driven by selenium) against the real app: Chromium's fake microphone plays a Korean
caller (espeak-ng) into the page's AudioWorklet, which streams it to the admin listener's
WebSocket in the Media Streams protocol, where the real Korean Vosk model hears it, on
flows/telebanking_ko.yaml. The keypad, the keyboard and the typed "speech" box drive the
same call; hanging up from the page leaves the call abandoned. Its calls are rehearsals:
sessions in memory, never recorded nor counted. The page's codec and resampler are
checked against the server's in the browser itself.

The server runs on this test's event loop, so every selenium call (blocking HTTP to the
driver) runs in a thread: the loop serves the page meanwhile.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ivr.engine.session import Session
from ivr.server import RECOGNITION, STREAMS
from ivr.speech.audio import PCM_TO_ULAW, ULAW_TO_PCM
from ivr.speech.vosk_speech import VoskSpeech
from tests.chromium import CHROMIUM_MISSING, chromium, installed
from tests.functional.conftest import CLOSED, MakeServer, Server
from tests.functional.twilio_sim import wait_until
from tests.voices import Utterance, Voices

FLOW = "telebanking_ko"
WAIT = 60.0  # seconds, at most, for anything the call does (real time: audio plays)
WAV_RATE = 48000

Browser = Callable[..., Any]


class Page:
    """The softphone page in a browser, driven from the event loop."""

    def __init__(self, driver: Any, server: Server, shots: Path, host: str | None = None) -> None:
        self.driver, self.server, self.shots = driver, server, shots
        self.url = server.admin_url
        if host is not None:
            self.url = f"http://{host}:{server.config.admin[1]}"

    async def do(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def js(self, script: str, *args: Any) -> Any:
        return await self.do(self.driver.execute_script, script, *args)

    async def open(self) -> None:
        await self.do(self.driver.get, f"{self.url}/phone?flow={FLOW}")

    async def click(self, selector: str) -> None:
        from selenium.webdriver.common.by import By

        element = await self.do(self.driver.find_element, By.CSS_SELECTOR, selector)
        await self.do(element.click)

    async def type(self, selector: str, text: str) -> None:
        from selenium.webdriver.common.by import By

        element = await self.do(self.driver.find_element, By.CSS_SELECTOR, selector)
        await self.do(element.send_keys, text)

    async def call(self) -> str:
        """Press Call; the call's sid once the server has started it."""
        await self.click("#call")

        async def sid() -> str | None:
            return await self.js("return window.ivrPhone.callSid || null")

        return await wait_until(sid, timeout=WAIT)

    async def transcript(self) -> list[str]:
        return await self.js(
            "return [...document.querySelectorAll('#transcript li')].map(li => li.textContent)"
        )

    async def text(self, selector: str) -> str:
        return await self.js(f"return document.querySelector('{selector}').textContent")

    async def until_text(self, selector: str, part: str) -> str:
        async def shown() -> str | None:
            text = await self.text(selector)
            return text if part in text else None

        return await wait_until(shown, timeout=WAIT)

    async def closed(self) -> None:
        """Wait until the call's WebSocket has closed."""

        async def over() -> bool:
            return await self.js("return window.ivrPhone.events.some(e => e.type === 'closed')")

        await wait_until(over, timeout=WAIT)

    async def errors(self) -> list[dict[str, Any]]:
        logs = await self.do(self.driver.get_log, "browser")
        return [e for e in logs if e["level"] in ("SEVERE", "WARNING")]

    async def screenshot(self, name: str) -> None:
        """Kept with the test's temporary files (pytest keeps the last runs'), out of git."""
        await self.do(self.driver.save_screenshot, str(self.shots / f"phone-{name}.png"))


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    """Starts headless Chromium (`microphone`: a WAV its fake microphone plays once; None:
    no microphone at all; `host`: a name for the server, which makes its pages no secure
    context, so no audio); every one started is quit at the end."""
    if not installed():
        pytest.fail(CHROMIUM_MISSING, pytrace=False)
    started: list[Any] = []

    def start(microphone: Path | None, host: str | None) -> Any:
        flags = ["--window-size=1000,900", "--use-fake-ui-for-media-stream"]  # mic allowed
        if microphone is not None:
            flags.append("--use-fake-device-for-media-stream")
            flags.append(f"--use-file-for-fake-audio-capture={microphone}%noloop")
        if host is not None:  # a name, not loopback: the page is no secure context
            flags.append(f"--host-resolver-rules=MAP {host} 127.0.0.1")
        driver = chromium(tmp_path / f"chromium{len(started)}", flags)
        started.append(driver)
        return driver

    async def make(server: Server, microphone: Path | None = None, host: str | None = None) -> Page:
        return Page(await asyncio.to_thread(start, microphone, host), server, tmp_path, host)

    yield make
    for driver in started:
        await asyncio.to_thread(driver.quit)


@pytest.fixture
async def server(make_server: MakeServer, korean_speech: VoskSpeech) -> Server:
    server = await make_server()
    server.app[RECOGNITION].speech = korean_speech
    return server


def wav(path: Path, *utterances: Utterance, lead: float = 2.0) -> Path:
    """The caller's audio as a WAV for Chromium's fake microphone: `lead` seconds of
    silence, then the utterances (8 kHz mu-law) at 48 kHz, 16-bit mono."""
    pcm = np.concatenate(
        [np.zeros(int(lead * 8000))]
        + [np.frombuffer(u.pcm, "<i2").astype(np.float64) for u in utterances]
    )
    at = np.arange(int(len(pcm) * WAV_RATE / 8000)) * (8000 / WAV_RATE)
    samples = np.interp(at, np.arange(len(pcm)), pcm)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(WAV_RATE)
        out.writeframes(np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes())
    return path


async def session(server: Server, sid: str) -> Session:
    """The softphone call's session: a rehearsal's, kept in memory apart from real calls."""
    stored = await server.app[STREAMS].rehearsals.sessions.load(sid)
    assert stored is not None
    return stored.session


async def ended(server: Server, sid: str) -> Session:
    """The call's last session, once it ended; a rehearsal is never recorded."""

    async def over() -> Session | None:
        s = await session(server, sid)
        return s if s.ended else None

    done = await wait_until(over, timeout=WAIT)
    assert sid not in {r.call_sid for r in await server.records()}
    return done


async def listening_at(server: Server, sid: str, *nodes: str) -> Session:
    """Wait until the call listens at one of `nodes` (or asks to confirm)."""

    async def there() -> Session | None:
        s = await session(server, sid)
        return s if s.node in nodes and s.waiting in ("listen", "confirm") else None

    return await wait_until(there, timeout=WAIT)


async def test_a_spoken_option_takes_its_branch_and_hanging_up_abandons(
    server: Server, browser: Browser, voices: Voices, tmp_path: Path
) -> None:
    microphone = wav(tmp_path / "balance.wav", voices.say("예금 잔액"))
    page = await browser(server, microphone)
    await page.open()
    sid = await page.call()
    moved = await listening_at(server, sid, "ask_account")
    if moved.waiting == "confirm":  # unsure of espeak-ng's voice: "예금 잔액, 맞습니까?"
        await page.type("#text", "네\n")
        moved = await listening_at(server, sid, "ask_account")
    assert moved.waiting == "listen" and moved.vars["last_option"] == "balance"
    said = await page.until_text("#transcript", 'understood "예금 잔액"')
    assert 'You: "예금 잔액" (confidence' in said
    assert any(line.startswith("IVR: 예금 잔액은 1번") for line in await page.transcript())
    path = await page.until_text("#path", "ask_account")
    assert path == "welcome → main → ask_account"
    await page.screenshot("spoken")
    await page.click("#hangup")
    await page.closed()
    done = await ended(server, sid)
    assert (done.outcome, tuple(done.path)) == ("abandoned", ("welcome", "main", "ask_account"))
    assert done.direction == "inbound"
    assert "abandoned" in await page.text("#outcome")
    assert await page.errors() == []


async def test_a_keypad_click_and_a_keyboard_key_take_their_branches(
    server: Server, browser: Browser, voices: Voices, tmp_path: Path
) -> None:
    page = await browser(server, wav(tmp_path / "quiet.wav", voices.silence(1.0)))
    await page.open()
    sid = await page.call()
    await listening_at(server, sid, "main")
    await page.click('#keypad [aria-label="3"]')
    hours = await listening_at(server, sid, "anything_else")
    assert hours.tasks == ["hours"] and hours.inputs == {"main:dtmf:match": 1}
    await page.until_text("#transcript", "You pressed 3")
    await page.until_text("#transcript", "IVR: 더 도와드릴 일이")
    await page.type("body", "2")  # the keyboard's 2: "no", goodbye
    await page.closed()  # the server closed the stream after the goodbye played
    assert await page.text("#outcome") == "Ended: contained"
    done = await ended(server, sid)
    assert done.outcome == "contained"
    assert tuple(done.path[-3:]) == ("hours", "anything_else", "goodbye")
    assert await page.errors() == []


async def test_typed_text_takes_its_branch_without_a_speech_model_or_audio(
    make_server: MakeServer, browser: Browser
) -> None:
    server = await make_server(admin_hosts=("phone.test",))  # no speech model at all
    # plain http to a name: no secure context, so no microphone and no AudioWorklet
    page = await browser(server, host="phone.test")
    await page.open()
    sid = await page.call()
    await page.until_text("#transcript", "No audio on a page that is not https")
    await listening_at(server, sid, "main")
    await page.until_text("#transcript", "IVR: 지금은 음성 인식을 사용할 수 없습니다")
    await page.type("#text", "영업 시간\n")
    hours = await listening_at(server, sid, "anything_else")
    assert hours.inputs == {"main:speech:match": 1} and hours.tasks == ["hours"]
    await page.until_text("#transcript", 'You: "영업 시간" (typed): understood "영업 시간"')
    await page.type("#text", "상담원 연결\n")  # the global option: an agent
    await page.closed()
    assert await page.text("#outcome") == "Transferred to +15550199"
    done = await ended(server, sid)
    assert (done.outcome, done.reason) == ("transferred", "global:agent")
    await page.screenshot("typed")
    assert await page.errors() == []


async def test_the_pages_codec_and_resampler_match_the_servers(
    server: Server, browser: Browser
) -> None:
    page = await browser(server)
    await page.open()
    found = await page.js(
        """return (async () => {
        const w = await import('/static/phone-worklet.js');
        const samples = Float32Array.from({length: 65536}, (_, i) => ((i << 16) >> 16) / 32768);
        const codes = Uint8Array.from({length: 256}, (_, i) => i);
        const tone = (hz, rate, n) => Float32Array.from({length: n}, (_, i) =>
            0.5 * Math.sin(2 * Math.PI * hz * i / rate));
        const through = (from, to, signal) => {
          const r = new w.Resampler(from, to);
          const out = [];
          for (let i = 0; i < signal.length; i += 128) {
            r.push(signal.subarray(i, i + 128));
            r.drain(out);
          }
          return out;
        };
        const peak = (xs) => Math.max(...xs.slice(200, -200).map(Math.abs));
        return {
          encoded: Array.from(w.encode(samples)),
          decoded: Array.from(w.decode(codes), (x) => Math.round(x * 32768)),
          down: through(48000, 8000, tone(1000, 48000, 48000)),
          alias: peak(through(48000, 8000, tone(6000, 48000, 48000))),
          up: through(8000, 44100, tone(1000, 8000, 8000)),
        };
        })();"""
    )
    assert found is not None
    unsigned = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    assert found["encoded"] == PCM_TO_ULAW[unsigned].tolist()
    assert found["decoded"] == ULAW_TO_PCM.tolist()
    down, up = np.array(found["down"]), np.array(found["up"])
    assert abs(len(down) - 8000) < 40 and abs(len(up) - 44100) < 40
    for signal, rate in ((down, 8000), (up, 44100)):
        middle = signal[200:-200]
        assert 0.48 < np.abs(middle).max() < 0.52  # the tone passes at its level
        spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle))))
        assert abs(np.argmax(spectrum) * rate / len(middle) - 1000) < 5
    assert found["alias"] < 0.01  # 6 kHz is above 8 kHz's band: filtered out, not folded


async def test_the_page_fits_a_phone_screen_and_names_its_controls(
    server: Server, browser: Browser
) -> None:
    page = await browser(server)
    await page.do(page.driver.set_window_size, 390, 844)
    await page.open()
    fits = await page.js(
        """
        const keys = [...document.querySelectorAll('#keypad button')];
        const named = (el) => el.getAttribute('aria-label') || el.textContent.trim()
            || (el.id && document.querySelector(`label[for="${el.id}"]`)?.textContent);
        return {
          overflow: document.documentElement.scrollWidth - window.innerWidth,
          keys: keys.map((k) => [k.getAttribute('aria-label'), k.getBoundingClientRect().height]),
          unnamed: [...document.querySelectorAll('button, select, input')]
              .filter((el) => !named(el) && !el.closest('label')).map((el) => el.outerHTML),
        };
        """
    )
    assert fits["overflow"] <= 0
    assert [name for name, _ in fits["keys"]] == [*"123456789", "star", "0", "pound"]
    assert all(height >= 44 for _, height in fits["keys"])  # a finger's width
    assert fits["unnamed"] == []
    await page.screenshot("narrow")
    assert await page.errors() == []


async def test_a_voicemail_ends_the_softphones_call(server: Server, browser: Browser) -> None:
    # the softphone records nothing: a `record` node ends its call there (abandoned), where
    # on Twilio the <Record> would follow the stream
    server.set_hours(CLOSED)
    page = await browser(server)
    await page.do(page.driver.get, f"{page.url}/phone?flow=telebanking")
    sid = await page.call()
    await listening_at(server, sid, "main")
    await page.type("body", "0")  # an agent, out of hours: the voicemail
    await page.closed()
    assert "A recording (closed)" in await page.text("#outcome")
    done = await ended(server, sid)
    assert (done.outcome, tuple(done.path[-2:])) == ("abandoned", ("check_hours", "closed"))
    assert await page.errors() == []
