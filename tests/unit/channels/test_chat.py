"""The web chat's protocol codec: client messages read, turns written (docs/chat.md)."""

from __future__ import annotations

import orjson
import pytest

from ivr.channels.chat import ChatError, Hello, Said, Start, error, parse, replies, welcome
from ivr.channels.text import Choice, Reply
from ivr.config import web_origin
from ivr.errors import IvrError

VISITOR = "aB3_-" * 4


@pytest.mark.parametrize(
    ("data", "read"),
    [
        ('{"type": "hello", "visitor": null}', Hello(None)),
        ('{"type": "hello"}', Hello(None)),
        (f'{{"type": "hello", "visitor": "{VISITOR}"}}', Hello(VISITOR)),
        ('{"type": "hello", "visitor": "short"}', Hello(None)),  # not an id: a new one
        ('{"type": "hello", "visitor": "has spaces in it, see"}', Hello(None)),
        ('{"type": "hello", "visitor": 12345678901234567}', Hello(None)),
        ('{"type": "start"}', Start()),
        ('{"type": "message", "text": "order 123456"}', Said("order 123456")),
        ('{"type": "message", "text": "1", "extra": true}', Said("1")),
    ],
)
def test_client_messages(data: str, read: object) -> None:
    assert parse(data) == read


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ("hello", "expected a JSON object"),
        ('"hello"', "expected a JSON object"),
        ("", "expected a JSON object"),
        ('{"visitor": null}', "unknown \"type\" 'NoneType': expected hello, start or message"),
        ('{"type": 7}', "unknown \"type\" 'int': expected hello, start or message"),
        ('{"type": ["4111 1111"]}', "unknown \"type\" 'list': expected hello, start or message"),
        ('{"type": "' + "x" * 100 + '"}', f'unknown "type" {"x" * 32!r}: expected'),
        ('{"type": "message", "text": 5}', 'a message needs "text", a string'),
        ('{"type": "message", "text": "\\n "}', "a message needs some text"),
        ('{"type": "message", "text": "' + "é" * 1601 + '"}', "a message is at most 1600"),
    ],
)
def test_what_is_not_the_protocol_says_why(data: str, why: str) -> None:
    with pytest.raises(ChatError) as e:
        parse(data)
    assert str(e.value).startswith(why) and isinstance(e.value, IvrError)


def test_a_turn_as_messages() -> None:
    menu = Reply(["Found it.", "Reply 1 or 2."], [Choice("1", "another"), Choice("2", "bye")])
    assert [orjson.loads(m) for m in replies(menu)] == [
        {"type": "message", "text": "Found it."},
        {"type": "message", "text": "Reply 1 or 2."},
        {
            "type": "choices",
            "choices": [{"key": "1", "label": "another"}, {"key": "2", "label": "bye"}],
        },
    ]
    done = Reply(["Goodbye."], ended=True, outcome="contained")
    assert [orjson.loads(m) for m in replies(done)] == [
        {"type": "message", "text": "Goodbye."},
        {"type": "end", "outcome": "contained"},
    ]
    assert replies(Reply()) == []


def test_welcome_and_error() -> None:
    assert orjson.loads(welcome(VISITOR, True)) == {
        "type": "welcome",
        "visitor": VISITOR,
        "resumed": True,
    }
    assert orjson.loads(error('say "hi"')) == {"type": "error", "error": 'say "hi"'}


@pytest.mark.parametrize(
    ("given", "origin"),
    [
        ("https://Shop.Example", "https://shop.example"),
        ("https://shop.example:443", "https://shop.example"),
        ("http://shop.example:80/", "http://shop.example"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:3000", "http://[::1]:3000"),
        ("null", None),
        ("file://", None),
        ("https://user@shop.example", None),
        ("https://shop.example:port", None),
    ],
)
def test_origins_as_browsers_send_them(given: str, origin: str | None) -> None:
    assert web_origin(given) == origin
