"""Subflows inherit the calling flow's defaults, on_fail and global options unless they
declare their own, and speak their prompts in their own language and voice."""

from __future__ import annotations

from pathlib import Path

from ivr.engine import actions as act
from ivr.engine import new_session, step
from ivr.engine.events import CallStarted, Digits, Event, NoInput
from ivr.flow import load_flow
from ivr.flow.model import Flow
from ivr.telephony.twiml import Voice, render

MAIN = """flow: main
start: auth
language: en-US
voice: Polly.Joanna
defaults: {retries: 0, on_fail: agent, no_match: "Not that."}
global:
  agent: {dtmf: "0", speech: [agent], goto: agent}
nodes:
  auth:
    subflow: {flow: pin, next: bye}
  agent:
    transfer: {to: "+15550199"}
  bye:
    end: {say: "Bye."}
"""
PIN = """flow: pin
start: choose
{extra}
nodes:
  choose:
    menu:
      prompt: "Press 1 to enter your PIN."
      options:
        go: {{dtmf: "1", goto: ask}}
  ask:
    ask: {{prompt: "Your PIN?", save_as: pin, digits: {{min: 4, max: 4}}}}
    next: done
  done:
    end: {{say: "Thanks."}}
  own_agent:
    transfer: {{to: "+15550111"}}
"""


def load(tmp_path: Path, extra: str = "") -> Flow:
    (tmp_path / "main.yaml").write_text(MAIN)
    (tmp_path / "pin.yaml").write_text(PIN.format(extra=extra))
    return load_flow(tmp_path / "main.yaml", {})


def run(flow: Flow, *events: Event) -> tuple[list[act.Action], str | None, str | None]:
    session, out = step(flow, new_session(flow, "c"), CallStarted(at=0.0))
    for event in events:
        session, out = step(flow, session, event)
    return out, session.outcome, session.reason


def test_a_global_key_in_a_subflow_is_the_calling_flows(tmp_path):
    out, outcome, reason = run(load(tmp_path), Digits("0", at=1.0))
    assert (outcome, reason) == ("transferred", "global:agent")
    assert out[-1] == act.Transfer("+15550199", None, "global:agent")


def test_retries_and_on_fail_of_the_calling_flow_apply_in_a_subflow(tmp_path):
    out, outcome, reason = run(load(tmp_path), Digits("1", at=1.0), Digits("12#", at=2.0))
    assert (outcome, reason) == ("transferred", "on_fail:auth.ask")  # retries: 0, inherited
    out, outcome, _ = run(load(tmp_path), Digits("1", at=1.0), NoInput(at=2.0))
    assert outcome == "transferred"


def test_a_subflow_declaring_its_own_keeps_its_own(tmp_path):
    extra = (
        "defaults: {retries: 1, on_fail: own_agent}\n"
        'global:\n  agent: {dtmf: "9", speech: [agent], goto: own_agent}'
    )
    flow = load(tmp_path, extra)
    out, outcome, reason = run(flow, Digits("9", at=1.0))
    assert (outcome, reason) == ("transferred", "global:agent")
    assert out[-1] == act.Transfer("+15550111", None, "global:agent")
    out, outcome, _ = run(flow, Digits("0", at=1.0))  # not its global
    assert outcome is None and [a.text for a in out if isinstance(a, act.Prompt)] == [
        "Not that.",  # the calling flow's no_match, inherited
        "Press 1 to enter your PIN.",
    ]
    out, outcome, _ = run(flow, Digits("0", at=1.0), Digits("0", at=2.0))
    assert outcome == "transferred" and out[-1] == act.Transfer(
        "+15550111", None, "on_fail:auth.choose"
    )


def test_a_subflows_prompts_are_stamped_with_its_own_language(tmp_path):
    flow = load(tmp_path, "language: ko-KR")
    out, _, _ = run(flow)
    prompt, listen = out
    assert prompt == act.Prompt(prompt.parts, "ko-KR", None)  # Korean's default voice
    assert isinstance(listen, act.Listen) and listen.language == "ko-KR"
    twiml = render(out, Voice("en-US", "Polly.Joanna"), 1)
    assert 'language="ko-KR" voice="Polly.Seoyeon"' in twiml
    assert '<Gather action="/twilio/gather?t=1" finishOnKey="" input="dtmf"' in twiml
    out, _, _ = run(flow, Digits("1", at=1.0), Digits("1234", at=2.0))
    thanks, bye = (a for a in out if isinstance(a, act.Prompt))
    assert (thanks.text, thanks.language, bye.text, bye.language) == (
        "Thanks.",
        "ko-KR",
        "Bye.",  # the calling flow's own: not stamped
        None,
    )


def test_a_subflow_in_the_flows_language_and_voice_is_not_stamped(tmp_path):
    out, _, _ = run(load(tmp_path, "language: en-US"))
    assert out[0] == act.Prompt(out[0].parts)
    out, _, _ = run(load(tmp_path, "voice: Polly.Matthew"))
    assert (out[0].language, out[0].voice) == ("en-US", "Polly.Matthew")
    assert 'voice="Polly.Matthew"' in render(out, Voice("en-US", "Polly.Joanna"), 1)
