"""The Twilio webhooks end to end: the real app on loopback, driven by signed requests."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sqlite3
import xml.etree.ElementTree as ET

import pytest

from ivr.logs import JsonFormatter
from ivr.server import FLOWS, HOOKS, KEYS
from ivr.store.records import CallRecord
from ivr.telephony import twiml
from tests.functional.conftest import (
    BANK,
    CALLER,
    CLOSED,
    OPEN,
    SHOP,
    TOKEN,
    MakeServer,
    Server,
    metric,
)
from tests.functional.twilio_sim import ACCOUNT_SID, Request, TwilioSim, new_call_sid, wait_until

WELCOME = "Welcome to Example Bank."
MENU = "For your balance, press 1 or say balance."
ACCOUNT = "Please enter your eight digit account number, then press the pound key."
ANYTHING_ELSE = "Is there anything else?"
NOT_HEARD = "Sorry, I didn't hear anything."
NOT_CAUGHT = "Sorry, I didn't catch that."
GOODBYE = "Thank you for calling Example Bank. Goodbye."
SURVEY = (
    "Thank you for talking to us. How satisfied are you with your call? "
    "Press a number from 1 to 5, where 5 is very satisfied."
)
WHISPER = "/twilio/whisper?say=A+caller+from+the+phone+menu.+Reason%3A+global%3Aagent."
APOLOGY = "Sorry, something went wrong on our side. Please call again later. Goodbye."
WORKFLOW = "WW" + "0123456789abcdef" * 2
STORES = pytest.mark.parametrize("sessions", ["memory://", None], ids=["memory", "sqlite"])


def voice_form(call_sid: str, to: str = BANK) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": CALLER,
        "To": to,
    }


async def metrics(server: Server) -> str:
    return await server.metrics()  # from the admin listener


# -- self-service paths ------------------------------------------------------------------------


@STORES
async def test_balance_by_keys_is_contained(
    sim: TwilioSim, server: Server, backend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    call = await sim.start(BANK, CALLER)
    assert call.last[0] == WELCOME and call.last[1].startswith(MENU)
    assert call.waiting == "gather"

    assert await call.press("1") == [ACCOUNT]
    assert call.gather.get("finishOnKey") == "#"
    heard = await call.press("12345674#")
    assert heard[0] == "Your balance is $1,234.50."
    assert heard[1].startswith(ANYTHING_ELSE)
    assert call.last_request.params["Digits"] == "12345674"  # Twilio drops the finish key
    assert backend.seen == ["GET /accounts/12345674"]

    assert await call.press("2") == [GOODBYE]
    assert call.ended and call.end == "hangup"

    record = await server.record(call.sid)
    assert record.outcome == "contained"
    assert record.flow_id == "telebanking"
    assert record.tasks == ("balance_inquiry",)
    assert record.path[-1] == "goodbye"
    assert record.inputs == {
        "main:dtmf:match": 1,
        "ask_account:dtmf:match": 1,
        "anything_else:dtmf:match": 1,
    }
    keys = server.app[KEYS]
    assert record.customer == keys.customer_id(CALLER)  # a keyed id, the same every call
    assert CALLER not in repr(record) and keys.open(record.caller) == CALLER
    assert "12345674" not in repr(record)  # the account number is sensitive
    assert "12345674" not in caplog.text  # nor in any log line

    text = await metrics(server)
    assert metric(text, "ivr_calls_ended_total", flow="telebanking", outcome="contained") == 1
    assert metric(text, "ivr_tasks_resolved_total", task="balance_inquiry") == 1


async def test_speech_path(sim: TwilioSim, server: Server, backend) -> None:
    call = await sim.start(BANK, CALLER)
    assert "speech" in call.gather.get("input", "").split()
    assert "last transactions" in call.gather.get("hints", "")

    assert await call.say("last transactions", 0.91) == [ACCOUNT]
    assert call.last_request.params["SpeechResult"] == "last transactions"
    assert float(call.last_request.params["Confidence"]) == pytest.approx(0.91)

    # the account number is sensitive: keys only, it never reaches Twilio's recogniser
    assert call.gather.get("input") == "dtmf" and call.gather.get("hints") is None
    heard = await call.press("22222228#")
    assert heard[0].startswith("Your last transactions: $12.00 at Corner Coffee.")
    assert "City Power" in heard[0]
    assert backend.seen == ["GET /accounts/22222228"]

    assert await call.say("no thanks", 0.95) == [GOODBYE]
    record = await server.record(call.sid)
    assert record.outcome == "contained"
    assert record.tasks == ("transactions",)
    assert record.inputs == {
        "main:speech:match": 1,
        "ask_account:dtmf:match": 1,
        "anything_else:speech:match": 1,
    }


async def test_block_a_card(sim: TwilioSim, server: Server, backend) -> None:
    call = await sim.call(BANK, CALLER, ["press:2", "press:12345674#"])
    assert call.last == [
        "To block the card ending in 4321, press 1 or say yes. Otherwise press 2 or say no."
    ]
    heard = await call.say("yes", 0.9)
    assert heard[0] == "Your card has been blocked. A new card will arrive in five working days."
    assert backend.seen == ["GET /accounts/12345674", "POST /cards/block 12345674"]
    await call.press("2")
    assert (await server.record(call.sid)).tasks == ("card_blocked",)


async def test_low_confidence_speech_is_confirmed(sim: TwilioSim, backend) -> None:
    call = await sim.start(BANK, CALLER)
    heard = await call.say("block card", 0.3)
    assert heard == ["Did you mean block card?"]
    assert call.gather.get("numDigits") == "1"
    assert await call.say("yes", 0.9) == [ACCOUNT]
    assert "Your card has been blocked" not in " ".join(call.heard)


async def test_no_input_and_no_match_reprompt(sim: TwilioSim, server: Server, backend) -> None:
    call = await sim.start(BANK, CALLER)
    heard = await call.silence()  # Twilio follows the <Redirect> after the <Gather>
    assert heard[0] == NOT_HEARD and heard[1].startswith(MENU)
    assert "silence=1" in call.last_request.url
    assert "Digits" not in call.last_request.params

    heard = await call.say("pizza delivery", 0.9)
    assert heard[0] == NOT_CAUGHT and heard[1].startswith(MENU)
    assert await call.press("1") == [ACCOUNT]  # the third try counts, misses start again

    assert await call.press("12345678#") == ["That account number is not valid.", ACCOUNT]
    assert await call.press("#") == [NOT_HEARD, ACCOUNT]  # Twilio: no digits, no input
    assert backend.seen == []  # nothing invalid reached the bank

    await call.hangup()
    record = await server.record(call.sid)
    assert record.outcome == "abandoned"
    assert record.inputs == {
        "main:no_input": 1,
        "main:speech:no_match": 1,
        "main:dtmf:match": 1,
        "ask_account:dtmf:no_match": 1,
        "ask_account:no_input": 1,
    }


async def test_retries_run_out_to_the_agent(sim: TwilioSim, server: Server, backend) -> None:
    call = await sim.start(SHOP, CALLER)
    assert await call.press("12345#") == [
        "That is not a six digit order number.",
        "Please enter or say your six digit order number, then press the pound key.",
    ]
    assert (await call.silence())[0] == NOT_HEARD
    # no-inputs and no-matches are counted apart: retries (2) bounds each
    assert (await call.say("my order please", 0.9))[0] == "That is not a six digit order number."
    heard = await call.press("1#")
    assert heard == ["Connecting you to our order team."]
    assert call.end == "dial"
    assert call.transfer is not None and call.transfer.find("Number").text == "+15550188"
    record = await server.record(call.sid)
    assert (record.outcome, record.queue, record.reason, record.transfer_from) == (
        "transferred",
        "orders",
        "on_fail",
        "ask_order",
    )


async def test_pound_key_as_a_menu_option(sim: TwilioSim, server: Server, backend) -> None:
    """A menu key may be "#": Twilio must not take it for the end of the input."""
    option = '        bye: {dtmf: "#", speech: [goodbye], goto: goodbye}\n'
    anchor = '        balance: {dtmf: "1"'
    assert server.edit_flow("telebanking.yaml", anchor, option + anchor) == ["telebanking"]
    call = await sim.start(BANK, CALLER)
    assert await call.press("#") == [GOODBYE]
    assert call.last_request.params["Digits"] == "#"


# -- transfers and recordings ----------------------------------------------------------------


async def test_zero_out_dials_an_agent(sim: TwilioSim, server: Server, backend) -> None:
    server.set_hours(OPEN)
    call = await sim.start(BANK, CALLER)
    assert await call.press("0") == ["Connecting you to an agent.", SURVEY]

    dial = call.transfer
    assert dial is not None and dial.tag == "Dial"
    assert dial.attrib == {"action": "/twilio/dial?t=2", "method": "POST", "timeout": "25"}
    numbers = list(dial)
    assert [(n.tag, n.text, n.attrib) for n in numbers] == [
        ("Number", "+15550199", {"url": WHISPER})
    ]
    root = ET.fromstring(call.documents[-2][1])  # the turn's TwiML, before the dial action
    assert [verb.tag for verb in root] == ["Say", "Dial"]

    # the agent leg completed: Twilio posts the dial action, and the caller is asked the
    # flow's survey (`after`)
    assert call.documents[-1][0].endswith("/twilio/dial?t=2")
    assert call.last_request.params["DialCallStatus"] == "completed"
    assert call.waiting == "gather"
    assert await call.press("4") == ["Thank you for your feedback. Goodbye."]
    assert call.end == "hangup"

    record = await server.record(call.sid)
    assert (record.outcome, record.queue, record.reason, record.reason_detail) == (
        "transferred",
        "support",
        "global",
        "agent",
    )
    text = await metrics(server)
    assert metric(text, "ivr_calls_ended_total", flow="telebanking", outcome="transferred") == 1
    labels = {"flow": "telebanking", "queue": "support", "reason": "global"}
    assert metric(text, "ivr_transfers_total", **labels) == 1


async def test_zero_out_enqueues_a_task(make_server: MakeServer, backend) -> None:
    server = await make_server(workflow_sid=WORKFLOW)
    server.set_hours(OPEN)
    async with server.twilio() as sim:
        call = await sim.start(BANK, CALLER)
        assert await call.press("0") == ["Connecting you to an agent.", SURVEY]
        await call.hangup()
    enqueue = call.transfer
    assert enqueue is not None and enqueue.tag == "Enqueue"
    assert enqueue.attrib == {
        "action": "/twilio/dial?t=2",
        "method": "POST",
        "workflowSid": WORKFLOW,
    }
    (task,) = enqueue
    assert task.tag == "Task"
    assert json.loads(task.text or "") == {
        "queue": "support",
        "reason": "global:agent",
        "option": "agent",
    }
    assert call.end == "caller-hung-up"  # in the survey: still transferred
    record = await wait_until(lambda: _told(server, call.sid))
    assert (record.outcome, record.queue, record.transfer_result) == (
        "transferred",
        "support",
        "bridged",
    )


async def test_agent_who_does_not_answer(sim: TwilioSim, server: Server, backend) -> None:
    server.set_hours(OPEN)
    call = sim.new_call(SHOP, CALLER)
    call.dial_status = "no-answer"
    await call.start()
    await call.press("404404#")  # the shop does not know it: on_error -> the order team
    assert call.last[0] == "Sorry, I can't reach our order system right now."
    assert call.last[-1] == (
        "Sorry, no agent could take your call. Please call again later. Goodbye."
    )
    assert call.end == "hangup"
    record = await server.record(call.sid)
    assert (record.outcome, record.reason, record.transfer_from) == (
        "transferred",
        "on_error",
        "lookup",
    )
    record = await wait_until(lambda: _told(server, call.sid))
    assert record.transfer_result == "no-answer"
    told = {"flow": "order_status", "queue": "orders", "result": "no-answer"}
    assert metric(await metrics(server), "ivr_transfer_results_total", **told) == 1

    # Twilio retrying the callback changes neither the record nor the count
    assert call.transfer is not None
    retry = await sim.post(
        call.transfer.get("action", ""), {**voice_form(call.sid), "DialCallStatus": "completed"}
    )
    assert retry.status == 200
    assert (await server.record(call.sid)).transfer_result == "no-answer"
    assert metric(await metrics(server), "ivr_transfer_results_total", **told) == 1


async def _told(server: Server, sid: str) -> CallRecord | None:
    record = await server.record(sid)
    return record if record.transfer_result else None


async def test_closed_hours_take_a_voicemail(sim: TwilioSim, server: Server, backend) -> None:
    server.set_hours(CLOSED)
    call = await sim.start(BANK, CALLER)
    heard = await call.press("0")
    assert heard[0].startswith("Our agents are available Monday to Friday")
    assert call.waiting == "record"
    rec = call._waiting
    assert rec is not None
    assert rec.attrib == {
        "action": "/twilio/recorded?t=2",
        "finishOnKey": "#",
        "maxLength": "60",
        "method": "POST",
        "playBeep": "true",
        "recordingStatusCallback": "/twilio/recording",
        "recordingStatusCallbackEvent": "completed absent",
        "recordingStatusCallbackMethod": "POST",
    }
    assert await call.record(12) == ["Thank you. An agent will call you back. Goodbye."]
    assert call.end == "hangup"
    record = await server.record(call.sid)
    assert (record.outcome, record.reason) == ("transferred", "callback")  # not contained
    assert record.tasks == ("callback_requested",)
    assert backend.callbacks[0]["number"] == CALLER


async def test_hang_up_after_the_message(sim: TwilioSim, server: Server, backend) -> None:
    server.set_hours(CLOSED)
    call = await sim.start(BANK, CALLER)
    await call.press("0")
    await call.hangup(recorded=9)  # Twilio still posts the recording, then the status
    assert call.last_request.params["Digits"] == "hangup"
    record = await server.record(call.sid)  # once the recording is stored, after the call
    assert (record.outcome, record.reason) == ("transferred", "callback")
    assert record.tasks == ("callback_requested",)
    # the status callback came before the recording's: the record has it already
    assert record.status == "completed"


async def test_silent_voicemail(sim: TwilioSim, server: Server, backend) -> None:
    server.set_hours(CLOSED)
    call = await sim.start(BANK, CALLER)
    await call.press("0")
    await call.silence()  # nothing recorded: Twilio goes on to the <Redirect> after <Record>
    assert call.last_request.url.endswith("/twilio/recorded?t=2&empty=1")
    assert call.ended
    record = await server.record(call.sid)
    assert record.outcome == "contained"  # the flow ended the call
    assert record.tasks == ()  # but no message was left: no callback was requested


async def test_backend_down_goes_to_an_agent(sim: TwilioSim, server: Server, backend) -> None:
    server.set_hours(OPEN)
    call = await sim.start(BANK, CALLER)
    await call.press("1")
    heard = await call.press("44444446#")
    assert heard == [
        "Sorry, our systems are not answering right now.",
        "Connecting you to an agent.",
        SURVEY,
    ]
    await call.press("3")
    record = await server.record(call.sid)
    assert (record.outcome, record.reason, record.transfer_from) == (
        "transferred",
        "on_error",
        "lookup",
    )
    assert record.tasks == () and record.survey == {"csat": "3"}


# -- hang-ups ------------------------------------------------------------------------------


@STORES
async def test_hang_up_mid_flow_is_abandoned_where_the_caller_left(
    sim: TwilioSim, server: Server, backend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivr")
    call = await sim.start(BANK, CALLER)
    await call.press("1")
    await call.hangup()
    assert call.status_sent is not None and call.status_sent.status == 200

    record = await server.record(call.sid)
    assert record.outcome == "abandoned"
    assert record.path[-1] == "ask_account"
    assert record.status == "completed"
    assert record.tasks == ()
    assert "caller left at ask_account" in caplog.text

    text = await metrics(server)
    assert metric(text, "ivr_calls_ended_total", flow="telebanking", outcome="abandoned") == 1
    assert metric(text, "ivr_calls_ended_total", flow="telebanking", outcome="contained") == 0

    # a second status callback (Twilio retries those too) changes nothing
    assert call.status_request is not None
    assert call.status_request.params["CallStatus"] == "completed"
    assert (await call.send(call.status_request)).status == 200
    assert len(await server.records()) == 1
    text = await metrics(server)
    assert metric(text, "ivr_calls_ended_total", flow="telebanking", outcome="abandoned") == 1


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("busy", "abandoned"),
        ("no-answer", "abandoned"),
        ("canceled", "abandoned"),
        ("failed", "failed"),
    ],
)
async def test_calls_that_never_reached_a_flow_are_recorded(
    sim: TwilioSim, server: Server, status: str, outcome: str
) -> None:
    """Twilio reports a call that never got to the voice webhook only by its status."""
    sid = new_call_sid()
    reply = await sim.post("/twilio/status", {**voice_form(sid), "CallStatus": status})
    assert reply.status == 200 and len(reply.xml()) == 0

    record = await server.record(sid)
    assert (record.outcome, record.status, record.flow_id) == (outcome, status, "telebanking")
    assert record.path == ()
    text = await metrics(server)
    assert metric(text, "ivr_calls_ended_total", flow="telebanking", outcome=outcome) == 1


async def test_status_callbacks_before_the_end_change_nothing(
    sim: TwilioSim, server: Server, backend
) -> None:
    call = await sim.start(BANK, CALLER)
    for status in ("ringing", "in-progress"):
        reply = await sim.post("/twilio/status", {**voice_form(call.sid), "CallStatus": status})
        assert reply.status == 200 and len(reply.xml()) == 0
    assert await call.press("1") == [ACCOUNT]
    assert await server.records() == []


@pytest.mark.parametrize("fails_at", ["first webhook", "mid-call"])
async def test_an_internal_error_apologises_and_counts_the_call_failed(
    sim: TwilioSim,
    server: Server,
    backend,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fails_at: str,
) -> None:
    def bug(*args: object) -> str:
        raise RuntimeError("a bug")

    call = sim.new_call(BANK, CALLER)
    if fails_at == "mid-call":
        await call.start()
        await call.press("1")
        monkeypatch.setattr(twiml, "render", bug)
        heard = await call.press("12345674#")
    else:
        monkeypatch.setattr(twiml, "render", bug)
        await call.start()
        heard = call.last
    assert heard == [APOLOGY]  # no 500 and no silence: Twilio would play its own error
    assert call.end == "hangup" and call.status_sent is not None
    assert "webhook /twilio/" in caplog.text and "RuntimeError: a bug" in caplog.text

    # our failure, not the caller's: the status callback after it must not say abandoned
    record = await server.record(call.sid)
    assert (record.outcome, record.flow_id) == ("failed", "telebanking")
    assert record.error == "internal error: RuntimeError"
    text = await metrics(server)
    assert metric(text, "ivr_calls_ended_total", flow="telebanking", outcome="failed") == 1
    assert metric(text, "ivr_calls_ended_total", flow="telebanking", outcome="abandoned") == 0


async def test_a_traceback_never_shows_what_the_caller_keyed_in(
    sim: TwilioSim, server: Server, backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())  # formats as it logs, inside the webhook
    logging.getLogger("ivr").addHandler(handler)
    try:
        call = await sim.start(BANK, CALLER)
        await call.press("1")
        await call.press("12345674#")  # the account number: sensitive in the flow

        def bug(*args: object) -> str:
            raise ValueError("no account 12345674 and no speech block card")

        monkeypatch.setattr(twiml, "render", bug)
        assert await call.say("block card") == [APOLOGY]
    finally:
        logging.getLogger("ivr").removeHandler(handler)
    logged = lines.getvalue()
    assert "ValueError: no account **** and no speech ****" in logged
    assert "12345674" not in logged and "block card" not in logged


async def test_a_failing_session_store_still_gets_an_apology(
    sim: TwilioSim,
    server: Server,
    backend,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def disk_full(*args: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    call = await sim.start(BANK, CALLER)
    monkeypatch.setattr(server.app[HOOKS].sessions, "save", disk_full)
    assert await call.press("1") == [APOLOGY]
    assert call.end == "hangup" and call.status_sent is not None
    assert call.status_sent.status == 200
    assert "the failed call could not be recorded" in caplog.text
    text = await metrics(server)
    assert metric(text, "ivr_store_errors_total", store="sessions", operation="save") >= 1


async def test_a_failing_records_store_is_counted_and_the_record_kept(
    sim: TwilioSim, server: Server, backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = server.app[HOOKS].calls.writer
    assert writer is not None

    async def down(records: object) -> None:
        raise ConnectionError("records database is down")

    monkeypatch.setattr(writer.records, "add", down)
    call = await sim.call(BANK, CALLER, ["press:1", "press:12345674#", "press:2"])
    assert call.ended

    async def counted() -> float:
        text = await metrics(server)
        return metric(text, "ivr_store_errors_total", store="records", operation="write")

    assert await wait_until(counted) >= 1
    assert [s.call_id for s in await server.app[HOOKS].sessions.unrecorded()] == [call.sid]


# -- requests that are not Twilio's --------------------------------------------------------


async def test_forged_signature_is_refused(
    sim: TwilioSim, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    form = voice_form(new_call_sid())
    forger = TwilioSim(server.url, "not-the-token", server.config.public_url)
    try:
        reply = await forger.post("/twilio/voice", form)
    finally:
        await forger.close()
    assert reply.status == 403
    assert "refused /twilio/voice: signature does not match" in caplog.text
    assert [r.levelname for r in caplog.records if "refused" in r.getMessage()] == ["WARNING"]
    assert metric(await metrics(server), "ivr_webhook_rejected_total", reason="signature") == 1


async def test_missing_signature_is_refused(
    sim: TwilioSim, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    reply = await sim.post("/twilio/voice", voice_form(new_call_sid()), signed=False)
    assert reply.status == 403
    assert "refused /twilio/voice: no X-Twilio-Signature header" in caplog.text


async def test_signature_covers_the_query_string_and_the_form(
    sim: TwilioSim, server: Server, backend
) -> None:
    call = await sim.start(BANK, CALLER)
    request = call.gather_request(keys="1")
    assert "?t=1" in request.url

    without_query = sim.sign(request.url.split("?")[0], request.params)
    assert (await call.sim.send(request, signature=without_query)).status == 403

    tampered = Request(request.url, {**request.params, "Digits": "0"})
    original = sim.sign(request.url, request.params)
    assert (await call.sim.send(tampered, signature=original)).status == 403

    other_host = sim.sign(request.url.replace("127.0.0.1", "localhost"), request.params)
    assert (await call.sim.send(request, signature=other_host)).status == 403

    assert await call.press("1") == [ACCOUNT]  # nothing refused moved the call on


async def test_behind_a_proxy(make_server: MakeServer, backend) -> None:
    """Without a public URL, `trust_proxy` takes Twilio's URL from X-Forwarded-*."""
    server = await make_server(public_url=None, trust_proxy=True)
    public = "https://ivr.example.test"
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "ivr.example.test"}
    async with TwilioSim(server.url, TOKEN, public, headers=forwarded) as sim:
        call = await sim.start(BANK, CALLER)
        assert call.last[0] == WELCOME
        assert await call.press("1") == [ACCOUNT]
    async with TwilioSim(server.url, TOKEN, public) as direct:  # no proxy: another URL
        assert (await direct.post("/twilio/voice", voice_form(new_call_sid()))).status == 403


