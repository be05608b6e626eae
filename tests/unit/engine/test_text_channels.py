"""How the engine reads a flow on a text channel: text variants, a menu as one message of
its choices, nodes by channel, sensitive asks and transfers; messages as events; and a
call that goes on by text (a leg of the same conversation)."""

from __future__ import annotations

import pytest

from ivr.channels.text import Choice, event_of, render
from ivr.engine import actions as act
from ivr.engine import new_session, step
from ivr.engine.events import CallStarted, Digits, Event, HangUp, Resumed, Speech
from ivr.engine.session import Session
from ivr.errors import FlowError
from ivr.flow.compiler import compile_flow
from ivr.flow.loader import parse_flow
from ivr.flow.model import Flow
from ivr.flow.schema import check_schema

FLOW = """flow: bank
start: welcome
numbers: ["+15550100"]
language: {language}
defaults: {{on_fail: agent, idle: 45m}}
global:
  agent: {{dtmf: "0", speech: [agent], goto: agent}}
  repeat: {{dtmf: "*", speech: [repeat], repeat: true}}
nodes:
  welcome:
    say: [{{say: "Welcome to the bank.", text: "Hi! This is the bank."}}]
    next: main
  main:
    menu:
      prompt: "For your balance, press 1. For your card, press 2."
      options:
        balance: {{dtmf: "1", speech: [your balance, balance], goto: ask_account}}
        card: {{dtmf: "2", speech: [block card], goto: confirm}}
        hours: {{speech: [opening hours], goto: hours}}
  confirm:
    menu:
      prompt:
        - say: "To block the card ending {{{{ last4 }}}}, press 1."
          text: "Block the card ending {{{{ last4 }}}}? Reply YES or NO."
      options:
        "yes": {{dtmf: "1", speech: ["yes"], goto: voice_only}}
        "no": {{dtmf: "2", speech: ["no"], goto: bye}}
  voice_only:
    say: "Please hold while I read your card's terms."
    channels: [voice]
    on_text: terms_link
    next: bye
  terms_link:
    say: "Our card terms: https://bank.example/terms"
    next: bye
  hours:
    say: "We are open nine to five."
    next: bye
  ask_account:
    ask:
      prompt: "Enter your account number."
      digits: {{min: 4, max: 4}}
      save_as: account
      sensitive: true
    next: bye
  agent:
    transfer: {{to: "+15550199", queue: cards, say: "Connecting you."}}
  bye:
    end: {{say: "Goodbye."}}
"""


def flow_of(language: str = "en-US") -> Flow:
    doc = parse_flow(FLOW.format(language=language), "f.yaml", {})
    assert check_schema(doc) == []
    return compile_flow(doc)[0]


class Chat:
    """A conversation on a text channel, stepped by the engine alone."""

    def __init__(self, flow: Flow, channel: str = "sms") -> None:
        self.flow = flow
        session = new_session(flow, "TX1")
        session.channel = channel
        self.session, self.actions = step(flow, session, CallStarted("+15557770001", at=0.0))

    def said(self) -> list[str]:
        return render(self.flow, self.actions).messages

    def send(self, text: str) -> list[str]:
        event = event_of(text, self.listen(), self.session.updated_at + 1)
        return self.step(event)

    def step(self, event: Event) -> list[str]:
        self.session, self.actions = step(self.flow, self.session, event)
        return self.said()

    def listen(self) -> act.Listen | None:
        found = [a for a in self.actions if isinstance(a, act.Listen)]
        return found[-1] if found else None


def test_a_menu_is_one_message_of_its_choices() -> None:
    chat = Chat(flow_of())
    assert chat.said() == [
        "Hi! This is the bank.",  # the prompt's text variant
        "Reply 1 for your balance, 2 for block card, 0 for agent. Or tell me what you need.",
    ]
    assert render(chat.flow, chat.actions).choices == [
        Choice("1", "your balance"),
        Choice("2", "block card"),
        Choice("0", "agent"),
    ]


def test_typed_words_go_through_the_intent_matcher() -> None:
    chat = Chat(flow_of())
    assert chat.send("") == [  # a picture alone: not understood
        "Sorry, I didn't catch that.",
        "Reply 1 for your balance, 2 for block card, 0 for agent. Or tell me what you need.",
    ]
    assert chat.send("what are your opening hours?") == ["We are open nine to five.", "Goodbye."]
    assert chat.session.outcome == "contained"
    assert chat.session.inputs == {"main:speech:no_match": 1, "main:speech:match": 1}


def test_a_prompt_with_a_text_variant_and_a_voice_only_node() -> None:
    chat = Chat(flow_of())
    chat.session.vars["last4"] = "1234"
    assert chat.send("2") == ["Block the card ending 1234? Reply YES or NO."]
    assert chat.send("yes") == ["Our card terms: https://bank.example/terms", "Goodbye."]
    assert "voice_only" not in chat.session.path
    assert chat.session.outcome == "contained"


