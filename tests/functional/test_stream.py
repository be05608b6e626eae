"""The voice path over a real WebSocket: Korean callers (espeak-ng) on a Media Stream to the
running server, recognised by the real Korean Vosk model, on flows/telebanking_ko.yaml.

The server is the real app on loopback; Twilio's side is `TwilioSim` (webhooks) and
`MediaStream` (the stream: tests/functional/stream_sim.py). The stream's clock runs
faster than real time; the server's timers run on it, so what is asserted does not
depend on the machine's speed. The Korean model is the test session's (loaded once) and
not one per server: each server's recognition service is given it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence

import aiohttp
import pytest

from ivr.engine.session import Session
from ivr.flow.model import Part, Text
from ivr.server import FLOWS, HOOKS, PROMPTS, RECOGNITION
from ivr.speech.recognizer import Heard
from ivr.speech.vosk_speech import VoskSpeech
from ivr.telephony.media import frames
from ivr.telephony.stream import SPEECH_DOWN
from tests.functional.conftest import BANK, MakeServer, Server
from tests.functional.stream_sim import MediaStream, connect, stream_of
from tests.functional.twilio_sim import Call, TwilioSim, wait_until
from tests.voices import Voices

KO = "+15550130"  # telebanking_ko's number
CALLER = "+821012345678"
WELCOME = (Text("예제 은행입니다."),)
GOODBYE = (Text("이용해 주셔서 감사합니다. 안녕히 계세요."),)


@pytest.fixture
async def server(make_server: MakeServer, korean_speech: VoskSpeech) -> Server:
    server = await make_server()
    server.app[RECOGNITION].speech = korean_speech
    return server


@pytest.fixture
async def sim(server: Server) -> AsyncIterator[TwilioSim]:
    async with server.twilio() as twilio:
        yield twilio


@pytest.fixture
async def streams() -> AsyncIterator[list[MediaStream]]:
    """Streams a test opened, closed at its end."""
    opened: list[MediaStream] = []
    yield opened
    for stream in opened:
        await stream.close()


async def call_in(
    sim: TwilioSim, voices: Voices, streams: list[MediaStream], to: str = KO
) -> tuple[Call, MediaStream]:
    """A new call, answered with `<Connect><Stream>`, and its stream opened."""
    call = await sim.start(to, CALLER)
    assert call.waiting == "connect", call.documents
    stream = await MediaStream.open(call, voices)
    streams.append(stream)
    return call, stream


async def session(server: Server, sid: str) -> Session:
    stored = await server.app[HOOKS].sessions.load(sid)
    assert stored is not None
    return stored.session


async def listening_at(server: Server, sid: str, node: str) -> Session:
    """Wait until the call listens at `node`."""

    async def there() -> Session | None:
        s = await session(server, sid)
        return s if s.node == node and s.waiting == "listen" else None

    return await wait_until(there, timeout=30)


async def audio_of(server: Server, parts: Sequence[Part], language: str = "ko-KR") -> bytes:
    """A prompt's audio as the stream sends it: 20 ms frames, the last padded."""
    return b"".join(frames(await server.app[PROMPTS].mulaw(parts, language, None)))


async def choose(
    server: Server, stream: MediaStream, voices: Voices, sid: str, phrase: str, then: str
) -> bool:
    """Say a menu's phrase and wait until the call listens at `then`. The recogniser's
    confidence in espeak-ng's voice varies with where the utterance falls in the line
    noise; below the flow's `confirm_below` the menu asks "..., 맞습니까?" and the caller
    says yes. True when it asked."""
    stream.say(voices.say(phrase))

    async def moved() -> Session | None:
        s = await session(server, sid)
        return s if s.waiting == "confirm" or (s.node, s.waiting) == (then, "listen") else None

    asked = (await wait_until(moved, timeout=30)).waiting == "confirm"
    if asked:
        stream.say(voices.say("네"))
        await listening_at(server, sid, then)
    return asked


