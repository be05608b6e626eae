"""SMS and WhatsApp conversations through the example flows, signed as Twilio signs them."""

from __future__ import annotations

import time

import pytest

from ivr.server import HOOKS, KEYS, TEXTS
from ivr.store.campaigns import open_campaigns
from ivr.store.records import CallRecord
from ivr.telephony.messaging import HELP_TEXT
from tests.functional.conftest import OPEN, Backend, MakeServer, Server, metric
from tests.functional.test_report import report
from tests.functional.twilio_sim import TwilioSim, wait_until
from tests.twilio_api import TwilioApi

BANK, SHOP = "+15550100", "+15550110"
CUSTOMER = "+15557770001"


async def records_of(server: Server, count: int) -> list[CallRecord]:
    """The call records, once `count` are written."""

    async def written() -> list[CallRecord]:
        found = await server.records()
        return found if len(found) >= count else []

    return await wait_until(written)


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def stored(request: pytest.FixtureRequest, make_server: MakeServer) -> Server:
    """The server, its sessions in each store."""
    url = {"memory": "memory://", "sqlite": None}.get(request.param)
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
    return await make_server(sessions=url)


async def test_sms_order_status_conversation(stored: Server, backend: Backend) -> None:
    server = stored
    async with server.twilio() as sim:
        await order_status_by_sms(server, sim)
    # ended by goodbye: its record is final at once (no status callback comes by text), so
    # its session goes
    texts = server.app[TEXTS]
    [record] = await server.records()

    async def gone() -> bool:
        return await texts.sessions.load(record.call_sid) is None

    await wait_until(gone)


async def order_status_by_sms(server: Server, sim: TwilioSim) -> None:
    first = await sim.text(SHOP, CUSTOMER, "hi")
    assert first == [  # the prompts' `text:` variants
        "Hi, this is Example Shop. I can tell you where your order is.",
        "Please send your six digit order number.",
    ]
    answer = await sim.text(SHOP, CUSTOMER, "it's 123 456")  # digits out of the words
    assert answer[0].startswith("Order 123456 has shipped"), answer  # `spell` reads it written
    assert answer[-1] == "Anything else? Reply 1 to check another order, or 2 if that's all."
    done = await sim.text(SHOP, CUSTOMER, "no thanks")  # words through the intent matcher
    assert done == ["Thank you for shopping with Example Shop. Goodbye."]
    [record] = await records_of(server, 1)
    assert (record.channel, record.direction, record.outcome) == ("sms", "inbound", "contained")
    assert record.tasks == ("order_status",)
    assert record.call_sid.startswith("TX") and record.customer
    assert "anything_else:speech:match" in record.inputs
    exposition = await server.metrics()
    ended = metric(exposition, "ivr_calls_ended_total", flow="order_status", channel="sms")
    assert ended == 1


async def test_first_message_answers_the_first_menu(server: Server, sim: TwilioSim) -> None:
    """A customer who texts what they want skips the question it answers."""
    server.set_hours(OPEN)
    first = await sim.text(BANK, CUSTOMER, "block my card")
    assert first[0] == "Welcome to Example Bank."
    assert not any(m.startswith("Reply 1 for your") for m in first)
    # the account number is sensitive: carriers keep messages, so it is not asked here
    assert first[-1] == (
        "For your security we can't do this by message. Please call us at +15550100."
    )
    [record] = await records_of(server, 1)
    assert (record.outcome, record.reason, record.reason_detail) == (
        "transferred",
        "channel",
        "ask_account",
    )
    assert "ask_account" not in record.path  # never asked


