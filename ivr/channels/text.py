"""A flow's turn as text, and a message as the engine's event: the text channels' one
translation, shared by SMS, WhatsApp and web chat.

The engine already words prompts for text (a prompt's `text:`, a menu's choices as one
message); here actions become messages, and a message becomes keys (when it is a key or
a number the listen takes) or words for the intent matcher.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ivr.engine import actions as act
from ivr.engine import step
from ivr.engine.events import Digits, Event, Recorded, Speech
from ivr.engine.session import Session
from ivr.flow.model import Ask, Callback, Flow, Menu, Record, Text

MAX_MESSAGE = 1600  # characters of a customer's message taken (an SMS's concatenated limit)
_KEYS = re.compile(r"^[0-9*#]+$")
_SPACING = re.compile(r"[\s\-.()/]+")  # what people put between the digits of a number


@dataclass(frozen=True)
class Choice:
    """A menu choice a chat can show as a button: the key it sends, the words it shows."""

    key: str
    label: str


@dataclass
class Reply:
    """What a turn says back: its messages in order, the choices of the menu it waits at
    (for chat buttons), and whether the conversation is over (with its outcome)."""

    messages: list[str] = field(default_factory=list)
    choices: list[Choice] = field(default_factory=list)
    ended: bool = False
    outcome: str | None = None


def render(flow: Flow | None, actions: list[act.Action]) -> Reply:
    """The messages of a turn's actions: prompts as text (recordings by their name), the
    rest (listening, fetching, a hang-up) silent."""
    reply = Reply()
    for action in actions:
        if isinstance(action, act.Prompt):
            words = " ".join(p.text if isinstance(p, Text) else "" for p in action.parts).strip()
            if words:
                reply.messages.append(words)
        elif isinstance(action, act.Listen) and flow is not None:
            reply.choices = choices(flow, action)
        elif isinstance(action, act.Hangup):
            reply.ended, reply.outcome = True, action.outcome
    return reply


def choices(flow: Flow, listen: act.Listen) -> list[Choice]:
    """The keyed choices of the menu `listen` waits at (none for an ask)."""
    node = flow.nodes.get(listen.node)
    if node is None or not isinstance(node.spec, Menu):
        return []
    return [
        Choice(o.dtmf, o.phrases[0] if o.phrases else o.name.replace("_", " "))
        for o in node.spec.options
        if o.dtmf and o.goto is not None and not o.help
    ]


def event_of(text: str, listen: act.Listen | None, at: float, digits: bool = False) -> Event:
    """What a customer's message means where the conversation waits: keys when it is
    only keys (spaces and dashes between digits allowed) and the listen takes keys, or
    when the question wants digits (`digits`, or a listen of keys only) and the message
    has some ("it's 123 456"); else words."""
    text = text.strip()[:MAX_MESSAGE]
    if not text:  # a picture, a sticker: not silence (that never comes by text) but no words
        return Speech("", 0.0, at=at)
    keys = "dtmf" in listen.modes if listen is not None else True
    compact = _SPACING.sub("", text)
    if keys and _KEYS.match(compact):
        return Digits(compact, at=at)
    if keys and listen is not None and (digits or "speech" not in listen.modes):
        found = "".join(ch for ch in text if ch.isdigit())
        if found:
            return Digits(found, at=at)
    return Speech(text, 1.0, at=at)


def message_event(flow: Flow, session: Session, text: str, at: float) -> Event:
    """The event a customer's message is where the conversation waits: the written message
    at a record node, else what `event_of` reads in it."""
    if session.waiting == "record":
        return Recorded(text.strip()[:MAX_MESSAGE], at=at)
    node = flow.nodes.get(session.node or "")
    digits = node is not None and isinstance(node.spec, Ask) and node.spec.input == "digits"
    return event_of(text, listening(flow, session), at, digits)


def listening(flow: Flow, session: Session) -> act.Listen | None:
    """What the conversation listens for where it waits (the engine's Listen for it)."""
    node = flow.nodes.get(session.node or "")
    if node is None:
        return None
    if session.waiting == "confirm" and isinstance(node.spec, Menu):
        return node.confirm_listen
    if isinstance(node.spec, Callback) or isinstance(node.spec, Record):
        return node.number_listen if session.pending == "callback:number" else None
    if isinstance(node.spec, Menu | Ask):
        return node.listen
    return None


def answers_first(flow: Flow, session: Session, text: str) -> bool:
    """Whether the message that starts a conversation (or a leg of one) answers the menu it
    starts at ("balance" texted to the bank): then that menu's question is not sent."""
    if not text.strip() or session.waiting != "listen":
        return False
    node = flow.nodes.get(session.node or "")
    if node is None or not isinstance(node.spec, Menu):
        return False
    probe, _ = step(flow, session, event_of(text, node.listen, session.updated_at))
    return any(k.startswith(f"{node.name}:") and k.endswith(":match") for k in probe.inputs)


def unasked(actions: list[act.Action]) -> list[act.Action]:
    """A turn's actions without its last question (the prompt before its Listen)."""
    out = list(actions)
    if out and isinstance(out[-1], act.Listen):
        out.pop()
        if out and isinstance(out[-1], act.Prompt):
            out.pop()
    return out
