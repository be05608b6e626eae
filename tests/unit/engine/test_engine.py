"""The engine: every node kind, retries, confirmation, hours, and one honest outcome per call.

A `Call` is a fake caller: it feeds events to `step` and keeps the session and the actions
of the last step, the way a transport would.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from ivr.engine import OUTCOMES, Session, new_session, step
from ivr.engine import actions as act
from ivr.engine.engine import APOLOGY, GIVE_UP, MAX_HOPS
from ivr.engine.events import (
    CallStarted,
    Digits,
    Event,
    FetchResult,
    HangUp,
    NoInput,
    Recorded,
    Speech,
)
from ivr.engine.session import MASK
from ivr.flow import parse_and_compile
from ivr.flow.model import Flow, Text

TZ = ZoneInfo("Asia/Tokyo")  # UTC+9 all year: local time is never UTC time here


def tokyo(year: int, month: int, day: int, hour: int, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=TZ).timestamp()


MONDAY_10 = tokyo(2030, 1, 7, 10)  # 2030-01-07 is a Monday
SUNDAY_10 = tokyo(2030, 1, 6, 10)
HOLIDAY_10 = tokyo(2030, 1, 2, 10)  # a Wednesday, in closed_on
MONDAY_20 = tokyo(2030, 1, 7, 20)

BANK = """
flow: bank
start: welcome
defaults:
  retries: 2
  on_fail: agent_check
hours:
  support: {tz: Asia/Tokyo, mon-fri: "09:00-18:00", sat: "10:00-14:00", closed_on: ["2030-01-02"]}
global:
  agent: {dtmf: "0", speech: [agent, operator], goto: agent_check}
  repeat: {dtmf: "*", speech: [repeat, say that again], repeat: true}
nodes:
  welcome:
    say: "Welcome."
    next: main
  main:
    menu:
      prompt: "Press 1 for your balance, 2 to block a card."
      confirm_below: 0.5
      timeout: 4
      options:
        balance: {dtmf: "1", speech: [balance, how much money], goto: ask_account}
        block: {dtmf: "2", speech: [block card, block my card], goto: ask_account}
  ask_account:
    ask:
      prompt: "Enter your account number, then the pound key."
      digits: {min: 8, max: 8, finish_on: "#"}
      validate: "value | luhn"
      no_match: "That account number is not valid."
      save_as: account
      sensitive: true
    next: lookup
  lookup:
    http:
      url: "${IVR_FLOW_API:-http://bank}/accounts/{{ account }}"
      headers: {X-Key: "secret"}
      timeout: 2
      save_as: acct
    next: tell
    on_error: agent_check
  tell:
    say: "Your balance is {{ acct.balance | currency }}."
    resolves: balance_inquiry
    next: more
  more:
    menu:
      prompt: "Anything else? Press 1 for the menu or 2 to end the call."
      retries: 0
      on_fail: bye
      options:
        again: {dtmf: "1", speech: ["yes"], goto: main}
        done: {dtmf: "2", speech: ["no", goodbye], goto: bye}
  agent_check:
    branch:
      - {if: "open('support')", goto: agent}
      - {else: closed}
  agent:
    transfer:
      to: "+15550199"
      queue: support
      say: "Connecting you to an agent."
      attributes: {reason: "{{ reason }}", option: "{{ last_option }}"}
  closed:
    record: {prompt: "We are closed. Leave a message.", max_seconds: 30, save_as: voicemail}
  bye:
    end: {say: "Goodbye."}
"""
ACCOUNT = "12345674"  # passes the Luhn check
NOT_LUHN = "12345678"


def compile_flow(text: str) -> Flow:
    return parse_and_compile(text, "f.yaml", {})


@pytest.fixture(scope="module")
def bank() -> Flow:
    return compile_flow(BANK)


class Call:
    """A fake transport: one call, the session between steps, the last step's actions."""

    def __init__(self, flow: Flow, at: float = MONDAY_10, caller: str = "+15550001") -> None:
        self.flow, self.at = flow, at
        self.session = new_session(flow, "call-1")
        self.actions: list[act.Action] = []
        self.send(CallStarted(caller, "+15550100", at=at))

    def send(self, event: Event) -> list[act.Action]:
        self.session, self.actions = step(self.flow, self.session, event)
        return self.actions

    def press(self, digits: str) -> list[act.Action]:
        return self.send(Digits(digits, at=self.at))

    def say(self, text: str, confidence: float = 1.0) -> list[act.Action]:
        return self.send(Speech(text, confidence, at=self.at))

    def silence(self) -> list[act.Action]:
        return self.send(NoInput(at=self.at))

    @property
    def heard(self) -> list[str]:
        return [a.text for a in self.actions if isinstance(a, act.Prompt)]

    @property
    def last(self) -> act.Action:
        return self.actions[-1]

    @property
    def node(self) -> str | None:
        return self.session.node