async def test_behind_a_proxy_under_a_path_prefix(make_server: MakeServer, backend) -> None:
    """Twilio calls https://host/ivr/twilio/...; the proxy passes /twilio/... on."""
    server = await make_server(public_url="https://ivr.example.test/ivr")
    async with TwilioSim(server.url, TOKEN, "https://ivr.example.test/ivr") as sim:
        call = await sim.start(BANK, CALLER)
        assert call.last[0] == WELCOME
        assert call.documents[-1][0] == "https://ivr.example.test/ivr/twilio/voice"
        assert await call.press("1") == [ACCOUNT]
        assert call.documents[-1][0] == "https://ivr.example.test/ivr/twilio/gather?t=1"
        await call.hangup()
    record = await server.record(call.sid)
    assert (record.outcome, record.status) == ("abandoned", "completed")


async def test_without_a_public_url_the_request_url_is_signed(
    make_server: MakeServer, backend
) -> None:
    server = await make_server(public_url=None)
    async with TwilioSim(server.url, TOKEN) as sim:
        call = await sim.start(BANK, CALLER)
        assert call.last[0] == WELCOME
    async with TwilioSim(server.url, TOKEN, "https://ivr.example.test") as elsewhere:
        assert (await elsewhere.post("/twilio/voice", voice_form(new_call_sid()))).status == 403