async def test_whatsapp_is_its_own_channel_and_a_new_message_starts_over(
    server: Server, sim: TwilioSim
) -> None:
    first = await sim.text(SHOP, f"whatsapp:{CUSTOMER}", "hello")
    assert first[-1] == "Please send your six digit order number."
    # the same number by SMS is another conversation (another channel)
    sms = await sim.text(SHOP, CUSTOMER, "hello")
    assert sms == first
    wrong = await sim.text(SHOP, f"whatsapp:{CUSTOMER}", "12")
    assert wrong == [
        "That is not a six digit order number.",
        "Please send your six digit order number.",
    ]
    texts = server.app[TEXTS]
    assert await texts.expire(time.time() + 3600) == 2  # idle past defaults.idle: abandoned
    records = await records_of(server, 2)
    assert sorted(r.channel for r in records) == ["sms", "whatsapp"]
    assert {r.outcome for r in records} == {"abandoned"}
    again = await sim.text(SHOP, f"whatsapp:{CUSTOMER}", "hello")
    assert again == first  # a new conversation


async def test_agents_are_reached_by_calling(server: Server, sim: TwilioSim) -> None:
    await sim.text(SHOP, CUSTOMER, "hi")
    said = await sim.text(SHOP, CUSTOMER, "agent")
    assert said == ["To speak to an agent, please call us at +15550110."]
    [record] = await records_of(server, 1)
    assert (record.outcome, record.reason, record.queue) == ("transferred", "global", "orders")


async def test_bad_messaging_requests(server: Server, sim: TwilioSim) -> None:
    forged = await sim.post(
        "/twilio/messaging",
        {"MessageSid": "SM" + "0" * 32, "From": CUSTOMER, "To": SHOP, "Body": "hi"},
        signature="forged",
    )
    assert forged.status == 403
    no_sid = await sim.post("/twilio/messaging", {"From": CUSTOMER, "To": SHOP, "Body": "x"})
    assert no_sid.status == 400
    nobody = await sim.text("+15559999999", CUSTOMER, "hi")  # no flow at that number
    assert nobody == []  # no flow answers there: nothing is sent


async def test_stop_ends_the_conversation_and_opts_out(server: Server, sim: TwilioSim) -> None:
    await sim.text(SHOP, CUSTOMER, "hi")
    assert await sim.text(SHOP, CUSTOMER, "STOP") == []  # Twilio's Advanced Opt-Out confirms
    [record] = await records_of(server, 1)
    assert (record.outcome, record.last_node) == ("abandoned", "ask_order")
    campaigns = open_campaigns(server.config.records_url)
    keys = server.app[KEYS]
    try:
        assert await campaigns.opted_out(str(keys.customer_id(CUSTOMER)))
        # a YES from a number that stopped opts it in again, not a turn of a flow
        assert await sim.text(SHOP, CUSTOMER, "yes") == []
        assert not await campaigns.opted_out(str(keys.customer_id(CUSTOMER)))
    finally:
        await campaigns.close()
    # HELP outside a conversation says how to stop; inside one, "yes" and "help" are the flow's
    assert await sim.text(SHOP, CUSTOMER, "help") == [HELP_TEXT]
    await sim.text(SHOP, CUSTOMER, "hi")
    assert (await sim.text(SHOP, CUSTOMER, "help"))[0] != HELP_TEXT