def at_lookup(flow: Flow, at: float = MONDAY_10) -> Call:
    call = Call(flow, at)
    call.press("1")
    call.press(ACCOUNT + "#")
    assert call.node == "lookup"
    return call


# -- node kinds --------------------------------------------------------------------------------


def test_say_then_menu(bank):
    call = Call(bank)
    assert call.heard == ["Welcome.", "Press 1 for your balance, 2 to block a card."]
    assert call.last == act.Listen(
        "main",
        frozenset({"dtmf", "speech"}),
        4.0,
        True,
        keys="120*",
        phrases=(
            "balance",
            "how much money",
            "block card",
            "block my card",
            "agent",
            "operator",
            "repeat",
            "say that again",
        ),
    )
    assert call.session.path == ["welcome", "main"]
    assert call.session.waiting == "listen"
    assert call.session.vars["caller"] == "+15550001"
    assert call.session.vars["called"] == "+15550100"


def test_menu_by_key_and_by_speech(bank):
    call = Call(bank)
    call.press("2")
    assert call.node == "ask_account"
    assert call.session.vars["last_option"] == "block"
    assert call.session.inputs == {"main:dtmf:match": 1}
    call = Call(bank)
    call.say("I want to block my card please")
    assert call.node == "ask_account"
    assert call.session.vars["last_option"] == "block"
    assert call.session.inputs == {"main:speech:match": 1}


def test_ask_listens_for_digits(bank):
    call = Call(bank)
    call.press("1")
    assert call.heard == ["Enter your account number, then the pound key."]
    # sensitive, on Twilio's recogniser: keys only; the global * works, 0 is a digit here
    assert call.last == act.Listen(
        "ask_account",
        frozenset({"dtmf"}),
        5.0,
        True,
        min_digits=8,
        max_digits=8,
        finish_on="#",
        sensitive=True,
        global_keys="*",
    )


def test_ask_saves_digits_without_the_finish_key(bank):
    call = at_lookup(bank)
    assert call.session.vars["account"] == ACCOUNT


def test_digits_said_as_words_fill_a_digits_ask():
    call = Call(compile_flow(BANK.replace("sensitive: true", "cloud_speech: true")))
    call.press("1")
    call.say("one two three four five six seven four")
    assert call.node == "lookup"
    assert call.session.vars["account"] == ACCOUNT
    assert call.session.inputs["ask_account:speech:match"] == 1


def test_wrong_length_is_no_match(bank):
    call = Call(bank)
    call.press("1")
    call.press("1234#")
    assert call.node == "ask_account"
    assert call.heard == [
        "That account number is not valid.",
        "Enter your account number, then the pound key.",
    ]
    assert call.session.inputs["ask_account:dtmf:no_match"] == 1


def test_validate_false_counts_as_no_match(bank):
    call = Call(bank)
    call.press("1")
    call.press(NOT_LUHN + "#")
    assert call.heard[0] == "That account number is not valid."
    assert call.session.misses == 1
    assert "account" not in call.session.vars
    call.press(ACCOUNT + "#")
    assert call.node == "lookup"


def test_http_fetch_and_save_as(bank):
    call = at_lookup(bank)
    assert call.actions == [
        act.Fetch(
            "lookup",
            "GET",
            f"http://bank/accounts/{ACCOUNT}",
            2.0,
            headers=(("X-Key", "secret"),),
            json=None,
            sensitive=True,
            retries=1,  # a GET is tried once more by default
        )
    ]
    assert call.session.waiting == "fetch"
    call.send(FetchResult(200, {"balance": 1234.5}, at=MONDAY_10))
    assert call.session.vars["acct"] == {"balance": 1234.5}
    assert call.heard == [
        "Your balance is $1,234.50.",
        "Anything else? Press 1 for the menu or 2 to end the call.",
    ]
    assert call.node == "more"


