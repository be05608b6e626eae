"""The web chat's protocol (docs/chat.md): what the widget's JSON messages mean, and a
turn's `Reply` as the messages it is sent. Pure: the socket is `ivr.web.chat`'s.

Client to server: `hello` first (with the visitor id the widget kept, or null), then
`message`s; `start` begins a new conversation once one ended. Server to client:
`welcome`, a `message` per message of a turn, `choices` when the turn waits at a menu,
`end` once the conversation is over, `error` for what was not understood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from ivr.channels.text import MAX_MESSAGE, Reply
from ivr.errors import IvrError

VISITOR = re.compile(r"[A-Za-z0-9_-]{16,64}")  # what `new visitor ids` look like, loosely


class ChatError(IvrError):
    """A client message that is not the protocol's: the text says what is wrong."""


@dataclass(frozen=True, slots=True)
class Hello:
    """The widget opens the chat: `visitor` is the id it kept (None: a new visitor, or
    one that is not an id)."""

    visitor: str | None


@dataclass(frozen=True, slots=True)
class Start:
    """Begin a conversation when none is going on (a new one after an `end`)."""


@dataclass(frozen=True, slots=True)
class Said:
    """What the customer wrote (or the key of a choice button)."""

    text: str


Inbound = Hello | Start | Said


def parse(data: str) -> Inbound:
    """A client message; ChatError says what is wrong with one that is not the protocol's."""
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ChatError("expected a JSON object") from None
    if not isinstance(message, dict):
        raise ChatError("expected a JSON object")
    kind = message.get("type")
    if kind == "hello":
        visitor = message.get("visitor")
        ok = isinstance(visitor, str) and VISITOR.fullmatch(visitor)
        return Hello(visitor if ok else None)
    if kind == "start":
        return Start()
    if kind == "message":
        text = message.get("text")
        if not isinstance(text, str):
            raise ChatError('a message needs "text", a string')
        if not text.strip():
            raise ChatError("a message needs some text")
        if len(text) > MAX_MESSAGE:
            raise ChatError(f"a message is at most {MAX_MESSAGE} characters")
        return Said(text)
    named = kind[:32] if isinstance(kind, str) else type(kind).__name__  # never what was written
    raise ChatError(f'unknown "type" {named!r}: expected hello, start or message')


def welcome(visitor: str, resumed: bool) -> str:
    """The answer to `hello`: the visitor id to keep, and whether a conversation goes on."""
    return _json({"type": "welcome", "visitor": visitor, "resumed": resumed})


def replies(reply: Reply) -> list[str]:
    """A turn as the messages the widget shows: its messages, its choices, its end."""
    out = [_json({"type": "message", "text": text}) for text in reply.messages]
    if reply.choices and not reply.ended:
        listed = [{"key": c.key, "label": c.label} for c in reply.choices]
        out.append(_json({"type": "choices", "choices": listed}))
    if reply.ended:
        out.append(_json({"type": "end", "outcome": reply.outcome}))
    return out


def error(why: str) -> str:
    """An error the widget shows: what was wrong with the client's message."""
    return _json({"type": "error", "error": why})


def _json(message: dict[str, object]) -> str:
    return orjson.dumps(message).decode()
