"""Limits (docs/reliability.md): calls in progress per process (IVR_MAX_CALLS), and the size
and rate of the messages on every WebSocket (Twilio's Media Streams and the admin
listener's softphone), over real loopback HTTP and WebSockets. (Calls a minute per number:
test_hostile_http.py.)"""

from __future__ import annotations

import logging
import time
from typing import Any

import aiohttp
import orjson
import pytest

from ivr.engine.apologies import SAID
from ivr.server import HOOKS, STREAMS
from ivr.telephony.stream import MAX_MESSAGE, StreamCall
from tests.functional.conftest import BANK, MakeServer, Server, metric
from tests.functional.stream_sim import connect, stream_of
from tests.functional.twilio_sim import Call, wait_until

KO = "+15550130"  # telebanking_ko's number
BUSY = SAID["lines_busy"]
FAILED = SAID["failed"]


def number(n: int) -> str:
    return f"+1555000{n:04d}"  # a number a call, so IVR_CALLER_LIMIT never counts


async def test_past_max_calls_a_new_call_hears_all_lines_are_busy(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
):
    """A new call past IVR_MAX_CALLS in progress hears that all lines are busy, in its
    flow's language, and is hung up on, recorded failed; a call that ends frees its
    place, and so does one whose status callback never comes, once the reaper closes it."""
    caplog.set_level(logging.WARNING)
    server = await make_server(max_calls=2)
    async with server.twilio() as sim:
        first, second = await sim.start(BANK, number(1)), await sim.start(BANK, number(2))
        assert first.waiting == second.waiting == "gather"
        refused = await sim.start(BANK, number(3))
        assert (refused.end, refused.heard) == ("hangup", [BUSY["en"]])
        korean = await sim.start(KO, number(4))  # refused before its Media Stream
        assert (korean.end, korean.heard) == ("hangup", [BUSY["ko"]])
        record = await server.record(refused.sid)
        assert (record.outcome, record.error) == ("failed", "lines_busy")
        rejected = metric(await server.metrics(), "ivr_webhook_rejected_total", reason="max_calls")
        assert rejected == 2
        assert "refused a new call: 2 calls in progress (IVR_MAX_CALLS)" in caplog.text

        await first.hangup()  # its status callback: a place is free
        third = await sim.start(BANK, number(5))
        assert third.waiting == "gather"
        assert (await sim.start(BANK, number(6))).end == "hangup"  # full again
        await server.app[HOOKS].reap(time.time() + 1)  # IVR_REAP_AFTER later, no callback
        assert (await sim.start(BANK, number(7))).waiting == "gather"


async def test_a_call_another_process_ended_leaves_the_count(make_server: MakeServer):
    """A call started here whose end another process saw (its status callback went there)
    leaves this process's count at the reaper's next round (`Calls.recount`)."""
    server = await make_server(max_calls=1)
    hooks = server.app[HOOKS]
    async with server.twilio() as sim:
        call = await sim.start(BANK, number(1))
        stored = await hooks.sessions.load(call.sid)
        assert stored is not None
        ended = stored.session.copy()
        ended.outcome, ended.ended_at = "abandoned", time.time()
        await hooks.sessions.save(ended, stored.reply)  # as another process would
        assert (await sim.start(BANK, number(2))).end == "hangup"
        assert await hooks.calls.recount() == 1
        assert (await sim.start(BANK, number(3))).waiting == "gather"


# -- WebSockets ----------------------------------------------------------------------------


async def twilio_stream(server: Server, sim: Any) -> tuple[Call, aiohttp.ClientWebSocketResponse]:
    """A call on telebanking's Media Stream, started: its first turn saved."""
    call = await sim.start(BANK, number(1))
    url, parameters = stream_of(call)
    ws = await connect(call, url)
    start = {"streamSid": "MZ" + "1" * 32, "callSid": call.sid, "customParameters": parameters}
    await ws.send_json({"event": "start", "start": start})

    async def started() -> bool:
        return await server.app[HOOKS].sessions.load(call.sid) is not None

    await wait_until(started)
    return call, ws


async def softphone(server: Server, http: aiohttp.ClientSession) -> Any:
    """A softphone call on telebanking, started."""
    ws = await http.ws_connect(server.admin_url + "/phone/ws", origin=server.admin_url)
    start = {"streamSid": "", "callSid": "", "customParameters": {"flow": "telebanking"}}
    await ws.send_json({"event": "start", "start": start})
    streams = server.app[STREAMS]

    async def started() -> StreamCall | None:
        return next((c for c in streams.open if c.session and c.session.turn), None)

    await wait_until(started)
    return ws