def test_http_json_body_is_rendered():
    flow = compile_flow(
        """
flow: t
start: a
vars: {card: "4111"}
nodes:
  a:
    http:
      method: POST
      url: "http://bank/block"
      json: {card: "{{ card }}", n: [1, "{{ card }}x"]}
    next: b
  b:
    end:
"""
    )
    call = Call(flow)
    (fetch,) = call.actions
    assert isinstance(fetch, act.Fetch)
    assert (fetch.method, fetch.url, fetch.timeout) == ("POST", "http://bank/block", 5.0)
    assert fetch.json == {"card": "4111", "n": [1, "4111x"]}
    assert fetch.sensitive is False


SMALL = """
flow: t
start: a
vars: {tries: 0}
nodes:
  a:
    set: {tries: "tries + 1", double: "tries * 2", vip: "caller == '+1999'"}
    next: b
  b:
    branch:
      - {if: "vip", goto: vip}
      - {if: "double > 1", goto: two}
      - {else: other}
  vip:
    end: {say: "VIP."}
  two:
    end: {say: "Two {{ tries }} {{ double }}."}
  other:
    end: {say: "Other."}
"""


def test_set_evaluates_in_order_and_branch_takes_the_first_true_case():
    flow = compile_flow(SMALL)
    call = Call(flow)
    assert call.session.vars["tries"] == 1
    assert call.session.vars["double"] == 2
    assert call.session.vars["vip"] is False
    assert call.heard == ["Two 1 2."]
    assert Call(flow, caller="+1999").heard == ["VIP."]
    assert Call(compile_flow(SMALL.replace("tries + 1", "tries"))).heard == ["Other."]


def test_branch_with_no_true_case_and_no_else_fails():
    flow = compile_flow(
        "flow: t\nstart: a\nnodes:\n  a:\n    branch:\n"
        "      - {if: \"caller == 'x'\", goto: b}\n  b:\n    end:\n"
    )
    call = Call(flow)
    assert call.session.outcome == "failed"
    assert call.actions == [APOLOGY, act.Hangup("failed")]
    assert "no case of branch a is true" in (call.session.error or "")


def test_transfer(bank):
    call = Call(bank)
    call.press("0")
    assert call.heard == ["Connecting you to an agent."]
    assert call.last == act.Transfer(
        "+15550199", "support", "global:agent", {"reason": "global:agent", "option": "agent"}
    )
    assert call.session.outcome == "transferred"
    assert call.session.queue == "support"
    assert call.session.reason == "global:agent"


def test_record_ends_the_call_contained(bank):
    call = Call(bank, at=SUNDAY_10)
    call.press("0")
    assert call.heard == ["We are closed. Leave a message."]
    assert call.last == act.Record("closed", 30, "#")
    assert call.session.waiting == "record"
    call.send(Recorded("RE123", 12.0, at=MONDAY_10))
    assert call.actions == [act.Hangup("contained")]
    assert call.session.outcome == "contained"
    assert call.session.vars["voicemail"] == "RE123"


def test_record_with_next_goes_on():
    flow = compile_flow(
        """
flow: t
start: rec
nodes:
  rec:
    record: {prompt: "Speak.", save_as: msg}
    next: bye
  bye:
    end: {say: "Got {{ msg }}."}
"""
    )
    call = Call(flow)
    assert call.last == act.Record("rec", 60, "#")
    call.send(Recorded("RE9", at=MONDAY_10))
    assert call.heard == ["Got RE9."]
    assert call.session.outcome == "contained"


def test_subflow_returns_to_next(tmp_path):
    from ivr.flow import load_flow

    (tmp_path / "main.yaml").write_text(
        "flow: main\nstart: auth\nnodes:\n"
        "  auth:\n    subflow: {flow: pin, next: bye}\n"
        "  bye:\n    end: {say: 'Bye {{ pin }}.'}\n"
    )
    (tmp_path / "pin.yaml").write_text(
        "flow: pin\nstart: ask\nnodes:\n"
        "  ask:\n    ask: {prompt: 'PIN?', save_as: pin, digits: {min: 4, max: 4}}\n"
        "    next: done\n"
        "  done:\n    end: {say: 'Thanks.'}\n"
    )
    flow = load_flow(tmp_path / "main.yaml", {})
    call = Call(flow)
    assert call.heard == ["PIN?"]
    assert call.node == "auth.ask"
    call.press("4321")
    assert call.heard == ["Thanks.", "Bye 4321."]
    assert call.session.path == ["auth", "auth.ask", "auth.done", "bye"]
    assert call.session.outcome == "contained"