async def test_a_spoken_option_takes_its_branch(server, sim, voices, streams):
    call, stream = await call_in(sim, voices, streams)
    welcome = await stream.played(1)
    assert welcome.audio == await audio_of(server, WELCOME)  # every frame, then its mark
    await stream.played(2)  # the menu
    confirmed = await choose(server, stream, voices, call.sid, "예금 잔액", "ask_account")
    asked = await session(server, call.sid)
    assert asked.vars["last_option"] == "balance"
    assert asked.inputs == {"main:speech:match": 1}  # after a "네" when it was unsure
    assert confirmed == any("unsure" in line for line in asked.transcript)
    heard = len(stream.prompts)
    await stream.played(heard + 1)  # the account number's prompt
    stream.press("12345674#")
    done = await listening_at(server, call.sid, "anything_else")
    assert done.tasks == ["balance_inquiry"]
    await stream.played(heard + 3)  # the balance, then "anything else?"
    stream.say(voices.say("아니요"))
    await stream.server_closed()  # after the goodbye was played, in full
    assert stream.prompts[-1].audio == await audio_of(server, GOODBYE)
    await call.stream_closed()  # <Connect action>: what the flow ended with
    assert call.end == "hangup"
    record = await server.record(call.sid)
    assert record.outcome == "contained"
    assert record.path[-2:] == ("anything_else", "goodbye")
    assert record.inputs["ask_account:dtmf:match"] == 1
    assert record.inputs["anything_else:speech:match"] == 1
    assert any(k.startswith("main:speech:") for k in record.inputs)


async def test_a_key_takes_its_branch(server, sim, voices, streams):
    call, stream = await call_in(sim, voices, streams)
    await stream.played(2)
    stream.press("3")
    hours = await listening_at(server, call.sid, "anything_else")
    assert hours.tasks == ["hours"]
    assert hours.inputs == {"main:dtmf:match": 1}
    await stream.played(4)
    stream.press("2")
    await stream.server_closed()
    await call.stream_closed()
    record = await server.record(call.sid)
    assert (record.outcome, call.end) == ("contained", "hangup")


async def test_speaking_during_a_prompt_clears_it(server, sim, voices, streams):
    call, stream = await call_in(sim, voices, streams)
    await stream.played(1)
    await stream.until(lambda: len(stream.audio) >= 8000)  # a second of the menu heard
    stream.say(voices.say("영업 시간"))
    await stream.until(lambda: stream.clears)
    menu = await audio_of(server, _menu_prompt(server))
    cut = stream.cut[0].audio
    assert 8000 <= len(cut) < len(menu) and menu.startswith(cut)  # stopped part-way
    hours = await listening_at(server, call.sid, "anything_else")
    assert hours.tasks == ["hours"]
    # a transfer closes the stream; the <Connect> action dials the agent
    await stream.played(3)  # "영업 시간은 ...", "더 도와드릴 일이 ..."
    stream.say(voices.say("상담원 연결"))
    await stream.server_closed()
    await call.stream_closed()
    assert call.transfer is not None and call.transfer.tag == "Dial"
    assert [(n.tag, n.text) for n in call.transfer] == [("Number", "+15550199")]
    record = await server.record(call.sid)
    assert (record.outcome, record.reason, record.reason_detail) == (
        "transferred",
        "global",
        "agent",
    )


async def test_silence_reprompts_then_goes_to_on_fail(server, sim, voices, streams):
    call, stream = await call_in(sim, voices, streams)
    menu = await stream.played(2)
    # nothing said: the no-input message comes the node's timeout (5 s of the stream's
    # time) after the menu finished playing, then the menu again
    sorry = await stream.played(3)
    assert sorry.audio == await audio_of(server, (Text("죄송합니다. 말씀을 듣지 못했습니다."),))
    assert sorry.at - menu.at >= 5.0 + len(sorry.audio) / 8000
    await stream.server_closed()  # two re-prompts later, on_fail: the agent
    await call.stream_closed()
    assert call.transfer is not None and call.transfer.tag == "Dial"
    record = await server.record(call.sid)
    assert (record.outcome, record.reason, record.reason_detail) == (
        "transferred",
        "on_fail",
        "main",
    )
    assert record.inputs == {"main:no_input": 3}


