"""After the IVR hands over (issue 13), over signed webhooks on loopback: a transfer no agent
takes goes on to a callback offer; the caller comes back for a survey after the agent; a
queue tells its place and lets the caller leave for a callback; the agent hears why the
caller comes; a recording counts once Twilio has stored it. Whatever follows an agent,
the call stays transferred, and is recorded and counted once."""

from __future__ import annotations

import asyncio
import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from ivr.cli import main
from ivr.keys import Keys
from ivr.report.compose import report
from ivr.report.query import Filters, connect
from ivr.server import HOOKS, KEYS
from ivr.store.records import CallRecord
from tests.functional.conftest import (
    BANK,
    CALLER,
    CLOSED,
    OPEN,
    Backend,
    MakeServer,
    Server,
    metric,
    write_file,
)
from tests.functional.twilio_sim import ACCOUNT_SID, Call, Request, TwilioSim, new_call_sid

BOOKED = "Thank you. An agent will call you back. Goodbye."
SURVEY = "Thank you for talking to us."
QUEUE = "+15550300"


def keys_of(server: Server) -> Keys:
    return server.app[KEYS]


async def test_no_answer_offers_a_callback_on_the_callers_number(
    sim: TwilioSim, server: Server, backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    server.set_hours(OPEN)
    call = sim.new_call(BANK, CALLER)
    call.dial_status = "no-answer"
    await call.start()
    heard = await call.press("0")
    assert heard[0] == "Connecting you to an agent."
    assert heard[-1].startswith("Sorry, no agent is free right now.")  # not an apology
    spoken = " ".join(CALLER.lstrip("+"))
    assert await call.press("1") == [
        f"We will call you back on {spoken}. If that is right, press 1 or say yes. "
        "To give another number, press 2 or say no."
    ]
    assert await call.say("yes") == [BOOKED]
    assert call.end == "hangup"
    (posted,) = backend.callbacks
    assert posted["number"] == CALLER and posted["queue"] == "support"
    assert posted["window"] == "today" and posted["transfer"] == "global:agent"
    record = await server.record(call.sid)
    assert (record.outcome, record.reason, record.transfer_result) == (
        "transferred",
        "callback",
        "no-answer",
    )
    assert CALLER.lstrip("+") not in repr(record)  # the number is kept encrypted
    assert record.callback is not None
    assert json.loads(keys_of(server).open(record.callback)) == {
        "number": CALLER,
        "window": "today",
        "queue": "support",
    }
    where = ("--records", server.config.records_url, "--data", str(server.config.data))
    assert main(["calls", "show", call.sid, *where]) == 0
    shown = capsys.readouterr().out
    assert f"callback  call back {'*' * 10}21, today, queue support" in shown
    assert CALLER not in shown
    text = await server.metrics()
    assert metric(text, "ivr_calls_ended_total", flow="telebanking", outcome="transferred") == 1
    told = {"flow": "telebanking", "queue": "support", "result": "no-answer"}
    assert metric(text, "ivr_transfer_results_total", **told) == 1


async def test_after_the_agent_a_survey_is_kept_with_the_call(
    sim: TwilioSim, server: Server, backend: Backend
) -> None:
    server.set_hours(OPEN)
    call = await sim.start(BANK, CALLER)
    heard = await call.press("0")  # the agent takes the call, and hangs up first
    assert call.transfer is not None and call.transfer.tag == "Dial"
    assert heard[-1].startswith(SURVEY)
    assert call.gather.get("numDigits") == "1"
    assert await call.press("9") == [
        "Sorry, I didn't catch that.",
        heard[-1],
    ]
    assert await call.press("5") == ["Thank you for your feedback. Goodbye."]
    record = await server.record(call.sid)
    assert (record.outcome, record.reason, record.transfer_result) == (
        "transferred",
        "global",
        "completed",
    )
    assert record.survey == {"csat": "5"}
    csat = report(connect(server.config.records_url), Filters())["surveys"]["csat"]
    assert (csat["answers"], csat["mean"], csat["counts"]) == (1, 5.0, {"5": 1})
    assert csat["by_outcome"] == {"transferred": {"answers": 1, "mean": 5.0}}
    assert csat["by_queue"] == {"support": {"answers": 1, "mean": 5.0}}
    assert csat["by_reason"] == {"global": {"answers": 1, "mean": 5.0}}
    # one call, one end: counted once although the flow went on after the transfer
    text = await server.metrics()
    assert metric(text, "ivr_calls_ended_total", flow="telebanking", outcome="transferred") == 1


async def test_the_agent_hears_why_the_caller_comes(
    sim: TwilioSim, server: Server, backend: Backend
) -> None:
    server.set_hours(OPEN)
    call = sim.new_call(BANK, CALLER)
    call.dial_status = "busy"
    await call.start()
    await call.press("0")
    dial = call.transfer
    assert dial is not None
    (number,) = list(dial)
    url = number.get("url", "")
    assert url.startswith("/twilio/whisper?")
    assert parse_qs(urlsplit(url).query)["say"] == [
        "A caller from the phone menu. Reason: global:agent."
    ]
    agent_leg = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": new_call_sid(),
        "ParentCallSid": call.sid,
        "CallStatus": "in-progress",
        "Direction": "outbound-dial",
    }
    reply = await sim.post(url, agent_leg)
    assert reply.status == 200
    said = ET.fromstring(reply.text)
    assert [(v.tag, v.text) for v in said] == [
        ("Say", "A caller from the phone menu. Reason: global:agent.")
    ]
    assert said[0].get("voice") == "Polly.Joanna"
    # the text rides in the signed URL: a changed one is refused
    forged = Request(sim.public(url.replace("Reason", "Hello")), agent_leg)
    reply = await sim.send(forged, signature=sim.sign(sim.public(url), agent_leg))
    assert reply.status == 403