def test_failed_end_in_a_subflow_fails_the_call(tmp_path):
    from ivr.flow import load_flow

    (tmp_path / "main.yaml").write_text(
        "flow: main\nstart: auth\nnodes:\n"
        "  auth:\n    subflow: {flow: pin, next: bye}\n"
        "  bye:\n    end: {say: 'Bye.'}\n"
    )
    (tmp_path / "pin.yaml").write_text(
        "flow: pin\nstart: locked\nnodes:\n"
        "  locked:\n    end: {say: 'Your account is locked.', outcome: failed}\n"
    )
    call = Call(load_flow(tmp_path / "main.yaml", {}))
    assert call.heard == ["Your account is locked."]
    assert call.last == act.Hangup("failed")
    assert call.session.outcome == "failed"


def test_end(bank):
    call = Call(bank)
    call.press("1")
    call.press(ACCOUNT + "#")
    call.send(FetchResult(200, {"balance": 1}, at=MONDAY_10))
    call.press("2")
    assert call.actions == [act.Prompt((Text("Goodbye."),)), act.Hangup("contained")]
    assert call.session.outcome == "contained"
    assert call.session.ended_at == MONDAY_10


def test_empty_end_hangs_up_silently():
    call = Call(compile_flow("flow: t\nstart: a\nnodes:\n  a:\n    end:\n"))
    assert call.actions == [act.Hangup("contained")]


# -- retries -----------------------------------------------------------------------------------


def test_no_input_and_no_match_reprompt_with_their_own_messages(bank):
    call = Call(bank)
    call.silence()
    assert call.heard == [
        "Sorry, I didn't hear anything.",
        "Press 1 for your balance, 2 to block a card.",
    ]
    assert isinstance(call.last, act.Listen)
    call.press("7")
    assert call.heard == [
        "Sorry, I didn't catch that.",
        "Press 1 for your balance, 2 to block a card.",
    ]
    assert call.session.inputs == {"main:no_input": 1, "main:dtmf:no_match": 1}
    call = Call(bank)
    call.say("pizza")
    assert call.heard[0] == "Sorry, I didn't catch that."
    assert call.session.inputs == {"main:speech:no_match": 1}


def test_retries_run_out_then_on_fail(bank):
    call = Call(bank)  # retries: 2, so the third miss of a kind goes to on_fail
    call.silence()
    call.press("9")
    call.silence()
    assert call.node == "main" and call.session.misses == 3  # no-inputs counted apart
    assert (call.session.no_inputs, call.session.no_matches) == (2, 1)
    assert isinstance(call.last, act.Listen)
    call.silence()
    assert call.session.outcome == "transferred"
    assert call.last.reason == "on_fail:main"  # type: ignore[union-attr]
    assert call.session.path == ["welcome", "main", "agent_check", "agent"]


ESCALATING = """
flow: t
start: m
defaults:
  retries: 2
  no_input: ["Are you there?", [{say: "Still there?"}, "Please press a key."], "Last chance."]
  on_fail: agent
nodes:
  m:
    menu:
      prompt: "Press 1."
      no_match: ["That is not an option.", "Press 1, {{ caller }}."]
      on_no_input: bye
      options:
        x: {dtmf: "1", goto: bye}
  agent:
    transfer: {to: "+15550199"}
  bye:
    end: {say: "Goodbye."}
"""


def test_each_retry_hears_the_next_message_the_last_repeated():
    call = Call(compile_flow(ESCALATING))
    call.silence()
    assert call.heard == ["Are you there?", "Press 1."]
    call.press("9")
    assert call.heard == ["That is not an option.", "Press 1."]
    call.silence()  # one message of two parts
    assert call.heard == ["Still there? Please press a key.", "Press 1."]
    call.press("8")
    assert call.heard == ["Press 1, +15550001.", "Press 1."]
    assert call.session.inputs == {"m:no_input": 2, "m:dtmf:no_match": 2}
    assert [line[1:] for line in call.session.transcript[-2:]] == [
        ["m", "dtmf", "no_match", "8"],
        ["m", "no_match:5"],  # the attempt the caller is now on, both kinds together
    ]