@pytest.mark.parametrize(
    "sid", ["CA123", "", "XX" + "0" * 32, "CA" + "g" * 32, "CA" + "0" * 33, "CA" + "0" * 32 + "\n"]
)
async def test_malformed_call_sid_is_a_bad_request(sim: TwilioSim, server: Server, sid) -> None:
    reply = await sim.post("/twilio/voice", voice_form(sid))
    assert reply.status == 400
    assert "CallSid" in reply.text
    assert metric(await metrics(server), "ivr_webhook_rejected_total", reason="bad_request") == 1


@pytest.mark.parametrize("header", ["sïgnature✓".encode(), b"\xff\xfe=="])
async def test_a_signature_that_is_not_ascii_is_refused(server: Server, header: bytes) -> None:
    """Raw bytes on the wire, as an attacker sends them (a client library would encode)."""
    body = "&".join(f"{k}={v}" for k, v in voice_form(new_call_sid()).items()).encode()
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /twilio/voice HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"X-Twilio-Signature: " + header + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )
    status = (await reader.readline()).split()[1]
    writer.close()
    assert status == b"403"  # not a 500: nothing unauthenticated reaches further


async def test_a_callback_the_call_does_not_wait_for_is_refused_untouched(
    sim: TwilioSim, server: Server, backend
) -> None:
    call = await sim.start(BANK, CALLER)  # the main menu listens, at turn 1
    stray = call._request(
        sim.public("/twilio/recorded?t=1"),
        RecordingUrl="https://api.twilio.com/x",
        RecordingDuration="5",
    )
    reply = await call.send(stray)
    assert reply.status == 409
    assert await call.press("1") == [ACCOUNT]  # the real menu answer still counts
    text = await metrics(server)
    assert metric(text, "ivr_webhook_rejected_total", reason="mismatched") == 1