QUEUED = """
  agent:
    transfer:
      to: "+15550199"
      queue: support
      say: "Connecting you to an agent."
      wait: {leave_key: "1", music: hold.wav}
      on_leave: callback
      on_no_answer: callback
"""


async def test_a_queue_tells_the_caller_their_place_and_lets_them_leave(
    make_server: MakeServer, flows_dir: Path, backend: Backend
) -> None:
    path = flows_dir / "telebanking.yaml"
    text = path.read_text()
    start = text.index("  agent:\n")
    end = text.index("\n  offer_callback:")
    write_file(path, text[:start] + QUEUED.strip("\n") + "\n" + text[end:])
    server = await make_server(flows=flows_dir)
    server.set_hours(OPEN)
    sim = server.twilio()
    try:
        call = sim.new_call(BANK, CALLER)
        call.hold_transfers = True  # the caller waits in the queue
        await call.start()
        await call.press("0")
        enqueue = call.transfer
        assert enqueue is not None and enqueue.tag == "Enqueue"
        assert enqueue.text == "support"
        wait_url = enqueue.get("waitUrl", "")
        assert wait_url.startswith("/twilio/wait?")
        # Twilio asks the wait URL while the caller waits
        form = {"AccountSid": ACCOUNT_SID, "CallSid": call.sid, "QueuePosition": "3"}
        reply = await sim.post(wait_url, {**form, "AvgQueueTime": "230", "QueueTime": "5"})
        doc = ET.fromstring(reply.text)
        said = [v.text for v in doc if v.tag == "Say"]
        assert said == ["You are number 3 in line.", "Your expected wait is about 4 minutes."]
        (gather,) = [v for v in doc if v.tag == "Gather"]
        assert [(v.tag, v.text) for v in gather] == [
            ("Say", "To be called back instead of waiting, press 1."),
            ("Play", "/audio/hold.wav"),
        ]
        # the caller presses 1: out of the queue
        pressed = await sim.post(gather.get("action", ""), {**form, "Digits": "1"})
        assert [v.tag for v in ET.fromstring(pressed.text)] == ["Leave"]
        other = await sim.post(gather.get("action", ""), {**form, "Digits": "7"})
        assert [v.tag for v in ET.fromstring(other.text)][-1] == "Gather"  # still waiting
        offer = await call.transfer_ends("leave")  # the <Enqueue action> learns it
        assert offer[-1].startswith("We will call you back on")  # on_leave: the offer
        assert call.last_request is not None
        assert call.last_request.params["QueueResult"] == "leave"
        await call.press("1")
        record = await server.record(call.sid)
        assert (record.outcome, record.reason, record.transfer_result) == (
            "transferred",
            "callback",
            "leave",
        )
    finally:
        await sim.session.close()


async def test_a_voicemail_is_a_callback_request_once_it_is_stored(
    sim: TwilioSim, server: Server, backend: Backend
) -> None:
    server.set_hours(CLOSED)
    call = await sim.start(BANK, CALLER)
    await call.press("0")
    rec = call._waiting
    assert rec is not None and rec.get("recordingStatusCallback") == "/twilio/recording"
    recorded = await _record_message(call)
    assert call.last == [BOOKED] and call.end == "hangup"
    assert await _written(server, call.sid) is None  # not final: the recording is not stored
    # but the caller is gone: the call holds no line (IVR_MAX_CALLS)
    assert server.app[HOOKS].calls.in_progress.count(time.monotonic()) == 0
    reply = await call.recording_stored(rec, recorded)
    assert reply is not None and reply.status == 200
    record = await server.record(call.sid)
    assert (record.outcome, record.reason) == ("transferred", "callback")
    assert record.tasks == ("callback_requested",)
    assert record.status == "completed"  # the status callback came before: kept
    assert record.recording is not None
    rid = recorded.params["RecordingSid"]
    assert keys_of(server).open(record.recording).endswith("/Recordings/" + rid)
    # Twilio retrying it changes nothing, counts nothing
    await call.recording_stored(rec, recorded)
    text = await server.metrics()
    assert metric(text, "ivr_calls_ended_total", flow="telebanking", outcome="transferred") == 1


async def test_a_recording_never_stored_resolves_nothing(
    sim: TwilioSim, server: Server, backend: Backend
) -> None:
    server.set_hours(CLOSED)
    call = await sim.start(BANK, CALLER)
    await call.press("0")
    rec = call._waiting
    assert rec is not None
    recorded = await _record_message(call)
    await call.recording_stored(rec, recorded, "absent")
    record = await server.record(call.sid)
    assert record.tasks == () and record.recording is None
    assert (record.outcome, record.reason) == ("transferred", "callback")


async def test_the_reaper_ends_a_call_whose_recording_status_never_came(
    sim: TwilioSim, server: Server, backend: Backend
) -> None:
    server.set_hours(CLOSED)
    call = await sim.start(BANK, CALLER)
    await call.press("0")
    await _record_message(call)
    hooks = server.app[HOOKS]
    assert await hooks.reap(before=10**10) == 1
    record = await server.record(call.sid)
    assert record.tasks == () and record.outcome == "transferred"


async def _record_message(call: Call) -> Request:
    """The caller leaves a message; Twilio has not said it is stored yet."""
    request = call._recording(20, "key")
    await call.follow(request, await call.send(request))
    return request


async def _written(server: Server, sid: str) -> CallRecord | None:
    await asyncio.sleep(0.5)  # the writer lingers a moment before it writes
    return next((r for r in await server.records() if r.call_sid == sid), None)