def test_the_last_message_repeats():
    flow = compile_flow(ESCALATING.replace("  retries: 2", "  retries: 4"))
    call = Call(flow)
    heard = []
    for _ in range(4):
        call.press("9")
        heard.append(call.heard[0])
    assert heard == [
        "That is not an option.",
        "Press 1, +15550001.",
        "Press 1, +15550001.",
        "Press 1, +15550001.",
    ]


@pytest.mark.parametrize(
    ("events", "outcome", "node"),
    [
        (["silence"] * 3, "contained", "bye"),  # on_no_input
        (["9"] * 3, "transferred", "agent"),  # no on_no_match: on_fail
        (["silence", "9", "silence", "9", "9"], "transferred", "agent"),
        (["9", "silence", "9", "silence", "silence"], "contained", "bye"),
    ],
)
def test_no_inputs_and_no_matches_run_out_apart_to_their_own_targets(events, outcome, node):
    call = Call(compile_flow(ESCALATING))
    for i, event in enumerate(events):
        assert call.session.outcome is None, i
        call.silence() if event == "silence" else call.press(event)
    assert (call.session.outcome, call.node) == (outcome, node)
    assert (call.session.reason, call.session.reason_at) == ("on_fail:m", "m")


def test_retries_count_per_node(bank):
    call = Call(bank)
    call.silence()
    call.silence()
    call.press("1")  # two misses at main, none yet at ask_account
    call.silence()
    call.silence()
    assert call.node == "ask_account" and call.session.misses == 2
    assert isinstance(call.last, act.Listen)


def test_no_on_fail_gives_up_with_outcome_failed():
    flow = compile_flow(
        "flow: t\nstart: m\nnodes:\n  m:\n    menu:\n      prompt: hi\n      retries: 0\n"
        "      options:\n        x: {dtmf: '1', goto: bye}\n  bye:\n    end:\n"
    )
    call = Call(flow)
    call.silence()
    assert call.actions == [GIVE_UP, act.Hangup("failed")]
    assert call.session.outcome == "failed"
    assert call.session.error == "retries ran out at m and it has no on_fail"


def test_global_repeat(bank):
    call = Call(bank)
    call.silence()
    call.press("*")
    assert call.heard == ["Press 1 for your balance, 2 to block a card."]
    assert isinstance(call.last, act.Listen)
    assert call.node == "main"
    call.say("say that again")
    assert call.heard == ["Press 1 for your balance, 2 to block a card."]


def test_global_zero_out_from_any_menu(bank):
    call = Call(bank)
    call.press("1")
    call.press(ACCOUNT + "#")
    call.send(FetchResult(200, {"balance": 1}, at=MONDAY_10))
    assert call.node == "more"
    call.say("operator")
    assert call.session.outcome == "transferred"
    assert call.session.reason == "global:agent"


# -- speech confirmation -----------------------------------------------------------------------


def test_low_confidence_speech_is_confirmed_yes(bank):
    call = Call(bank)
    call.say("balance", confidence=0.4)
    assert call.heard == ["Did you mean balance?"]
    assert call.last == act.Listen(
        "main",
        frozenset({"dtmf", "speech"}),
        4.0,
        True,
        keys="12",
        phrases=call.last.phrases,  # type: ignore[union-attr]
    )
    assert {"yes", "no"} <= set(call.last.phrases)  # type: ignore[union-attr]
    assert call.session.waiting == "confirm" and call.session.pending == "balance"
    call.say("yes")
    assert call.node == "ask_account"
    assert call.session.vars["last_option"] == "balance"


def test_low_confidence_speech_is_confirmed_no(bank):
    call = Call(bank)
    call.say("block my card", confidence=0.3)
    assert call.heard == ["Did you mean block my card?"]
    call.say("no")
    assert call.node == "main"
    assert call.heard == [
        "Sorry, I didn't catch that.",
        "Press 1 for your balance, 2 to block a card.",
    ]
    assert call.session.misses == 1
    assert call.session.waiting == "listen"


def test_confirmation_by_key(bank):
    call = Call(bank)
    call.say("how much money", confidence=0.2)
    call.press("1")
    assert call.node == "ask_account"


def test_confident_speech_is_not_confirmed(bank):
    call = Call(bank)
    call.say("balance", confidence=0.9)
    assert call.node == "ask_account"


# -- opening hours -----------------------------------------------------------------------------


def test_open_on_a_weekday_in_the_flow_time_zone(bank):
    call = Call(bank, at=MONDAY_10)  # 01:00 UTC: closed if the engine used UTC
    call.press("0")
    assert call.session.outcome == "transferred"


