"""Twilio's side of a Media Stream, for functional tests: a caller on a real WebSocket.

`MediaStream.open(call)` takes a call that `TwilioSim` left in a `<Connect><Stream>`,
opens the stream's WebSocket with the handshake signed as Twilio signs it (over the
`wss://` URL, no form), and sends `connected` and `start` (the `<Parameter>`s as
`customParameters`). From then on a clock sends the caller's audio as Twilio does:
one `media` message per 20 ms frame of 8 kHz mu-law, line noise when the caller says
nothing, the utterances a test queues (`say`), and `dtmf` messages between frames
(`press`). The clock runs faster than real time (`speed`; an utterance at `talk_speed`,
so the recogniser is fed about as a real call feeds it), and the media timestamps are
the stream's own time, so the server's timers run on it.

What the server sends is played as Twilio plays it: one frame of its audio per frame
of the caller's, a `mark` echoed once the audio sent before it has played, `clear`
dropping what is held and echoing the marks it held at once. `prompts` holds the
audio played before each mark, `cut` the prompts a `clear` stopped (the audio of
them that played), `clears` the stream times of the clears.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from tests.functional.twilio_sim import ACCOUNT_SID, Call
from tests.voices import Utterance, Voices

FRAME = 160  # mu-law bytes in 20 ms
SPEED = 20.0  # the clock's speed while the caller is quiet (times real time)
TALK_SPEED = 2.0  # and while an utterance is streamed


@dataclass
class Played:
    """A prompt as the caller heard it: its mark, the audio played before the mark, and
    the stream time the mark was echoed at."""

    mark: str
    audio: bytes
    at: float


class MediaStream:
    """One call's Media Stream, Twilio's side (see the module's docstring)."""

    def __init__(self, call: Call, ws: aiohttp.ClientWebSocketResponse, voices: Voices) -> None:
        self.call, self.ws = call, ws
        self.sid = "MZ" + uuid.uuid4().hex
        self.speed, self.talk_speed = SPEED, TALK_SPEED
        self.clock_ms = 0  # the timestamp of the next frame
        self.sequence = itertools.count(1)
        self.noise = voices.silence(8.0).ulaw
        self.noise_at = 0
        self.source: deque[bytes | str] = deque()  # the caller's frames, and keys ("dtmf:1")
        self.outbound: deque[bytes | str] = deque()  # what the server sent, not yet played
        self.to_echo: list[str] = []  # marks to send back with the next frame
        self.audio = bytearray()  # played since the last mark
        self.prompts: list[Played] = []
        self.cut: list[Played] = []
        self.clears: list[float] = []
        self.frames_received = 0
        self.closed_by_server = False
        self.stopped = False
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(cls, call: Call, voices: Voices, *, signature: str | None = None) -> MediaStream:
        """Connect the stream of the `<Connect>` the call is in, and start it."""
        url, parameters = stream_of(call)
        ws = await connect(call, url, signature)
        stream = cls(call, ws, voices)
        await stream.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await stream.send(
            {
                "event": "start",
                "sequenceNumber": str(next(stream.sequence)),
                "start": {
                    "accountSid": ACCOUNT_SID,
                    "streamSid": stream.sid,
                    "callSid": call.sid,
                    "tracks": ["inbound"],
                    "customParameters": parameters,
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
                "streamSid": stream.sid,
            }
        )
        stream._tasks = [asyncio.create_task(stream._receive()), asyncio.create_task(stream._run())]
        return stream

    # -- what the caller does ------------------------------------------------------------------

    def say(self, utterance: Utterance) -> None:
        """Queue an utterance: streamed after what is queued already."""
        ulaw = utterance.ulaw
        self.source.extend(
            ulaw[i : i + FRAME].ljust(FRAME, b"\xff") for i in range(0, len(ulaw), FRAME)
        )

    def press(self, keys: str, gap_frames: int = 10) -> None:
        """Queue keys, `gap_frames` frames of line noise before each (a tone is ~100 ms)."""
        for key in keys:
            self.source.extend([self._noise()] * gap_frames)
            self.source.append(f"dtmf:{key}")

    async def said(self, timeout: float = 30.0) -> None:
        """Wait until everything queued was streamed."""
        await self.until(lambda: not self.source, timeout)

    async def hang_up(self) -> None:
        """The caller hangs up: Twilio sends `stop` and closes the socket."""
        await self._stop_clock()
        if not self.ws.closed:
            stop = {"accountSid": ACCOUNT_SID, "callSid": self.call.sid}
            await self.send(
                {"event": "stop", "sequenceNumber": "0", "streamSid": self.sid, "stop": stop}
            )
            await self.ws.close()

    async def close(self) -> None:
        await self._stop_clock()
        if not self.ws.closed:
            await self.ws.close()

    # -- waiting for the server ----------------------------------------------------------------

    @property
    def clock(self) -> float:
        """Stream seconds so far."""
        return self.clock_ms / 1000

    async def until(self, check: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Poll `check` until it is truthy (bounded in wall time)."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"still false after {timeout} s: {check}; prompts played "
                    f"{len(self.prompts)}, clears {self.clears}, closed {self.closed_by_server}"
                )
            await asyncio.sleep(0.005)

    async def played(self, count: int, timeout: float = 30.0) -> Played:
        """Wait until `count` prompts in all have played; the last one."""
        await self.until(lambda: len(self.prompts) >= count, timeout)
        return self.prompts[count - 1]

    async def server_closed(self, timeout: float = 30.0) -> None:
        """Wait until the server closed the stream (the flow ended or handed over)."""
        await self.until(lambda: self.closed_by_server, timeout)
        await self._stop_clock()

    # -- Twilio's side -------------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(orjson.dumps(message).decode())

    def _noise(self) -> bytes:
        frame = self.noise[self.noise_at : self.noise_at + FRAME]
        self.noise_at = (self.noise_at + FRAME) % (len(self.noise) - FRAME)
        return frame

    async def _run(self) -> None:
        """The clock: a frame of the caller's audio, then one of the server's played."""
        chunk = itertools.count(1)
        while not self.ws.closed:
            talking = bool(self.source)
            while self.source and isinstance(self.source[0], str):
                key = str(self.source.popleft()).removeprefix("dtmf:")
                dtmf = {"track": "inbound_track", "digit": key}
                await self.send(
                    {
                        "event": "dtmf",
                        "streamSid": self.sid,
                        "sequenceNumber": str(next(self.sequence)),
                        "dtmf": dtmf,
                    }
                )
            head = self.source.popleft() if self.source else self._noise()
            assert isinstance(head, bytes)
            media = {
                "track": "inbound",
                "chunk": str(next(chunk)),
                "timestamp": str(self.clock_ms),
                "payload": base64.b64encode(head).decode(),
            }
            try:
                await self.send(
                    {
                        "event": "media",
                        "sequenceNumber": str(next(self.sequence)),
                        "media": media,
                        "streamSid": self.sid,
                    }
                )
                self.clock_ms += 20
                await self._play_one()
            except ConnectionError:  # the server closed the stream meanwhile
                return
            await asyncio.sleep(0.02 / (self.talk_speed if talking else self.speed))

    async def _play_one(self) -> None:
        """Twilio plays a frame of what it holds, and echoes the marks that come due."""
        for name in self.to_echo:
            await self._echo(name)
        self.to_echo.clear()
        if self.outbound and isinstance(self.outbound[0], bytes):
            self.audio += self.outbound.popleft()
        while self.outbound and isinstance(self.outbound[0], str):
            await self._echo(str(self.outbound.popleft()))

    async def _echo(self, name: str) -> None:
        self.prompts.append(Played(name, bytes(self.audio), self.clock))
        self.audio.clear()
        mark = {"name": name}
        await self.send(
            {
                "event": "mark",
                "sequenceNumber": str(next(self.sequence)),
                "streamSid": self.sid,
                "mark": mark,
            }
        )

    async def _receive(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            sent = orjson.loads(message.data)
            assert sent.get("streamSid") == self.sid, sent
            event = sent["event"]
            if event == "media":
                payload = base64.b64decode(sent["media"]["payload"])
                assert len(payload) == FRAME, f"a media message of {len(payload)} bytes"
                self.frames_received += 1
                self.outbound.append(payload)
            elif event == "mark":
                self.outbound.append(sent["mark"]["name"])
            elif event == "clear":
                self.clears.append(self.clock)
                held = [m for m in self.outbound if isinstance(m, str)]
                self.cut.append(Played(",".join(held), bytes(self.audio), self.clock))
                self.audio.clear()
                self.outbound.clear()
                self.to_echo.extend(held)
            else:
                raise AssertionError(f"Twilio does not take a {event!r} message: {sent}")
        if not self.stopped:
            self.closed_by_server = True

    async def _stop_clock(self) -> None:
        self.stopped = True
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def stream_of(call: Call) -> tuple[str, dict[str, str]]:
    """The `<Stream>`'s URL and `<Parameter>`s of the `<Connect>` the call is in."""
    stream = call.connect.find("Stream")
    assert stream is not None, "a <Connect> without a <Stream>"
    url = stream.get("url", "")
    parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return url, parameters


async def connect(
    call: Call, url: str, signature: str | None = None
) -> aiohttp.ClientWebSocketResponse:
    """Open the stream's WebSocket at the call's server, signed over the public `url`."""
    sim = call.sim
    headers = {"X-Twilio-Signature": signature if signature is not None else sim.sign(url, {})}
    path = urlsplit(url).path.removeprefix(urlsplit(sim.public_url).path)
    target = (call.base_url or sim.base_url) + path
    return await sim.session.ws_connect(target, headers=headers)