@pytest.mark.parametrize("duration", ["²", "nan", "-4", "1e400", "five"])
async def test_a_recording_duration_that_is_no_number_counts_as_zero(
    sim: TwilioSim, server: Server, duration: str
) -> None:
    server.set_hours(CLOSED)
    call = await sim.start(BANK, CALLER)
    await call.press("0")  # closed: the voicemail
    rec = call._waiting
    assert rec is not None
    request = call._recording(5, "key")
    request = Request(request.url, {**request.params, "RecordingDuration": duration})
    await call.follow(request, await call.send(request))
    await call.recording_stored(rec, request)
    record = await server.record(call.sid)
    assert record.outcome == "transferred" and record.error is None  # a callback request


async def test_body_over_the_size_limit(sim: TwilioSim, server: Server) -> None:
    form = voice_form(new_call_sid())
    request = Request(sim.public("/twilio/voice"), form)
    body = ("CallSid=" + form["CallSid"] + "&Junk=" + "x" * (100 * 1024)).encode()
    reply = await sim.send(request, body=body)
    assert reply.status == 413


async def test_body_that_is_not_a_form(
    sim: TwilioSim, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    request = Request(sim.public("/twilio/voice"), voice_form(new_call_sid()))
    reply = await sim.send(request, body=b"\xff\xfe=%%%")
    assert reply.status == 400
    assert "expected a form" in reply.text
    assert "unreadable form" in caplog.text


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/json", b'{"CallSid": "CA00000000000000000000000000000001"}'),
        ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; "
         b'name="CallSid"\r\n\r\nCA00000000000000000000000000000001\r\n--b--\r\n'),
        ("", b"CallSid=CA00000000000000000000000000000001"),
    ],
)  # fmt: skip
async def test_bodies_twilio_never_sends(sim: TwilioSim, server: Server, content_type, body):
    headers = {"Content-Type": content_type, "X-Twilio-Signature": "x"}
    async with sim.session.post(server.url + "/twilio/voice", data=body, headers=headers) as r:
        assert (r.status, await r.text()) == (400, "expected a form")


