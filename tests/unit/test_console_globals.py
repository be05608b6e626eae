"""`ivr call` with global options in an ask, help, and a subflow speaking its own language."""

from __future__ import annotations

import io
from pathlib import Path

from ivr.backend import Backend
from ivr.console import call
from ivr.flow import load_flow, parse_and_compile
from ivr.flow.model import Flow
from ivr.runner import Runner

FLOW = """
flow: bank
start: ask
global:
  agent: {dtmf: "0", speech: [agent, operator], goto: agent}
  repeat: {dtmf: "*", speech: [repeat], repeat: true}
  help: {speech: [help], help: true}
nodes:
  ask:
    ask:
      prompt: "Your card number, then pound?"
      help: "The digits on the front of your card."
      digits: {min: 4, max: 4, finish_on: "#"}
      save_as: card
    next: bye
  agent: {transfer: {to: "+15550199"}}
  bye: {end: {say: "Bye."}}
"""


async def run(flow: Flow, lines: str) -> tuple[str, str]:
    backend = Backend([])
    out = io.StringIO()
    try:
        outcome = await call(flow, Runner(backend), io.StringIO(lines), out)
    finally:
        await backend.close()
    return outcome, out.getvalue()


async def test_globals_and_help_in_an_ask_on_the_console() -> None:
    flow = parse_and_compile(FLOW, "bank.yaml", {})
    outcome, shown = await run(flow, "*\nhelp\n12*\noperator\n")
    assert "[enter 4-4 digits then # (or *); say agent / operator / repeat / help" in shown
    assert shown.count("ivr> Your card number, then pound?") == 3  # start, *, 12*
    assert "ivr> The digits on the front of your card." in shown
    assert "[transfer to +15550199 queue -; reason global:agent]" in shown
    assert outcome == "transferred"


async def test_a_subflows_own_language_is_shown(tmp_path: Path) -> None:
    (tmp_path / "main.yaml").write_text(
        "flow: main\nstart: sub\nnodes:\n  sub: {subflow: {flow: ko, next: bye}}\n"
        "  bye: {end: {say: Bye.}}\n"
    )
    (tmp_path / "ko.yaml").write_text(
        "flow: ko\nlanguage: ko-KR\nstart: hi\nnodes:\n  hi: {end: {say: 안녕하세요.}}\n"
    )
    outcome, shown = await run(load_flow(tmp_path / "main.yaml", {}), "")
    assert "ivr> [ko-KR] 안녕하세요.\nivr> Bye.\n" in shown
    assert outcome == "contained"
