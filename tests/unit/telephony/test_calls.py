"""The call lifecycle when the session store is away: the fallback ending, and what the
store keeps of a spooled call once it is back (`settled`)."""

from __future__ import annotations

from typing import Any

import pytest

from ivr.backend import Backend
from ivr.engine import actions as act
from ivr.engine.session import Session
from ivr.flow.compiler import compile_flow
from ivr.flow.loader import parse_flow
from ivr.flow.model import Flow, Text
from ivr.metrics import Metrics
from ivr.runner import Runner
from ivr.telephony.calls import FALLBACK_APOLOGY, STORE_DOWN, Calls, settled

SID = "CA" + "2" * 32
FLOW = """flow: t
start: main
defaults:
  fallback: agent
nodes:
  main:
    ask: {prompt: "Your PIN?", input: digits, save_as: pin, sensitive: true}
    next: agent
  agent:
    transfer: {to: "+15550199", queue: support, say: "Connecting you.",
               attributes: {why: "{{ reason }}", pin: "{{ pin }}"}}
"""


def flow(text: str = FLOW) -> Flow:
    compiled, _ = compile_flow(parse_flow(text, "t.yaml", {}))
    return compiled


def calls() -> Calls:
    none: Any = None  # what the fallback does not touch
    return Calls(none, none, Runner(Backend()), none, Metrics())


def at_the_pin() -> Session:
    s = Session(SID, "t", "v", node="main", waiting="listen", started_at=100.0, turn=1)
    s.path, s.sensitive, s.vars = ["main"], ["pin"], {"pin": "1234"}
    return s


def test_the_fallback_apologises_and_transfers_with_the_reason_store() -> None:
    turn = calls().fallback(flow(), at_the_pin(), "the sessions store is unreachable")
    s = turn.session
    assert (s.outcome, s.reason, s.reason_at, s.queue) == (
        "transferred",
        STORE_DOWN,
        "main",
        "support",
    )
    assert s.path == ["main", "agent"] and "pin" not in s.vars and s.ended_at is not None
    assert s.error == "the sessions store is unreachable"
    apology, said, transfer = turn.actions
    assert apology == FALLBACK_APOLOGY and said == act.Prompt((Text("Connecting you."),))
    assert isinstance(transfer, act.Transfer)
    assert (transfer.to, transfer.queue, transfer.reason) == ("+15550199", "support", STORE_DOWN)
    assert transfer.attributes["why"] == STORE_DOWN and "1234" not in str(transfer.attributes)


def test_the_flows_own_apology_comes_first() -> None:
    text = FLOW.replace("  fallback: agent\n", '  fallback: agent\n  apology: "Oops."\n')
    turn = calls().fallback(flow(text), at_the_pin(), "down")
    assert turn.actions[0] == act.Prompt((Text("Oops."),))


def test_the_built_in_apology_is_in_the_flows_language() -> None:
    turn = calls().fallback(
        flow(FLOW.replace("start:", "language: ko-KR\nstart:")), at_the_pin(), "down"
    )
    assert turn.actions[0] == act.Prompt((Text("죄송합니다. 시스템에 문제가 발생했습니다."),))


@pytest.mark.parametrize("text", [FLOW.replace("defaults:\n  fallback: agent\n", ""), None])
def test_without_a_fallback_the_call_fails(text: str | None) -> None:
    turn = calls().fallback(flow(text) if text else None, at_the_pin(), "down")
    assert turn.session.outcome == "failed" and turn.actions[-1] == act.Hangup("failed")


def stub(outcome: str = "transferred") -> Session:
    """What a webhook without the session ends: no history, its own start time."""
    s = Session(SID, "t", "v", node="agent", path=["agent"], started_at=500.0, turn=3)
    s.outcome, s.reason, s.reason_at, s.ended_at = outcome, STORE_DOWN, "agent", 501.0
    s.call_status = "completed"
    return s


def test_a_call_the_store_does_not_know_is_kept_as_spooled() -> None:
    assert settled(stub(), None) == stub()


def test_a_call_in_progress_in_the_store_ends_as_the_spool_says() -> None:
    s = settled(stub(), at_the_pin())
    assert s is not None and s.started_at == 100.0 and s.path == ["main", "agent"]
    assert (s.outcome, s.reason, s.reason_at, s.call_status) == (
        "transferred",
        STORE_DOWN,
        "main",
        "completed",
    )
    assert s.waiting is None and "pin" not in s.vars and s.turn == 3


def test_a_spooled_turn_of_the_same_call_wins() -> None:
    later = at_the_pin()
    later.outcome, later.ended_at, later.turn = "contained", 120.0, 2
    assert settled(later, at_the_pin()) == later


def test_a_call_the_store_has_ended_only_learns_late_fields() -> None:
    done = at_the_pin()
    done.outcome, done.ended_at, done.waiting = "contained", 110.0, None
    s = settled(stub(), done)
    assert s is not None and s.outcome == "contained" and s.call_status == "completed"
    done.call_status = "completed"
    assert settled(stub(), done) is None  # nothing new