def test_closed_on_sunday(bank):
    call = Call(bank, at=SUNDAY_10)
    call.press("0")
    assert call.node == "closed"
    assert isinstance(call.last, act.Record)


def test_closed_on_a_closed_on_date(bank):
    call = Call(bank, at=HOLIDAY_10)
    call.press("0")
    assert call.node == "closed"


def test_closed_after_hours(bank):
    call = Call(bank, at=MONDAY_20)
    call.press("0")
    assert call.node == "closed"


def test_the_clock_is_the_event_time(bank):
    call = Call(bank, at=SUNDAY_10)  # started while closed, pressed 0 a day later
    call.send(Digits("0", at=MONDAY_10))
    assert call.session.outcome == "transferred"


# -- outcomes ----------------------------------------------------------------------------------


def test_end_with_outcome_failed():
    call = Call(compile_flow("flow: t\nstart: a\nnodes:\n  a:\n    end: {outcome: failed}\n"))
    assert call.actions == [act.Hangup("failed")]
    assert call.session.outcome == "failed"


def test_runtime_template_error_apologises_and_fails():
    flow = compile_flow(
        "flow: t\nstart: a\nnodes:\n  a:\n    set: {zero: 0}\n    next: b\n"
        "  b:\n    say: 'Result {{ 1 // zero }}.'\n    next: c\n  c:\n    end:\n"
    )
    call = Call(flow)
    assert call.actions == [APOLOGY, act.Hangup("failed")]
    assert call.session.outcome == "failed"
    assert call.session.error is not None and call.session.error.startswith(
        "ZeroDivisionError at b"
    )


def test_backend_failure_is_told_to_the_flow():
    flow = compile_flow(
        "flow: t\nstart: a\nnodes:\n"
        "  a:\n    http: {url: 'http://x'}\n    next: ok\n    on_error: why\n"
        "  why:\n    branch:\n"
        "      - {if: 'http_error.status == 404', goto: unknown}\n"
        "      - {else: down}\n"
        "  ok:\n    end:\n"
        "  unknown:\n    end: {say: 'No such order.'}\n"
        "  down:\n    end: {say: 'Our systems are down.', outcome: failed}\n"
    )
    call = Call(flow)
    call.send(FetchResult(404, {"error": "not found"}, at=MONDAY_10))
    assert call.heard == ["No such order."]
    assert call.session.vars["http_error"] == {"node": "a", "status": 404, "error": "HTTP 404"}
    call = Call(flow)
    call.send(FetchResult(error="timed out after 2 s", at=MONDAY_10))
    assert call.heard == ["Our systems are down."]
    assert call.session.outcome == "failed"


def test_http_failure_without_on_error_fails():
    flow = compile_flow(
        "flow: t\nstart: a\nnodes:\n  a:\n    http: {url: 'http://x'}\n    next: b\n"
        "  b:\n    end:\n"
    )
    call = Call(flow)
    call.send(FetchResult(error="timeout", at=MONDAY_10))
    assert call.actions == [APOLOGY, act.Hangup("failed")]
    assert call.session.outcome == "failed"
    assert call.session.error == "backend call at a failed: timeout"


@pytest.mark.parametrize(
    "result",
    [
        FetchResult(500, {"error": "x"}, at=MONDAY_10),
        FetchResult(404, at=MONDAY_10),
        FetchResult(error="timeout", at=MONDAY_10),
    ],
)
def test_backend_failure_goes_to_on_error(bank, result):
    call = at_lookup(bank)
    call.send(result)
    assert call.session.outcome == "transferred"
    assert call.last == act.Transfer(
        "+15550199",
        "support",
        "on_error:lookup",
        {"reason": "on_error:lookup", "option": "balance"},
    )


def test_transfer_reason_on_fail(bank):
    call = Call(bank)
    for _ in range(3):
        call.press("5")
    assert call.last.reason == "on_fail:main"  # type: ignore[union-attr]


def test_transfer_reason_node_when_nothing_led_there():
    flow = compile_flow(
        "flow: t\nstart: a\nnodes:\n  a:\n    say: hi\n    next: b\n"
        "  b:\n    transfer: {to: '+1555'}\n"
    )
    assert Call(flow).last == act.Transfer("+1555", None, "node:a")


