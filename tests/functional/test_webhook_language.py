"""The webhooks speak and listen in the flow's language: its voice (or the language's
default one), its speech model, its hints kept whole, and the apologies ivr says itself.
The real app on loopback, driven by signed requests."""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET

import pytest

from ivr.engine.apologies import SAID
from ivr.server import FLOWS, HOOKS
from tests.functional.conftest import CALLER, Server
from tests.functional.twilio_sim import ACCOUNT_SID, TwilioSim, new_call_sid

RU = "+15550140"
BANK_RU = """\
flow: bank_ru
language: ru-RU
speech_model: phone_call
numbers: ["+15550140"]
start: main
nodes:
  main:
    menu:
      prompt: "Чтобы узнать баланс, скажите баланс или нажмите 1."
      options:
        balance: {dtmf: "1", speech: ["баланс, пожалуйста", баланс], goto: keys}
        agent: {dtmf: "0", speech: [оператор], goto: agent}
  keys:
    menu:
      prompt: "Нажмите 1, чтобы закончить."
      options:
        done: {dtmf: "1", goto: bye}
  agent:
    transfer: {to: "+15550199"}
  bye:
    end: {say: "До свидания."}
"""
NO_AGENT = (
    "Извините, сейчас ни один оператор не может ответить. Пожалуйста, позвоните позже. До свидания."
)
FAILED = SAID["failed"]["ru"]
LOST = "Извините, мы не смогли продолжить этот звонок. Пожалуйста, позвоните ещё раз. До свидания."


def add_flow(server: Server, text: str = BANK_RU) -> None:
    (server.config.flows / "bank_ru.yaml").write_text(text)
    assert "bank_ru" in server.app[FLOWS].reload()


def says(document: ET.Element) -> list[tuple[str | None, str | None, str | None]]:
    """(voice, language, text) of every <Say>, wherever it is."""
    return [(s.get("voice"), s.get("language"), s.text) for s in document.iter("Say")]


async def test_speech_model_hints_and_default_voice(sim: TwilioSim, server: Server) -> None:
    add_flow(server)
    call = await sim.start(RU, CALLER)
    gather = call.gather
    assert gather.get("speechModel") == "phone_call"
    assert gather.get("speechTimeout") == "2"  # Twilio refuses "auto" with a model
    assert gather.get("language") == "ru-RU"
    # a phrase with a comma stays one hint
    assert gather.get("hints") == "баланс пожалуйста, баланс, оператор"
    assert says(gather) == [
        ("Polly.Tatyana", "ru-RU", "Чтобы узнать баланс, скажите баланс или нажмите 1.")
    ]

    await call.say("баланс пожалуйста")
    keys = call.gather  # a menu of keys only: no speech settings at all
    assert keys.get("input") == "dtmf"
    for name in ("hints", "speechModel", "speechTimeout", "language"):
        assert keys.get(name) is None, name
    assert call.last == ["Нажмите 1, чтобы закончить."]


async def test_speech_timeout_set_by_the_flow(sim: TwilioSim, server: Server) -> None:
    add_flow(server, BANK_RU.replace("speech_model: phone_call\n", "speech_timeout: 3\n"))
    gather = (await sim.start(RU, CALLER)).gather
    assert gather.get("speechModel") is None and gather.get("speechTimeout") == "3"


async def test_no_agent_is_said_in_the_flows_language(sim: TwilioSim, server: Server) -> None:
    add_flow(server)
    call = sim.new_call(RU, CALLER)
    call.dial_status = "no-answer"
    await call.start()
    await call.press("0")
    assert call.end == "hangup"
    assert call.last[-1] == NO_AGENT
    assert call.last_reply is not None
    assert says(call.last_reply.xml()) == [("Polly.Tatyana", "ru-RU", NO_AGENT)]


async def test_a_lost_call_hears_its_flows_language(sim: TwilioSim, server: Server) -> None:
    add_flow(server)
    sid = new_call_sid()
    form = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": sid,
        "CallStatus": "in-progress",
        "From": CALLER,
        "To": RU,
        "Digits": "1",
    }
    reply = await sim.post("/twilio/gather?t=1", form)
    assert reply.status == 200
    assert says(reply.xml()) == [("Polly.Tatyana", "ru-RU", LOST)]
    assert [v.tag for v in reply.xml()] == ["Say", "Hangup"]
    record = await server.record(sid)
    assert (record.outcome, record.flow_id, record.error) == ("failed", "bank_ru", "no session")


async def test_a_broken_store_still_apologises_in_the_flows_language(
    sim: TwilioSim, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last resort (the failed call cannot even be saved) speaks the called number's
    flow's language, in its voice."""

    async def disk_full(*args: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    add_flow(server)
    call = await sim.start(RU, CALLER)
    monkeypatch.setattr(server.app[HOOKS].sessions, "save", disk_full)
    assert await call.press("1") == [FAILED]
    assert call.end == "hangup" and call.last_reply is not None
    assert says(call.last_reply.xml()) == [("Polly.Tatyana", "ru-RU", FAILED)]