async def test_unknown_route(sim: TwilioSim, server: Server) -> None:
    reply = await sim.post("/twilio/nothing", voice_form(new_call_sid()))
    assert reply.status == 404


# -- routing --------------------------------------------------------------------------------


async def test_unknown_number_is_not_in_service(sim: TwilioSim, server: Server) -> None:
    """A call to a number no flow serves hears so, and counts as failed (a configuration
    problem), not as a caller who gave up."""
    call = await sim.start("+15559999999", CALLER)
    assert call.heard == ["Sorry, this number is not in service. Goodbye."]
    assert call.end == "hangup"
    root = ET.fromstring(call.documents[0][1])
    assert [verb.tag for verb in root] == ["Say", "Hangup"]

    # the server hung up, not the caller: the status callback must not make it "abandoned"
    record = await server.record(call.sid)
    assert (record.outcome, record.flow_id) == ("failed", "unknown")
    assert "no flow" in (record.error or "")
    text = await metrics(server)
    assert metric(text, "ivr_calls_ended_total", outcome="abandoned") == 0
    assert metric(text, "ivr_calls_ended_total", flow="unknown", outcome="failed") == 1


async def test_flow_chosen_by_query(sim: TwilioSim, server: Server, backend) -> None:
    call = sim.new_call("+15559999999", CALLER, voice_path="/twilio/voice?flow=order_status")
    await call.start()
    assert call.heard[0].startswith("Thank you for calling Example Shop.")
    heard = await call.press("123456#")
    assert heard[0] == (
        "Order 1 2 3 4 5 6 has shipped with UPS and should arrive on Friday, November 27."
    )