def test_hang_up_mid_flow_is_abandoned_where_the_caller_left(bank):
    call = Call(bank)
    call.press("1")
    call.send(HangUp(at=MONDAY_10 + 30))
    assert call.actions == []
    assert call.session.outcome == "abandoned"
    assert call.session.node == "ask_account"
    assert call.session.ended_at == MONDAY_10 + 30


def test_every_outcome_is_known():
    assert set(OUTCOMES) == {"contained", "transferred", "abandoned", "failed"}


def test_resolves_is_counted_once_per_task(bank):
    call = at_lookup(bank)
    call.send(FetchResult(200, {"balance": 1}, at=MONDAY_10))
    assert call.session.tasks == ["balance_inquiry"]
    call.press("1")  # back to the main menu, and through the balance again
    call.press("1")
    call.press(ACCOUNT + "#")
    call.send(FetchResult(200, {"balance": 2}, at=MONDAY_10))
    assert call.session.path.count("tell") == 2
    assert call.session.tasks == ["balance_inquiry"]


def test_too_many_nodes_without_input_fails():
    """Validate refuses such loops; the engine still stops one that got past it."""
    flow = compile_flow(
        "flow: t\nstart: a\nvars: {n: 0}\nnodes:\n"
        "  a:\n    set: {n: 'n + 1'}\n    next: b\n"
        "  b:\n    branch:\n      - {if: 'n < 100000', goto: c}\n      - {else: c}\n"
        "  c:\n    end:\n"
    )
    b = flow.nodes["b"]
    looping = {**flow.nodes, "b": dataclasses.replace(b, spec=((None, None, "a"),))}
    call = Call(dataclasses.replace(flow, nodes=looping))
    assert call.session.outcome == "failed"
    assert call.actions == [APOLOGY, act.Hangup("failed")]
    assert f"more than {MAX_HOPS} nodes without input" in (call.session.error or "")


# -- the session -------------------------------------------------------------------------------


def test_events_after_the_end_change_nothing(bank):
    call = Call(bank)
    call.press("0")
    ended = copy.deepcopy(call.session)
    for event in [
        Digits("1", at=MONDAY_10),
        Speech("balance", at=MONDAY_10),
        NoInput(at=MONDAY_10),
        FetchResult(200, at=MONDAY_10),
        HangUp(at=MONDAY_10),
    ]:
        assert call.send(event) == []
        assert call.session == ended
    assert call.send(CallStarted(at=MONDAY_10)) == []
    assert call.session == ended


def test_events_that_do_not_fit_what_the_call_waits_for_are_ignored(bank):
    call = at_lookup(bank)
    before = copy.deepcopy(call.session)
    for event in [
        Digits("1", at=MONDAY_10),
        Speech("balance", at=MONDAY_10),
        NoInput(at=MONDAY_10),
        Recorded("RE1", at=MONDAY_10),
        CallStarted(at=MONDAY_10),
    ]:
        assert call.send(event) == []
        assert (call.session.node, call.session.waiting) == ("lookup", "fetch")
        assert call.session.vars == before.vars and call.session.path == before.path


def test_step_does_not_mutate_the_session_passed_in(bank):
    session = new_session(bank, "c")
    events: list[Event] = [
        CallStarted(at=MONDAY_10),
        Digits("1", at=MONDAY_10),
        Digits(ACCOUNT + "#", at=MONDAY_10),
        FetchResult(200, {"balance": 3}, at=MONDAY_10),
        Speech("operator", at=MONDAY_10),
    ]
    for event in events:
        before = copy.deepcopy(session)
        after, _ = step(bank, session, event)
        assert session == before
        assert after is not session
        session = after
    assert session.outcome == "transferred"


def test_step_is_deterministic(bank):
    events = [
        CallStarted(at=MONDAY_10),
        Speech("balance", 0.3, at=MONDAY_10),
        Speech("yes", at=MONDAY_10),
        NoInput(at=MONDAY_10),
    ]
    runs = []
    for _ in range(2):
        session, out = new_session(bank, "c"), []
        for event in events:
            session, actions = step(bank, session, event)
            out.append(actions)
        runs.append((session, out))
    assert runs[0] == runs[1]