async def test_twilios_socket_takes_no_typed_speech(server, sim, voices, streams):
    # the softphone's `ivr.text` is the admin socket's: on Twilio's it is not a message
    call, stream = await call_in(sim, voices, streams)
    await stream.played(2)
    await stream.send({"event": "ivr.text", "streamSid": stream.sid, "text": "영업 시간"})
    stream.press("1")
    main = await listening_at(server, call.sid, "ask_account")
    assert main.inputs == {"main:dtmf:match": 1}
    await stream.hang_up()


@pytest.mark.parametrize("how", ["stop", "socket closed"])
async def test_hanging_up_mid_stream_is_abandoned(server, sim, voices, streams, how):
    call, stream = await call_in(sim, voices, streams)
    await stream.played(1)
    await stream.until(lambda: len(stream.audio) >= 4000)  # half a second into the menu
    if how == "stop":
        await stream.hang_up()
    else:
        await stream.close()
    record = await server.record(call.sid)
    assert record.outcome == "abandoned"
    assert record.path == ("welcome", "main")
    await call.hangup()  # Twilio's status callback: the record learns the status only

    async def told() -> bool:
        r = await server.record(call.sid)
        return r.status == "completed" and r.outcome == "abandoned"

    await wait_until(told)


class BrokenSpeech:
    """Recognisers that raise once they hear audio (a model that crashes), or that fall
    behind the audio (`SlowRecognizer`)."""

    def __init__(self, real: VoskSpeech, kind: type[BrokenRecognizer] | None = None) -> None:
        self.real, self.kind = real, kind or BrokenRecognizer

    def languages(self) -> Sequence[str]:
        return self.real.languages()

    def recognizer(self, language: str) -> BrokenRecognizer:
        return self.kind()


class BrokenRecognizer:
    def expect(self, phrases: Sequence[str] | None) -> None:
        pass

    def feed(self, pcm: bytes) -> None:
        raise RuntimeError("the model broke")

    def finish(self) -> Heard:
        raise RuntimeError("the model broke")


class SlowRecognizer(BrokenRecognizer):
    """A recogniser far slower than the audio: the call's queue grows past `max_lag`."""

    def feed(self, pcm: bytes) -> None:
        time.sleep(0.2)  # 20 ms of audio: ten times slower than real time


@pytest.mark.parametrize(
    ("kind", "why"), [(BrokenRecognizer, "raised"), (SlowRecognizer, "behind")]
)
async def test_a_recognizer_that_raises_or_falls_behind_falls_back_to_keys(
    server, sim, voices, streams, kind, why, caplog
):
    server.app[RECOGNITION].speech = BrokenSpeech(server.app[RECOGNITION].speech, kind)
    call, stream = await call_in(sim, voices, streams)
    await stream.played(2)
    stream.say(voices.say("예금 잔액 조회 부탁 드립니다"))
    notice = await stream.played(3)  # the flow's defaults.speech_down
    flow = server.app[FLOWS].get("telebanking_ko")
    assert flow is not None and flow.speech_down is not None
    assert notice.audio == await audio_of(server, flow.speech_down)
    main = await session(server, call.sid)
    assert (main.node, main.waiting, main.inputs) == ("main", "listen", {})  # nothing taken
    assert any(why in r.getMessage() for r in caplog.records), caplog.text
    stream.press("1")
    await listening_at(server, call.sid, "ask_account")
    await stream.played(4)
    stream.say(voices.say("예금 잔액"))  # keys only now: the voice starts nothing
    await stream.said()
    assert not stream.clears
    stream.press("12345674#")
    await listening_at(server, call.sid, "anything_else")
    await stream.hang_up()