async def test_signed_url_is_the_url_as_sent(sim: TwilioSim, server: Server, backend) -> None:
    """Twilio signs the webhook URL as configured, %-escapes and all."""
    call = sim.new_call("+15559999999", CALLER, voice_path="/twilio/voice?flow=order%5Fstatus")
    await call.start()
    assert call.heard[0].startswith("Thank you for calling Example Shop.")


async def test_gather_for_a_call_never_started(sim: TwilioSim, server: Server) -> None:
    """A session lost (memory store restarted, a process without the shared store) is
    ivr's failure: the call is counted failed, not abandoned by the caller."""
    sid = new_call_sid()
    form = {**voice_form(sid), "CallStatus": "in-progress", "Digits": "1"}
    reply = await sim.post("/twilio/gather?t=1", form)
    assert reply.status == 200
    assert [(v.tag, v.text) for v in reply.xml()] == [
        ("Say", "Sorry, we could not continue this call. Please call again. Goodbye."),
        ("Hangup", None),
    ]
    ended = await sim.post("/twilio/status", {**voice_form(sid), "CallStatus": "completed"})
    assert ended.status == 200
    record = await server.record(sid)
    assert (record.outcome, record.flow_id, record.error) == ("failed", "telebanking", "no session")
    text = await metrics(server)
    assert metric(text, "ivr_calls_ended_total", flow="telebanking", outcome="failed") == 1
    assert metric(text, "ivr_calls_ended_total", flow="telebanking", outcome="abandoned") == 0