def test_a_sensitive_ask_is_not_taken_by_message() -> None:
    chat = Chat(flow_of())
    said = chat.send("1")
    assert said == ["For your security we can't do this by message. Please call us at +15550100."]
    s = chat.session
    assert (s.outcome, s.reason, s.reason_at) == (
        "transferred",
        "channel:ask_account",
        "ask_account",
    )
    assert "ask_account" not in s.path


def test_a_transfer_by_message_says_where_to_call() -> None:
    chat = Chat(flow_of())
    assert chat.send("agent") == ["To speak to an agent, please call us at +15550100."]
    assert (chat.session.outcome, chat.session.queue) == ("transferred", "cards")
    assert not [a for a in chat.actions if isinstance(a, act.Transfer)]


def test_text_in_another_language() -> None:
    chat = Chat(flow_of("ru-RU"))
    assert chat.said()[-1].startswith("Ответьте: 1 — your balance, 2 — block card")


def test_voice_is_unchanged() -> None:
    flow = flow_of()
    session, actions = step(flow, new_session(flow, "CA1"), CallStarted(at=0.0))
    spoken = [a.text for a in actions if isinstance(a, act.Prompt)]
    assert spoken == ["Welcome to the bank.", "For your balance, press 1. For your card, press 2."]
    assert flow.idle == 45 * 60


@pytest.mark.parametrize(
    ("text", "modes", "want"),
    [
        ("1", {"dtmf", "speech"}, Digits("1", at=1.0)),
        (" 12-34 ", {"dtmf", "speech"}, Digits("1234", at=1.0)),
        ("balance please", {"dtmf", "speech"}, Speech("balance please", 1.0, at=1.0)),
        ("it is 1234", {"dtmf"}, Digits("1234", at=1.0)),  # a listen of keys only
        ("it is 1234", {"speech"}, Speech("it is 1234", 1.0, at=1.0)),
        ("   ", {"dtmf"}, Speech("", 0.0, at=1.0)),  # a picture alone: no words
    ],
)
def test_a_message_as_an_event(text: str, modes: set[str], want: Event) -> None:
    listen = act.Listen("n", frozenset(modes), 5.0)
    assert event_of(text, listen, 1.0) == want


def test_a_digits_question_takes_the_digits_out_of_words() -> None:
    listen = act.Listen("n", frozenset({"dtmf", "speech"}), 5.0)
    assert event_of("my order is 123 456", listen, 1.0, digits=True) == Digits("123456", at=1.0)


def ended_call(flow: Flow) -> Session:
    """A voice call that let its caller go on by SMS at `hours`, then hung up."""
    session, _ = step(flow, new_session(flow, "CA1"), CallStarted("+15557770001", at=0.0))
    session.handoff = {"channel": "sms", "node": "hours", "until": 600.0, "verified_until": 60.0}
    session.vars["verified"] = True
    session, _ = step(flow, session, HangUp(at=10.0))
    return session


def test_a_call_goes_on_by_text_as_a_leg_of_one_conversation() -> None:
    flow = flow_of()
    session = ended_call(flow)
    assert session.outcome == "abandoned" and not session.ended  # its window is open
    session, actions = step(flow, session, Resumed("sms", at=30.0))
    assert render(flow, actions).messages == ["We are open nine to five.", "Goodbye."]
    assert (session.outcome, session.channel, session.medium) == ("contained", "voice", "sms")
    assert session.ended and session.vars["verified"] is True  # within its own window
    assert session.legs == [
        {"channel": "voice", "at": 0.0, "outcome": "abandoned", "ended": 10.0},
        {"channel": "sms", "at": 30.0},
    ]


def test_verified_does_not_cross_after_its_window_and_a_closed_call_takes_no_leg() -> None:
    flow = flow_of()
    session, _ = step(flow, ended_call(flow), Resumed("sms", at=120.0))
    assert "verified" not in session.vars
    final = ended_call(flow)
    final.handoff = None  # the window closed: the call's outcome is final
    again, actions = step(flow, final, Resumed("sms", at=30.0))
    assert (actions, again.outcome, again.legs) == ([], "abandoned", [])


def test_an_idle_time_or_window_past_what_the_stores_keep_is_a_located_error() -> None:
    text = FLOW.format(language="en-US").replace("idle: 45m", "idle: 1d")
    with pytest.raises(FlowError) as raised:
        compile_flow(parse_flow(text, "f.yaml", {}))
    assert "f.yaml:5:" in str(raised.value) and "at most 6h" in str(raised.value)
