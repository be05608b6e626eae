"""Twilio's REST API from a running server and from `ivr notify`, against the fake API on
loopback (tests/twilio_api.py): a call that texts a link, and outbound calls whose
webhooks Twilio signs, answered by a person or by a machine. No request leaves loopback.
"""

from __future__ import annotations

import asyncio
import base64
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from ivr.cli import main
from ivr.engine import new_session
from ivr.engine.events import CallStarted, Digits
from ivr.errors import ConfigError
from ivr.notify.notice import Notifier, find_flow, notify
from ivr.runner import Outbox
from ivr.server import FLOWS, STREAMS, TEXTS
from ivr.store.records import CallRecord
from ivr.telephony.outbound import decode_vars
from ivr.telephony.rest import DETECT, TwilioRest
from tests.functional.conftest import (
    CALLER,
    REPO,
    SHOP,
    TRACKING,
    MakeServer,
    Server,
    metric,
)
from tests.functional.stream_sim import MediaStream
from tests.functional.twilio_sim import Request, wait_until
from tests.twilio_api import ACCOUNT, TwilioApi
from tests.voices import Voices

NOTICE = "+15550111"  # delivery_notice's number: its calls come from it
GIVEN = {"order": "654321", "eta": "Monday", "tracking": "https://shop.example/t/654321"}


async def test_a_call_texts_the_tracking_link_and_counts_the_task(
    twilio_api: TwilioApi, make_server: MakeServer
) -> None:
    server = await make_server()
    async with server.twilio() as sim:
        call = await sim.start(SHOP, CALLER)
        await call.press("777888#")
        assert "tracking link by text message" in " ".join(call.last)
        heard = await call.press("1")
        assert "I've sent the tracking link to your phone." in heard
        await call.press("2")
    (sms,) = twilio_api.messages
    assert sms.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert sms.user == ACCOUNT  # basic auth with the account's token
    assert (sms["To"], sms["From"]) == (CALLER, SHOP)  # from the number the caller called
    body = f"Example Shop: order 777888 is on its way with DHL. Track it: {TRACKING}"
    assert sms["Body"] == f"{body} Anything else? Reply here."
    # the caller may answer it by SMS for 30 minutes: the call is final once that is over
    assert await server.app[TEXTS].expire(time.time() + 31 * 60) == 1
    record = await server.record(call.sid)
    assert (record.outcome, record.direction) == ("contained", "inbound")
    assert set(record.tasks) == {"order_status", "tracking_link"}
    assert "send_link" in record.path and record.path[-1] == "goodbye"
    sent = {"flow": "order_status", "node": "send_link", "channel": "sms"}
    exposition = await server.metrics()
    assert metric(exposition, "ivr_messages_total", **sent, result="sent") == 1
    assert metric(exposition, "ivr_messages_total", **sent, result="failed") == 0