def media(n: int) -> str:
    frame = {"track": "inbound", "chunk": str(n), "timestamp": str(20 * n), "payload": "/w=="}
    return orjson.dumps({"event": "media", "streamSid": "MZ", "media": frame}).decode()


async def closed(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    """What the server sent until it closed the socket (its close code: `ws.close_code`)."""
    sent = []
    while True:
        message = await ws.receive(timeout=30)
        if message.type != aiohttp.WSMsgType.TEXT:
            return sent
        sent.append(orjson.loads(message.data))


async def break_limit(ws: aiohttp.ClientWebSocketResponse, limit: str) -> None:
    if limit == "size":
        await ws.send_str("x" * (MAX_MESSAGE + 1))
        return
    for n in range(2000):  # far more than the 100 a second the server takes
        if ws.closed:
            return
        try:
            await ws.send_str(media(n))
        except ConnectionError:  # closed meanwhile
            return


CLOSE = {"size": (1009, "ws_message_size"), "rate": (1008, "ws_rate")}
LOGGED = {
    "size": "closed a stream: a message over 64 KiB (1009)",
    "rate": "closed a stream sending more than 100 messages a second (1008)",
}


async def test_a_call_on_a_media_stream_counts_until_its_stream_ends(make_server: MakeServer):
    server = await make_server(speech="vosk", max_calls=1)
    async with server.twilio() as sim:
        call, ws = await twilio_stream(server, sim)
        refused = await sim.start(BANK, number(2))
        assert (refused.end, refused.heard) == ("hangup", [BUSY["en"]])
        await ws.close()  # the caller hung up: the call is abandoned, its place free

        async def free() -> bool:
            return server.app[HOOKS].calls.in_progress.count(time.monotonic()) == 0

        await wait_until(free)
        assert (await sim.start(BANK, number(3))).waiting == "connect"
        assert (await server.record(call.sid)).outcome == "abandoned"


@pytest.mark.parametrize("limit", ["size", "rate"])
async def test_a_media_stream_breaking_a_limit_is_closed_and_the_caller_told(
    make_server: MakeServer, limit: str, caplog: pytest.LogCaptureFixture
):
    """A message over 64 KiB closes Twilio's stream with 1009, more than IVR_WS_RATE a
    second with 1008; the call ends failed, and Twilio's <Connect action> request gets
    the flow's apology then a hang-up: the caller, still on the line, hears it."""
    caplog.set_level(logging.WARNING)
    server = await make_server(speech="vosk", ws_rate=100)
    code, reason = CLOSE[limit]
    async with server.twilio() as sim:
        call, ws = await twilio_stream(server, sim)
        await break_limit(ws, limit)
        await closed(ws)
        assert ws.close_code == code
        await call.stream_closed()
        assert (call.end, call.heard[-1]) == ("hangup", FAILED["en"])
        record = await server.record(call.sid)
        assert record.outcome == "failed" and record.error is not None
        assert ("64 KiB" if limit == "size" else "100 messages a second") in record.error
        rejected = metric(await server.metrics(), "ivr_webhook_rejected_total", reason=reason)
        assert rejected == 1
    assert LOGGED[limit] in caplog.text


@pytest.mark.parametrize("limit", ["size", "rate"])
async def test_the_softphone_socket_has_the_same_limits(
    make_server: MakeServer, limit: str, caplog: pytest.LogCaptureFixture
):
    """The admin listener's softphone socket is closed the same way; the page learns the
    call's end from the transcript when the socket still takes it (too fast)."""
    caplog.set_level(logging.WARNING)
    server = await make_server(ws_rate=100)
    code, reason = CLOSE[limit]
    async with aiohttp.ClientSession() as http:
        ws = await softphone(server, http)
        await break_limit(ws, limit)
        sent = await closed(ws)
        assert ws.close_code == code
    if limit == "rate":
        ends = [m for m in sent if m.get("event") == "ivr.transcript" and m.get("kind") == "end"]
        assert ends and ends[-1]["outcome"] == "failed", sent[-3:]
    rejected = metric(await server.metrics(), "ivr_webhook_rejected_total", reason=reason)
    assert rejected == 1
    assert LOGGED[limit] in caplog.text
