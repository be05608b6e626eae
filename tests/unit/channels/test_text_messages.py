"""`ivr.channels.text`: a typed line (or a message) read as a text channel reads it, where
the conversation waits."""

from __future__ import annotations

import pytest

from ivr.channels.text import answers_first, message_event, unasked
from ivr.engine import actions as act
from ivr.engine import new_session, step
from ivr.engine.events import CallStarted, Digits, Event, Recorded, Speech
from ivr.engine.session import Session
from ivr.flow import parse_and_compile
from ivr.flow.model import Flow, Text

FLOW = """
flow: shop
start: menu
nodes:
  menu:
    menu:
      prompt: "Press 1 for an order, 2 to leave a note."
      options:
        order: {dtmf: "1", speech: [order], goto: order}
        note: {dtmf: "2", speech: [note], goto: note}
  order:
    ask: {prompt: "Your order number?", input: digits, digits: {min: 6, max: 6}, save_as: order}
    next: bye
  note:
    record: {prompt: "Leave a note after the tone.", save_as: note}
    next: bye
  bye: {end: {say: "Bye."}}
"""


def at(answer: str | None) -> tuple[Flow, Session]:
    """The conversation started (on SMS), then at the node `answer` leads to."""
    flow = parse_and_compile(FLOW, "shop.yaml", {})
    session = new_session(flow, "TX1")
    session.channel = "sms"
    session, _ = step(flow, session, CallStarted("+15550001", "", at=0.0))
    if answer is not None:
        session, _ = step(flow, session, Digits(answer, at=1.0))
    return flow, session


@pytest.mark.parametrize(
    ("answer", "text", "event"),
    [
        (None, "2", Digits("2", at=5.0)),
        (None, "a note please", Speech("a note please", 1.0, at=5.0)),
        (None, "  ", Speech("", 0.0, at=5.0)),  # a picture alone: no words
        ("1", "it's 123 456, thanks", Digits("123456", at=5.0)),  # digits among words
        ("2", " Call me back tomorrow. ", Recorded("Call me back tomorrow.", at=5.0)),
    ],
)
def test_a_message_where_the_conversation_waits(
    answer: str | None, text: str, event: Event
) -> None:
    flow, session = at(answer)
    assert message_event(flow, session, text, 5.0) == event


def test_a_first_message_answers_the_first_menu_only_with_one_of_its_choices() -> None:
    flow, session = at(None)
    assert answers_first(flow, session, "order")
    assert not answers_first(flow, session, "hello")
    assert not answers_first(flow, session, "")


def test_the_question_answered_is_not_sent() -> None:
    greeting, prompt = act.Prompt((Text("Hi."),)), act.Prompt((Text("Press 1."),))
    listen = act.Listen("menu", frozenset({"dtmf"}), 5.0)
    assert unasked([greeting, prompt, listen]) == [greeting]
