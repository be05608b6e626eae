"""A text conversation rehearsed without a server: `ivr call --channel sms` and conversation
tests with `channel: sms` read a typed line as the text channels read a message.

What a message means is `ivr.channels.text.event_of`'s (keys, digits in words, or words
for the intent matcher), and a first message may answer the flow's first menu, as in
`ivr.channels.conversations`: these rehearsals use the same functions, not the voice
parsing of the console.
"""

from __future__ import annotations

from ivr.channels.conversations import _answers, _unasked, listening
from ivr.channels.text import event_of
from ivr.engine import actions as act
from ivr.engine.events import Event, Recorded
from ivr.engine.session import Session
from ivr.flow.model import Ask, Flow

CHANNELS = ("sms", "whatsapp", "chat")
MAX_MESSAGE = 1600  # characters of a written message kept for a record node (as the webhook)


def message_event(flow: Flow, session: Session, text: str, at: float) -> Event:
    """The event a customer's message is where the conversation waits: the written message
    at a record node, else what `event_of` reads in it."""
    if session.waiting == "record":
        return Recorded(text.strip()[:MAX_MESSAGE], at=at)
    node = flow.nodes.get(session.node or "")
    digits = node is not None and isinstance(node.spec, Ask) and node.spec.input == "digits"
    return event_of(text, listening(flow, session), at, digits)


def answers_first(flow: Flow, session: Session, text: str) -> bool:
    """Whether the message that starts a conversation answers the menu it starts at
    ("balance" texted to the bank): then that menu's question is not sent."""
    return bool(text.strip()) and _answers(flow, session, text)


def unasked(actions: list[act.Action]) -> list[act.Action]:
    """A turn's actions without its last question (the first message answered it)."""
    return _unasked(actions)
