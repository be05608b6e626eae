"""One customer history, over signed webhooks on loopback: a caller who blocked a card on
telebanking and calls again from the same number is asked about it and routed to the
queue that served them (the `<Enqueue>` task says so); another number is not; a records
store that fails leaves a first-time caller's history and the call goes on."""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET

import pytest

from ivr.cli import main
from ivr.engine.session import Session
from ivr.server import HOOKS, KEYS, RECOGNITION
from ivr.speech.vosk_speech import VoskSpeech
from ivr.store.records import CallRecord
from tests.functional.conftest import BANK, CALLER, OPEN, Backend, MakeServer, Server
from tests.functional.stream_sim import MediaStream
from tests.functional.twilio_sim import TwilioSim, wait_until
from tests.voices import Voices

WORKFLOW = "WW" + "0123456789abcdef" * 2
ASKED = (
    "Are you calling about the card you blocked earlier today? Press 1 or say yes. "
    "Otherwise press 2 or say no."
)
MENU = "For your balance, press 1 or say balance."
OTHER = "+15559876543"
KO = "+15550130"  # telebanking_ko's number: its calls go to Media Streams


async def block_a_card(sim: TwilioSim, server: Server, number: str, *, agent: bool) -> CallRecord:
    """A call that blocks a card, then (`agent`) asks for an agent, and hangs up; its
    record, once written."""
    call = await sim.start(BANK, number)
    assert call.heard[0] == "Welcome to Example Bank." and call.last[-1].startswith(MENU)
    await call.press("2")
    await call.press("12345674#")
    heard = await call.press("1")  # yes, block the card ending in 4321
    assert heard[0].startswith("Your card has been blocked.")
    if agent:
        assert (await call.press("0"))[0] == "Connecting you to an agent."
    await call.hangup()
    return await server.record(call.sid)


def task_of(enqueue: ET.Element | None) -> dict[str, str]:
    assert enqueue is not None and enqueue.tag == "Enqueue", enqueue
    assert enqueue.get("workflowSid") == WORKFLOW
    (task,) = enqueue
    told: dict[str, str] = json.loads(task.text or "")
    return told


@pytest.fixture
async def bank(make_server: MakeServer, backend: Backend) -> Server:
    server = await make_server(workflow_sid=WORKFLOW)  # agents' queues are TaskRouter's
    server.set_hours(OPEN)
    return server