# -- retries ------------------------------------------------------------------------------


@STORES
async def test_retried_webhook_steps_once(sim: TwilioSim, server: Server, backend) -> None:
    call = await sim.start(BANK, CALLER)
    first = call.last_reply
    assert (await call.resend()).text == first.text  # the voice webhook again: same call

    await call.press("1")
    turns = metric(await metrics(server), "ivr_turns_total", flow="telebanking")
    assert turns == 2
    again = await call.resend()
    assert again == call.last_reply  # same TwiML, byte for byte
    assert metric(await metrics(server), "ivr_turns_total", flow="telebanking") == turns

    both = await asyncio.gather(call.resend(), call.resend())  # retries racing each other
    assert both == [call.last_reply, call.last_reply]

    # the session moved on once: the next gather is turn 2 and reaches the bank
    assert "t=2" in call.gather.get("action", "")
    heard = await call.press("12345674#")
    assert heard[0] == "Your balance is $1,234.50."
    assert backend.seen == ["GET /accounts/12345674"]
    # one more webhook answered (the bank call happens inside it)
    assert metric(await metrics(server), "ivr_turns_total", flow="telebanking") == turns + 1

    # a webhook of an old turn arriving late gets the latest answer, and steps nothing
    late = Request(call.documents[1][0], {**call.last_request.params, "Digits": "0"})
    assert (await call.send(late)) == call.last_reply
    assert await call.press("2") == [GOODBYE]
    assert (await server.record(call.sid)).outcome == "contained"


@STORES
async def test_duplicate_webhooks_racing(sim: TwilioSim, server: Server, backend) -> None:
    call = await sim.start(BANK, CALLER)
    await call.press("1")
    request = call.gather_request(keys="55555551#")  # a slow bank: the duplicates overlap
    replies = await asyncio.gather(*(call.send(request) for _ in range(4)))
    assert len({(r.status, r.text) for r in replies}) == 1
    assert (await call.follow(request, replies[0]))[0] == "Your balance is $80.00."
    assert backend.seen == ["GET /accounts/55555551"]
    assert metric(await metrics(server), "ivr_turns_total", flow="telebanking") == 3