async def test_a_bad_handshake_signature_is_refused(server, sim, voices, streams):
    call = await sim.start(KO, CALLER)
    url, _ = stream_of(call)
    for signature in ("bad", "", sim.sign(url.replace("/stream", "/other"), {})):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await connect(call, url, signature)
        assert refused.value.status == 403
    ws = await connect(call, url)  # Twilio's own is taken
    await ws.close()


async def test_speech_vosk_streams_every_flow_and_without_a_model_keys_work(
    make_server, voices, streams
):
    server = await make_server(speech="vosk")  # no speech model configured
    async with server.twilio() as twilio:
        call, stream = await call_in(twilio, voices, streams, to=BANK)  # telebanking
        notice = await stream.played(1)  # no model for en-US: keys only, said first
        assert notice.audio == await audio_of(server, SPEECH_DOWN.parts, "en-US")
        await stream.played(3)  # welcome, menu
        stream.press("1")
        await listening_at(server, call.sid, "ask_account")
        await stream.hang_up()
        record = await server.record(call.sid)
        assert (record.flow_id, record.outcome) == ("telebanking", "abandoned")


def _menu_prompt(server: Server) -> tuple[Part, ...]:
    flow = server.app[FLOWS].get("telebanking_ko")
    assert flow is not None
    prompt = flow.nodes["main"].spec.prompt.static
    assert prompt is not None
    return prompt


async def test_messages_twilio_would_never_send_leave_the_call_as_it_was(
    server, sim, voices, streams
):
    """Malformed messages are logged and skipped, and a timestamp that leaps ahead moves
    the call's clock one step only: the call's timers and keys go on (the tester's)."""
    call, stream = await call_in(sim, voices, streams)
    await stream.played(1)
    bad = [
        {"event": "stop", "stop": 7},
        {"event": "start", "start": [1, 2]},
        {"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA1", "mediaFormat": 5}},
        {"event": "media", "media": {"payload": "AAAA", "timestamp": 10**12}},
        {"event": "media", "media": [1]},
        {"event": "dtmf", "dtmf": "1"},
    ]
    for message in bad:
        await stream.send(message)
    await stream.played(2)  # the menu still plays to its end
    stream.press("3")
    hours = await listening_at(server, call.sid, "anything_else")
    assert hours.tasks == ["hours"]
    await stream.hang_up()
    record = await server.record(call.sid)
    assert record.outcome == "abandoned"


async def test_one_stream_a_call_and_a_start_in_time(server, sim, voices, streams, monkeypatch):
    """A second stream for a call in progress (a replayed handshake and start) is closed
    without touching the call; a stream that never sends `start` is closed after
    START_WAIT; a start for a flow that is not loaded is counted as flow "unknown"."""
    from ivr.telephony import stream as stream_module

    call, first = await call_in(sim, voices, streams)
    await first.played(1)
    url, parameters = stream_of(call)
    second = await connect(call, url)
    start = {"streamSid": "MZ" + "2" * 32, "callSid": call.sid, "customParameters": parameters}
    await second.send_json({"event": "start", "start": start})
    closed = await second.receive(timeout=10)
    assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    first.press("3")  # the first stream's call goes on
    assert (await listening_at(server, call.sid, "anything_else")).tasks == ["hours"]

    monkeypatch.setattr(stream_module, "START_WAIT", 0.3)
    idle = await connect(call, url)
    assert (await idle.receive(timeout=10)).type in (
        aiohttp.WSMsgType.CLOSE,
        aiohttp.WSMsgType.CLOSED,
    )

    other = await sim.start(KO, CALLER)
    lost = await connect(other, stream_of(other)[0])
    unknown = {**stream_of(other)[1], "flow": "../../etc/passwd"}
    start = {"streamSid": "MZ" + "3" * 32, "callSid": other.sid, "customParameters": unknown}
    await lost.send_json({"event": "start", "start": start})
    record = await server.record(other.sid)
    assert (record.flow_id, record.outcome) == ("unknown", "failed")
    await lost.close()
    await first.hang_up()