async def test_a_refused_message_goes_on_at_on_error_and_logs_no_number(
    twilio_api: TwilioApi, make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    twilio_api.fail_next(400, 21610)  # the number opted out of messages (STOP)
    server = await make_server()
    async with server.twilio() as sim:
        call = await sim.start(SHOP, CALLER)
        await call.press("777888#")
        heard = await call.press("1")
        assert "Sorry, I couldn't send the text message." in heard
        await call.press("2")
    record = await server.record(call.sid)
    assert record.tasks == ("order_status",) and record.outcome == "contained"
    assert "Twilio error 21610" in caplog.text
    failed = {"flow": "order_status", "node": "send_link", "result": "failed"}
    assert metric(await server.metrics(), "ivr_messages_total", **failed) == 1
    assert CALLER not in caplog.text and CALLER[1:] not in caplog.text


async def test_without_twilio_credentials_a_message_fails_and_the_call_goes_on(
    make_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    server = await make_server()
    async with server.twilio() as sim:
        call = await sim.start(SHOP, CALLER)
        await call.press("777888#")
        assert "Sorry, I couldn't send the text message." in await call.press("1")


# -- ivr notify ----------------------------------------------------------------------------------


async def place(server: Server, given: dict[str, str] | None = None) -> Server:
    """`notify()` as campaigns call it: one outbound call on delivery_notice."""
    rest = TwilioRest.from_env()
    try:
        flow = find_flow("delivery_notice", server.config.flows)
        placed = await notify(rest, flow, CALLER, server.config.public_url or "", given)
    finally:
        await rest.close()
    assert placed.ok and placed.sid.startswith("CA"), placed
    return server


async def test_notify_places_the_call_with_signed_flow_and_vars_and_machine_detection(
    twilio_api: TwilioApi, make_server: MakeServer
) -> None:
    server = await place(await make_server(), GIVEN)
    (request,) = twilio_api.calls
    assert (request["To"], request["From"]) == (CALLER, NOTICE)
    assert request["MachineDetection"] == DETECT
    url = urlsplit(request["Url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{server.config.public_url}/twilio/voice"
    query = parse_qs(url.query)
    assert query["flow"] == ["delivery_notice"] and decode_vars(query["vars"][0]) == GIVEN
    assert (
        request["StatusCallback"]
        == f"{server.config.public_url}/twilio/status?flow=delivery_notice"
    )
    assert request["StatusCallbackMethod"] == "POST"


async def test_a_notifier_sends_many_on_flows_loaded_once_and_reads_their_status(
    twilio_api: TwilioApi, make_server: MakeServer
) -> None:
    server = await make_server()
    notifier = Notifier.from_env(server.config.flows, server.config.public_url)
    try:
        first = await notifier.send("delivery_notice", CALLER, GIVEN)
        again = await notifier.send("delivery_notice", "+15557654322", {"order": "1"}, "voice")
        text = await notifier.send("delivery_notice", CALLER, GIVEN, "sms")
        missing = await notifier.send("no_such_flow", CALLER)
        bad = await notifier.send("delivery_notice", CALLER, {"caller": "+1555"})
        twilio_api.statuses[first.sid] = "completed"
        twilio_api.answered_by[first.sid] = "human"
        twilio_api.statuses[text.sid] = "delivered"
        call, message = await notifier.status(first.sid), await notifier.status(text.sid)
    finally:
        await notifier.close()
    assert first.ok and again.ok and text.ok
    assert [r["To"] for r in twilio_api.calls] == [CALLER, "+15557654322"]
    assert twilio_api.messages[0]["Body"].startswith("Hello, this is Example Shop.")
    assert list(notifier._loaded) == ["delivery_notice"]  # one load for three notices
    assert not missing.ok and "no_such_flow" in missing.error
    assert (bad.ok, bad.error) == (False, "vars: 'caller' is set by the call itself")
    assert (call.status, call.answered_by) == ("completed", "human")
    assert message.status == "delivered"


async def test_a_text_notifier_needs_no_public_url(
    twilio_api: TwilioApi, make_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await make_server()
    monkeypatch.delenv("IVR_PUBLIC_URL", raising=False)
    with pytest.raises(ConfigError, match="--url: the server's public URL"):
        Notifier.from_env(server.config.flows)  # calls need it
    notifier = Notifier.from_env(server.config.flows, channel="sms")
    try:
        texted = await notifier.send("delivery_notice", CALLER, GIVEN, "sms")
        called = await notifier.send("delivery_notice", CALLER, GIVEN)
    finally:
        await notifier.close()
    assert texted.ok and twilio_api.messages
    assert (called.ok, called.error) == (
        False,
        "no public URL for the call's webhooks (IVR_PUBLIC_URL)",
    )
    assert twilio_api.calls == []


async def test_an_outbound_call_answered_by_a_person_runs_the_flow_with_its_vars(
    twilio_api: TwilioApi, make_server: MakeServer
) -> None:
    server = await place(await make_server(), GIVEN)
    async with server.twilio() as sim:
        call = sim.outbound(twilio_api.calls[0].form_fields(), "human")
        heard = await call.start()
        assert "Your order 6 5 4 3 2 1 has shipped and should arrive on Monday." in heard[0]
        heard = await call.press("1")  # the link, texted to the person called
        assert "the link is on its way to your phone" in " ".join(heard)
    (sms,) = twilio_api.messages
    assert (sms["To"], sms["From"]) == (CALLER, NOTICE)
    assert sms["Body"].endswith("Track it: https://shop.example/t/654321")
    record = await server.record(call.sid)
    assert (record.direction, record.outcome) == ("outbound", "contained")
    assert record.tasks == ("delivery_notice", "tracking_link")
    assert record.path[0] == "hello"


async def test_an_outbound_call_answered_by_a_machine_gets_the_voicemail(
    twilio_api: TwilioApi, make_server: MakeServer
) -> None:
    server = await place(await make_server(), GIVEN)
    async with server.twilio() as sim:
        call = sim.outbound(twilio_api.calls[0].form_fields(), "machine_end_beep")
        heard = await call.start()
    assert call.end == "hangup"
    assert "We are texting you the tracking link." in " ".join(heard)
    assert len(twilio_api.messages) == 1
    record = await server.record(call.sid)
    assert (record.direction, record.outcome) == ("outbound", "contained")
    assert record.path == ("voicemail", "voicemail_link", "voicemail_end")


async def test_an_outbound_call_nobody_answered_is_recorded_as_outbound(
    twilio_api: TwilioApi, make_server: MakeServer
) -> None:
    server = await place(await make_server())
    async with server.twilio() as sim:
        call = sim.outbound(twilio_api.calls[0].form_fields())
        status = call._request(sim.public(call.status_path), CallStatus="no-answer")
        assert (await call.send(status)).status == 200
    record = await server.record(call.sid)
    assert (record.flow_id, record.direction, record.status) == (
        "delivery_notice",
        "outbound",
        "no-answer",
    )


async def test_vars_in_a_url_that_is_not_signed_are_refused(
    twilio_api: TwilioApi, make_server: MakeServer
) -> None:
    server = await place(await make_server(), GIVEN)
    async with server.twilio() as sim:
        call = sim.outbound(twilio_api.calls[0].form_fields())
        signed = call._request(sim.public(call.voice_path), CallStatus="ringing")
        signature = sim.sign(signed.url, signed.params)  # what Twilio signed: the real vars
        forged = base64.urlsafe_b64encode(b'{"order": "999999"}').decode()
        url = signed.url.split("&vars=")[0] + f"&vars={forged}"
        reply = await sim.send(Request(url, signed.params), signature=signature)
        assert reply.status == 403
        assert (await sim.send(signed, signature=signature)).status == 200


async def test_the_notify_command_against_the_fake_api(
    twilio_api: TwilioApi, make_server: MakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await make_server()
    flows, url = str(server.config.flows), str(server.config.public_url)
    args = ["notify", "--flow", "delivery_notice", "--to", CALLER, "--flows", flows]
    # the command runs its own event loop: in a thread, while this one serves the fake API
    status = await asyncio.to_thread(
        main, [*args, "--url", url, "--vars", '{"order": "123456", "eta": "Friday"}']
    )
    assert status == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert out.startswith("call to **********21 on delivery_notice: CA") and "(queued)" in out
    assert decode_vars(parse_qs(urlsplit(twilio_api.calls[0]["Url"]).query)["vars"][0]) == {
        "order": "123456",
        "eta": "Friday",
    }
    given = '{"order": "1", "eta": "Friday"}'
    sms = await asyncio.to_thread(main, [*args, "--channel", "sms", "--vars", given])
    assert sms == 0
    (message,) = twilio_api.messages
    assert (message["To"], message["From"]) == (CALLER, NOTICE)
    # the greeting, then the first menu as the channel shows it (its choices 1, 0 and 2)
    greeting = "Hello, this is Example Shop. Your order 1 has shipped and should arrive on Friday."
    assert message["Body"].startswith(greeting + "\n\n")
    menu = message["Body"].removeprefix(greeting)
    assert all(key in menu for key in "102"), menu
    twilio_api.fail_next(400, 21211)
    failed = await asyncio.to_thread(main, [*args, "--url", url])
    assert failed == 1
    assert "the call to **********21 failed: Twilio error 21211" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ([], "notify: give"),  # --to NUMBER (one callee; after the merge: or --csv FILE)
        (["--to", "me"], "--to: expected a phone number"),
        (["--to", CALLER, "--vars", "[1]"], "--vars: expected a JSON object"),
        (["--to", CALLER, "--vars", "{oops"], "--vars: not JSON"),
        (["--to", CALLER, "--url", "ivr.example.com"], "--url: the server's public URL"),
    ],
)
def test_notify_names_what_is_wrong_before_anything_is_sent(
    extra: list[str],
    problem: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("IVR_PUBLIC_URL", raising=False)
    flows = str(REPO / "flows")
    assert main(["notify", "--flow", "delivery_notice", "--flows", flows, *extra]) == 2
    assert capsys.readouterr().err.startswith(f"ivr: {problem}")


async def test_an_outbound_call_on_a_media_stream_keeps_its_vars_and_machine(
    twilio_api: TwilioApi, make_server: MakeServer, voices: Voices
) -> None:
    server = await place(await make_server(speech="vosk"), GIVEN)  # every flow on a stream
    async with server.twilio() as sim:
        call = sim.outbound(twilio_api.calls[0].form_fields(), "machine_end_beep")
        await call.start()
        assert call.waiting == "connect", call.documents
        stream = await MediaStream.open(call, voices)
        try:
            await stream.server_closed()  # the voicemail said, the call ends
        finally:
            await stream.close()
    (sms,) = twilio_api.messages  # voicemail_link's, to the person called
    assert (sms["To"], sms["From"]) == (CALLER, NOTICE)
    assert sms["Body"].endswith("Track it: https://shop.example/t/654321")
    record = await server.record(call.sid)
    assert (record.direction, record.outcome) == ("outbound", "contained")
    assert record.path == ("voicemail", "voicemail_link", "voicemail_end")
    assert record.tasks == ("delivery_notice", "tracking_link")


async def test_a_text_notice_is_a_conversation_the_server_keeps(
    twilio_api: TwilioApi, make_server: MakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await make_server()
    flows = str(server.config.flows)
    args = ["notify", "--flow", "delivery_notice", "--to", CALLER, "--flows", flows]
    given = '{"order": "654321", "eta": "Monday", "tracking": "https://shop.example/t/654321"}'
    server_args = ["--channel", "sms", "--server", server.admin_url, "--vars", given]
    status = await asyncio.to_thread(main, [*args, *server_args])
    assert status == 0, capsys.readouterr().err
    assert "sms message to **********21 on delivery_notice: SM" in capsys.readouterr().out
    (opening,) = twilio_api.messages
    assert (opening["To"], opening["From"]) == (CALLER, NOTICE)
    assert opening["Body"] == (
        "Hello, this is Example Shop. Your order 654321 has shipped and should arrive on Monday."
        "\n\nReply 1 for the tracking link, 0 to talk to our order team, or 2 if that's all."
    )
    async with server.twilio() as sim:  # the answer goes on where the flow waits
        said = await sim.text(NOTICE, CALLER, "1")
    assert said == [
        "Example Shop: order 654321 arrives on Monday. Track it: https://shop.example/t/654321",
        "Thank you for shopping with Example Shop. Goodbye.",
    ]
    found = await wait_for_record(server)
    assert (found.channel, found.direction, found.outcome) == ("sms", "outbound", "contained")
    assert set(found.tasks) == {"delivery_notice", "tracking_link"}
    # refused requests: a bad number, an unknown flow
    bad = await asyncio.to_thread(main, [*args[:4], "+1", "--flows", flows, *server_args])
    assert bad != 0
    unknown = ["notify", "--flow", "delivery_notice", "--to", CALLER, "--flows", flows]
    twilio_api.fail_next(400, 21610)
    refused = await asyncio.to_thread(main, [*unknown, *server_args])
    assert refused == 1 and "21610" in capsys.readouterr().err
    assert len(await server.records()) == 1  # a text nobody got is no conversation


async def wait_for_record(server: Server) -> CallRecord:
    async def one() -> CallRecord | None:
        found = await server.records()
        return found[-1] if found else None

    return await wait_until(one)


async def test_a_text_notice_to_someone_in_a_conversation_is_refused(
    twilio_api: TwilioApi, make_server: MakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await make_server()
    async with server.twilio() as sim:
        await sim.text(NOTICE, CALLER, "hello")  # a conversation on delivery_notice goes on
    flows = str(server.config.flows)
    args = ["notify", "--flow", "delivery_notice", "--to", CALLER, "--flows", flows]
    given = '{"order": "1", "eta": "Friday"}'
    status = await asyncio.to_thread(
        main, [*args, "--channel", "sms", "--server", server.admin_url, "--vars", given]
    )
    assert status == 1
    assert "a conversation with them goes on there" in capsys.readouterr().err
    assert twilio_api.messages == []  # nothing was sent


async def test_a_rehearsal_on_the_softphone_texts_nobody(
    twilio_api: TwilioApi, make_server: MakeServer
) -> None:
    server = await make_server()
    rehearsals = server.app[STREAMS].rehearsals  # the /phone page's calls
    flow = server.app[FLOWS].get("order_status")
    assert flow is not None
    turn = await rehearsals.runner.run(
        flow, new_session(flow, "CA" + "1" * 32), CallStarted(CALLER, SHOP, at=time.time())
    )
    for keys in ("777888#", "1"):  # the order, then "text me the link"
        turn = await rehearsals.runner.run(flow, turn.session, Digits(keys, at=time.time()))
    assert "tracking_link" in turn.session.tasks
    assert twilio_api.messages == []  # kept, not sent
    outbox = rehearsals.runner.messenger
    assert isinstance(outbox, Outbox) and outbox.sent[0][0] == CALLER
