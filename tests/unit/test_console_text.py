"""`ivr call --channel`: the console rehearses a flow as a text conversation, its turns
shown as the channel's messages and typed lines read as messages."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ivr.backend import Backend
from ivr.cli import main
from ivr.console import call
from ivr.flow import parse_and_compile
from ivr.runner import Runner

FLOW = """
flow: shop
numbers: ["+15550123"]
start: hello
nodes:
  hello:
    say: {say: "Thanks for calling the shop.", text: "Hi, this is the shop."}
    next: order
  order:
    ask:
      prompt: {say: "Key in your order number, then the pound key.", text: "Your order number?"}
      input: digits
      digits: {min: 4, max: 4, finish_on: "#"}
      save_as: order
    next: menu
  menu:
    menu:
      prompt: "Press 1 to hear it again, or say agent."
      options:
        again: {dtmf: "1", speech: [again], goto: menu}
        agent: {dtmf: "0", speech: [agent], goto: agent}
        done: {dtmf: "2", speech: [done], goto: bye}
  agent: {transfer: {to: "+15550199", say: "Connecting you."}}
  bye: {end: {say: "Bye."}}
"""


async def run(lines: str, channel: str) -> tuple[str, str]:
    flow = parse_and_compile(FLOW, "shop.yaml", {})
    backend = Backend(["127.0.0.1:*"])
    out = io.StringIO()
    try:
        outcome = await call(flow, Runner(backend), io.StringIO(lines), out, channel=channel)
    finally:
        await backend.close()
    return outcome, out.getvalue()


async def test_an_sms_conversation_reads_its_text_variants_and_written_numbers() -> None:
    outcome, shown = await run("it is 4321 thanks\ndone\n", "sms")
    assert outcome == "contained"
    assert shown.splitlines()[:4] == [
        "sms> Hi, this is the shop.",
        "sms> Your order number?",
        "you> it is 4321 thanks",  # digits among words: the order number
        "sms> Reply 1 for again, 0 for agent, 2 for done. Or tell me what you need.",
    ]
    assert "press" not in shown and "pound" not in shown and "4 3 2 1" not in shown
    assert shown.rstrip().endswith("== outcome: contained (tasks resolved: none)")


async def test_a_chat_shows_its_buttons_and_an_agent_is_a_call() -> None:
    outcome, shown = await run("4321\n0\n", "chat")
    assert outcome == "transferred"
    assert "  [buttons: 1 again | 0 agent | 2 done]" in shown
    assert "chat> To speak to an agent, please call us at +15550123." in shown
    assert "Connecting you." not in shown


async def test_end_of_input_leaves_the_conversation_abandoned() -> None:
    outcome, shown = await run("", "whatsapp")
    assert outcome == "abandoned"
    assert "whatsapp> Your order number?" in shown


def test_the_channel_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    path = tmp_path / "shop.yaml"
    path.write_text(FLOW)
    monkeypatch.setattr("sys.stdin", io.StringIO("1234#\n2\n"))
    assert main(["call", str(path), "--channel", "sms"]) == 0
    shown = capsys.readouterr().out
    assert "sms> Hi, this is the shop." in shown and "sms> Bye." in shown


def test_audio_flags_are_for_voice_calls(tmp_path: Path, capsys) -> None:
    path = tmp_path / "shop.yaml"
    path.write_text(FLOW)
    assert main(["call", str(path), "--channel", "chat", "--say", "hello"]) == 2
    assert capsys.readouterr().err == (
        "ivr: --speech, --wav and --say are for voice calls, not --channel chat\n"
    )