async def test_a_call_that_texts_a_link_goes_on_by_sms_as_one_conversation(
    twilio_api: TwilioApi, make_server: MakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await make_server()
    texts = server.app[TEXTS]
    async with server.twilio() as sim:
        call = await sim.start(SHOP, CUSTOMER)
        await call.press("777888#")
        assert "I've sent the tracking link to your phone." in await call.press("1")
        await call.hangup()
        (sms,) = twilio_api.messages
        assert sms["To"] == CUSTOMER and sms["Body"].endswith("Anything else? Reply here.")
        assert await texts.expire() == 0  # its window is open: nothing is final yet
        assert await server.records() == []
        # the answer from the same number goes on where send_link said, by SMS
        assert await sim.text(SHOP, CUSTOMER, "1") == ["Please send your six digit order number."]
        said = await sim.text(SHOP, CUSTOMER, "654321")
        assert said[0] == "Order 654321 was delivered on Monday, November 23."
        assert await sim.text(SHOP, CUSTOMER, "2") == [
            "Thank you for shopping with Example Shop. Goodbye."
        ]
    [record] = await records_of(server, 1)  # one conversation, one record
    assert record.call_sid == call.sid
    assert (record.channel, record.outcome) == ("voice", "contained")  # counted where it began
    assert [(leg["channel"], leg.get("outcome")) for leg in record.legs] == [
        ("voice", "abandoned"),
        ("sms", "contained"),
    ]
    assert set(record.tasks) == {"order_status", "tracking_link"}
    exposition = await server.metrics()
    assert metric(exposition, "ivr_calls_ended_total", flow="order_status", channel="voice") == 1
    assert metric(exposition, "ivr_calls_ended_total", flow="order_status", channel="sms") == 0
    switched = {"flow": "order_status", "from_channel": "voice", "to_channel": "sms"}
    assert metric(exposition, "ivr_channel_switches_total", **switched) == 1
    found = await report(server.config.records_url, capsys=capsys)
    assert found["deflections"]["voice>sms"]["calls"] == 1
    assert found["deflections"]["voice>sms"]["outcomes"]["contained"] == 1
    assert found["deflections"]["voice>sms"]["rate"] == 1.0  # of the calls started by voice


async def test_a_window_nobody_answered_makes_the_call_final(
    twilio_api: TwilioApi, make_server: MakeServer
) -> None:
    server = await make_server()
    async with server.twilio() as sim:
        call = await sim.start(SHOP, CUSTOMER)
        await call.press("777888#")
        await call.press("1")
        await call.press("2")  # that's all: goodbye
    assert await server.app[TEXTS].expire(time.time() + 31 * 60) == 1
    record = await server.record(call.sid)
    assert (record.outcome, record.legs) == ("contained", ())
    async with server.twilio() as sim:  # a text after the window is a new conversation
        assert (await sim.text(SHOP, CUSTOMER, "hello"))[0].startswith("Hi, this is Example Shop")


async def test_twilio_sending_a_message_again_gets_the_same_answer(
    server: Server, sim: TwilioSim
) -> None:
    await sim.text(SHOP, CUSTOMER, "hi")
    params = {"MessageSid": "SM" + "7" * 32, "From": CUSTOMER, "To": SHOP, "Body": "12"}
    first = await sim.post("/twilio/messaging", params)
    again = await sim.post("/twilio/messaging", params)  # our answer was late: sent again
    assert first.status == again.status == 200 and first.text == again.text
    assert "not a six digit order number" in first.text
    said = await sim.text(SHOP, CUSTOMER, "12")  # a new message is a new no-match
    assert said[0] == "That is not a six digit order number."
    await sim.text(SHOP, CUSTOMER, "STOP")
    [record] = await records_of(server, 1)
    assert record.inputs == {"ask_order:dtmf:no_match": 2}  # not 3: the resent one is not


async def test_stop_during_the_call_closes_its_window_and_the_call_goes_on(
    twilio_api: TwilioApi, make_server: MakeServer
) -> None:
    server = await make_server()
    async with server.twilio() as sim:
        call = await sim.start(SHOP, CUSTOMER)
        await call.press("777888#")
        await call.press("1")  # the link is texted, with a window to answer it
        assert await sim.text(SHOP, CUSTOMER, "STOP") == []  # while still on the phone
        assert await call.press("2") == ["Thank you for shopping with Example Shop. Goodbye."]
    record = await server.record(call.sid)  # final at once: no window any more
    assert (record.outcome, record.legs) == ("contained", ())


async def test_a_call_with_a_window_whose_status_never_came_is_closed(
    twilio_api: TwilioApi, make_server: MakeServer
) -> None:
    server = await make_server()
    async with server.twilio() as sim:
        call = await sim.start(SHOP, CUSTOMER)
        await call.press("777888#")
        await call.press("1")  # then silence: no hang-up, no status callback
    assert await server.app[HOOKS].reap(time.time() + 1) == 1  # the reaper closes the call
    assert await server.app[TEXTS].expire(time.time() + 31 * 60) == 1  # then its window
    record = await server.record(call.sid)
    assert (record.outcome, record.status) == ("abandoned", "unknown")