# -- flows edited while calls run -----------------------------------------------------------


async def test_flow_edited_during_a_call(
    sim: TwilioSim, server: Server, backend, caplog: pytest.LogCaptureFixture
) -> None:
    flows = server.app[FLOWS]
    v1 = flows.current["telebanking"].version
    old = await sim.start(BANK, CALLER)
    await old.press("1")

    changed = server.edit_flow("telebanking.yaml", "Your balance is", "You have")
    assert changed == ["telebanking"]
    v2 = flows.current["telebanking"].version
    assert v2 != v1

    # the call in progress keeps its version to the end
    assert (await old.press("12345674#"))[0] == "Your balance is $1,234.50."
    assert await old.press("2") == [GOODBYE]
    assert (await server.record(old.sid)).flow_version == v1

    # a new call gets the new version
    new = await sim.start(BANK, CALLER)
    await new.press("1")
    assert (await new.press("12345674#"))[0] == "You have $1,234.50."

    # a broken edit is refused, and the last good version keeps serving
    path = server.config.flows / "telebanking.yaml"
    good = path.read_text()
    server.edit_flow("telebanking.yaml", "nodes:\n", "nodes:\n  welcome: [unclosed\n")
    assert flows.current["telebanking"].version == v2
    assert f"still serving version {v2}" in caplog.text
    status, health = await sim.get("/healthz")
    assert status == 200 and json.loads(health)["flows"]["telebanking"] == v2

    third = await sim.start(BANK, CALLER)
    await third.press("1")
    assert (await third.press("12345674#"))[0] == "You have $1,234.50."
    await new.press("2")
    await third.press("2")
    assert (await server.record(new.sid)).flow_version == v2
    assert (await server.record(third.sid)).flow_version == v2
    assert "nodes:\n  welcome: [unclosed" in path.read_text() and good != path.read_text()


async def test_flow_with_a_schema_error_is_refused(
    sim: TwilioSim, server: Server, backend, caplog: pytest.LogCaptureFixture
) -> None:
    v1 = server.app[FLOWS].current["telebanking"].version
    assert server.edit_flow("telebanking.yaml", "next: returning", "next: nowhere") == []
    assert "telebanking.yaml" in caplog.text and "nowhere" in caplog.text
    assert server.app[FLOWS].current["telebanking"].version == v1
    call = await sim.start(BANK, CALLER)
    assert call.last[1].startswith(MENU)


# -- health, metrics, audio -----------------------------------------------------------------


async def test_health_and_metrics(sim: TwilioSim, server: Server, backend) -> None:
    status, text = await sim.get("/healthz")
    flows = server.app[FLOWS].current
    assert status == 200
    assert json.loads(text) == {
        "status": "ok",
        "flows": {name: flow.version for name, flow in flows.items()},
    }
    assert {"order_status", "telebanking", "telebanking_ko", "telebanking_voice"} <= set(flows)

    server.set_hours(OPEN)
    done = await sim.call(BANK, CALLER, ["press:1", "press:12345674#", "press:2"])
    agent = await sim.call(BANK, CALLER, ["press:0", "press:5"])  # and the survey
    gone = await sim.call(SHOP, CALLER, ["press:12", "hangup"])
    assert (done.end, agent.end, gone.end) == ("hangup", "hangup", "caller-hung-up")
    for call in (done, agent, gone):
        await server.record(call.sid)

    text = await metrics(server)
    assert metric(text, "ivr_calls_ended_total", flow="telebanking", outcome="contained") == 1
    assert metric(text, "ivr_calls_ended_total", flow="telebanking", outcome="transferred") == 1
    assert metric(text, "ivr_calls_ended_total", flow="order_status", outcome="abandoned") == 1
    assert metric(text, "ivr_calls_ended_total", outcome="failed") == 0
    assert metric(text, "ivr_webhook_seconds_count") > 0
    assert "ivr_webhook_rejected_total" in text


async def test_health_without_flows(make_server: MakeServer, tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    server = await make_server(flows=tmp_path / "empty")
    async with server.twilio() as sim:
        status, text = await sim.get("/healthz")
        assert status == 503
        assert json.loads(text) == {"status": "no flows", "flows": {}}
        call = await sim.start(BANK, CALLER)
        assert call.heard == ["Sorry, this number is not in service. Goodbye."]


async def test_prompt_audio_is_served(sim: TwilioSim, server: Server) -> None:
    async with sim.session.get(server.url + "/audio/welcome.wav") as response:
        assert response.status == 200
        assert (await response.read())[:4] == b"RIFF"
    for path in ("/audio/missing.wav", "/audio/../data/calls.db", "/audio/%2e%2e/data/calls.db"):
        async with sim.session.get(server.url + path) as response:
            assert response.status in (403, 404), path


async def _with_status(server: Server, sid: str) -> CallRecord | None:
    record = await server.record(sid)
    return record if record.status else None