def test_session_json_round_trip(bank):
    call = at_lookup(bank)
    call.send(FetchResult(200, {"balance": 12.5, "transactions": [{"amount": 1}]}, at=MONDAY_10))
    call.silence()
    text = call.session.to_json()
    json.loads(text)
    again = Session.from_json(text)
    assert again == call.session
    assert Session.from_json(text.encode()) == call.session
    assert (
        step(bank, again, Digits("2", at=MONDAY_10))[1]
        == step(bank, call.session, Digits("2", at=MONDAY_10))[1]
    )


def test_session_from_json_ignores_unknown_fields():
    text = json.dumps({"call_id": "c", "flow_id": "f", "version": "v", "future": 1})
    assert Session.from_json(text) == Session("c", "f", "v")


def test_redacted_masks_sensitive_vars(bank):
    call = at_lookup(bank)
    assert call.session.sensitive == ["account"]
    red = call.session.redacted()
    assert red["vars"]["account"] == MASK
    assert red["vars"]["caller"] == "+15550001"
    assert ACCOUNT not in json.dumps(red)
    assert call.session.vars["account"] == ACCOUNT  # the session itself keeps it during the call


def test_sensitive_values_are_dropped_when_the_call_ends(bank):
    call = at_lookup(bank)
    call.send(HangUp(at=MONDAY_10))
    assert "account" not in call.session.vars
    assert ACCOUNT not in call.session.to_json()


def test_expressions_cannot_change_shared_values():
    flow = compile_flow(
        """
flow: t
start: a
vars: {items: [1]}
nodes:
  a:
    ask: {prompt: "Say something.", save_as: v, input: speech}
    next: b
  b:
    set: {n: "items.append(v)"}
    next: a
"""
    )
    call = Call(flow)
    before = copy.deepcopy(call.session)
    call.say("hello")
    assert before.vars["items"] == [1]
    assert flow.vars["items"] == [1]  # every call starts from these
    assert call.session.outcome == "failed"  # mutating is a technical error, not a silent leak
    assert call.actions[-2:] == [APOLOGY, act.Hangup("failed")]


REASONS_FLOW = """
flow: reasons
start: main
global:
  agent: {dtmf: "0", goto: agent}
nodes:
  main:
    menu:
      prompt: "1 for help, 2 for an agent."
      on_fail: agent
      retries: 0
      options:
        help: {dtmf: "1", goto: ask_pin}
        person: {dtmf: "2", goto: agent}
  ask_pin:
    ask: {prompt: "Your PIN?", digits: {min: 4, max: 4}, save_as: pin}
    next: route
  route:
    branch:
      - {if: "pin == '9999'", goto: agent}
      - {else: bye}
  agent: {transfer: {to: "+15550199", queue: support}}
  bye: {end: {}}
"""


@pytest.mark.parametrize(
    ("keys", "reason", "at"),
    [
        (["2"], "option:person", "main"),  # the caller chose an agent
        (["0"], "global:agent", "main"),  # a zero-out
        (["7"], "on_fail:main", "main"),  # the IVR did not understand
        # the flow sent the caller: the menu choice two answers before is not the reason
        (["1", "9999"], "node:route", "route"),
    ],
)
def test_the_reason_is_what_led_to_this_transfer(keys, reason, at):
    call = Call(compile_flow(REASONS_FLOW))
    for key in keys:
        call.press(key)
    assert call.session.outcome == "transferred"
    assert (call.session.reason, call.session.reason_at) == (reason, at)


def test_the_transcript_tells_what_was_heard_and_said_masked(bank):
    call = Call(bank)
    call.say("pizza", 0.5)
    call.press("1")
    call.press(ACCOUNT + "#")
    assert call.session.transcript == [
        [0.0, "welcome", "say"],
        [0.0, "main", "prompt"],
        [0.0, "main", "speech", "no_match", "pizza", 0.5],
        [0.0, "main", "no_match:2"],
        [0.0, "main", "dtmf", "match", "1"],
        [0.0, "ask_account", "prompt"],
        [0.0, "ask_account", "dtmf", "match", MASK],  # sensitive: never kept
    ]


def test_an_event_the_call_does_not_wait_for_takes_no_turn(bank):
    call = Call(bank)  # the main menu listens
    before = copy.deepcopy(call.session)
    for stray in (
        Recorded("RE1", 3.0, at=MONDAY_10),
        FetchResult(200, {"balance": 1}, at=MONDAY_10),
        CallStarted("+15550001", "+15550100", at=MONDAY_10),
    ):
        assert call.send(stray) == []
        assert call.session == before  # the turn number too: a retried webhook still fits