async def test_a_caller_who_blocked_a_card_is_asked_about_it_and_routed_to_the_card_team(
    bank: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    async with bank.twilio() as sim:
        first = await block_a_card(sim, bank, CALLER, agent=False)
        assert (first.tasks, first.queue, first.outcome) == (("card_blocked",), None, "abandoned")

        again = await sim.start(BANK, CALLER)
        assert again.heard == ["Welcome to Example Bank.", ASKED]
        assert await again.press("1") == [
            "Connecting you to an agent about your card.",
            "Thank you for talking to us. How satisfied are you with your call? Press a number"
            " from 1 to 5, where 5 is very satisfied.",
        ]
        # no queue served them before: the card team's
        told = task_of(again.transfer)
        assert told["queue"] == "cards" and told["last_task"] == "card_blocked"
        await again.hangup()
        second = await bank.record(again.sid)
        assert (second.queue, second.outcome, second.customer) == (
            "cards",
            "transferred",
            first.customer,
        )

        stranger = await sim.start(BANK, OTHER)  # another number: no history
        assert stranger.heard == ["Welcome to Example Bank.", stranger.last[-1]]
        assert stranger.last[-1].startswith(MENU)
        await stranger.hangup()
        await bank.record(stranger.sid)

    # ops read the customer's two calls, newest first, the account number masked
    where = ["--records", bank.config.records_url, "--data", str(bank.config.data)]
    capsys.readouterr()
    assert main(["customers", "show", "--number", CALLER, *where]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"customer {first.customer}: 2 conversation(s), newest first")
    assert out.index(again.sid) < out.index(first.call_sid) and stranger.sid not in out
    assert "pressed '****': matched" in out and "12345674" not in out
    assert CALLER.lstrip("+") not in out


async def test_a_returning_caller_goes_to_the_queue_that_served_them_last(bank: Server) -> None:
    async with bank.twilio() as sim:
        first = await block_a_card(sim, bank, CALLER, agent=True)
        assert (first.tasks, first.queue) == (("card_blocked",), "support")

        again = await sim.start(BANK, CALLER)
        assert again.heard == ["Welcome to Example Bank.", ASKED]
        await again.say("yes")
        told = task_of(again.transfer)
        assert told == {
            "queue": "support",  # where the card was dealt with last time
            "reason": "option:yes",
            "option": "yes",
            "last_task": "card_blocked",
        }
        await again.hangup()

        # the same customer on WhatsApp is keyed alike: the history is theirs
        keys = bank.app[KEYS]
        assert keys.customer_id(f"whatsapp:{CALLER}") == first.customer
        flow = bank.app[HOOKS].flows.get("telebanking")
        assert flow is not None
        calls = bank.app[HOOKS].calls
        history = await calls.history(flow, f"whatsapp:{CALLER}", first.ended_at + 60)
        assert history["last_task"] == "card_blocked" and history["calls_today"] >= 1


async def test_a_failing_records_store_leaves_the_history_empty_and_the_call_goes_on(
    make_server: MakeServer, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "ivr.history")
    # nothing listens on port 1: every read of the records fails at once
    server = await make_server(records="postgresql://ivr@127.0.0.1:1/ivr")
    server.set_hours(OPEN)
    async with server.twilio() as sim:
        call = await sim.start(BANK, CALLER)
        assert call.heard[0] == "Welcome to Example Bank." and call.last[-1].startswith(MENU)
        assert not call.ended
        await call.hangup()
    warned = [r.getMessage() for r in caplog.records if r.name == "ivr.history"]
    assert warned and "the call goes on" in warned[0]
    assert CALLER not in " ".join(warned) and CALLER.lstrip("+") not in " ".join(warned)


async def test_a_media_stream_call_starts_with_the_callers_history(
    make_server: MakeServer, backend: Backend, korean_speech: VoskSpeech, voices: Voices
) -> None:
    server = await make_server()
    server.app[RECOGNITION].speech = korean_speech
    sessions = server.app[HOOKS].sessions

    async def at_menu(sid: str, node: str) -> Session | None:
        stored = await sessions.load(sid)
        ok = stored and (stored.session.node, stored.session.waiting) == (node, "listen")
        return stored.session if stored and ok else None

    seen: list[dict[str, object]] = []
    async with server.twilio() as sim:
        for _ in range(2):
            call = await sim.start(KO, CALLER)
            assert call.waiting == "connect", call.documents
            stream = await MediaStream.open(call, voices)
            try:
                started = await wait_until(lambda sid=call.sid: at_menu(sid, "main"), timeout=30)
                seen.append(dict(started.vars["history"]))
                stream.press("3")  # the opening hours: a task done
                await wait_until(lambda sid=call.sid: at_menu(sid, "anything_else"), timeout=30)
                stream.press("2")
                await stream.server_closed()
                await call.stream_closed()
            finally:
                await stream.close()
            assert (await server.record(call.sid)).tasks == ("hours",)
    assert seen[0]["last_task"] is None and seen[0]["calls_today"] == 0
    assert (seen[1]["last_task"], seen[1]["last_outcome"]) == ("hours", "contained")
    assert seen[1]["calls_today"] == 1 and seen[1]["last_channel"] == "voice"


async def test_a_customer_who_blocked_a_card_by_phone_and_texts_is_asked_about_it(
    bank: Server,
) -> None:
    async with bank.twilio() as sim:
        call = await block_a_card(sim, bank, CALLER, agent=False)
        asked = await sim.text(BANK, f"whatsapp:{CALLER}", "hello")  # the same customer
        assert asked[0] == "Welcome to Example Bank."
        assert asked[1] == "Is this about the card you blocked earlier today? Reply YES or NO."
        told = await sim.text(BANK, f"whatsapp:{CALLER}", "yes")
        assert told[-1] == "To speak to an agent, please call us at +15550100."

        async def both() -> list[CallRecord]:
            found = await bank.records()
            return found if len(found) == 2 else []

        records = {r.channel: r for r in await wait_until(both)}
        text = records["whatsapp"]
        assert (text.outcome, text.queue) == ("transferred", "cards")
        assert text.customer == call.customer is not None
