"""The web chat (docs/chat.md) over real WebSockets on loopback, through the example flows:
the protocol, the conversation it carries (records on channel `chat`, the customer a
keyed hash of the visitor id), a visitor coming back, and every way a socket is refused.
The widget in a browser: test_chat_browser.py."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from ivr.channels.chat import VISITOR
from ivr.server import KEYS, TEXTS
from ivr.store.records import CallRecord
from ivr.web import chat as chat_module
from ivr.web.chat import MAX_FRAME
from tests.functional.conftest import OPEN, MakeServer, Server, metric
from tests.functional.twilio_sim import wait_until

Socket = aiohttp.ClientWebSocketResponse
ORDER_ASK = "Please send your six digit order number."
ORDER_MENU = "Anything else? Reply 1 to check another order, or 2 if that's all."


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def connect(
    server: Server, http: aiohttp.ClientSession, flow: str = "order_status", **kwargs: Any
) -> Socket:
    """A chat socket, opened as the widget on the server's own page opens it."""
    kwargs.setdefault("origin", server.url)
    return await http.ws_connect(f"{server.url}/chat/ws?flow={flow}", **kwargs)


async def read_until(ws: Socket, done: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The server's messages up to the first that is `done` (bounded: each within 30 s)."""
    got: list[dict[str, Any]] = []
    while not got or not done(got[-1]):
        message = await ws.receive(timeout=30)
        assert message.type == aiohttp.WSMsgType.TEXT, (message, got)
        got.append(message.json())
    return got


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m["text"] for m in messages if m["type"] == "message"]


def said(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["type"] == "message" and m["text"] == text


def typed(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["type"] == kind


async def hello(ws: Socket, visitor: str | None = None) -> dict[str, Any]:
    await ws.send_json({"type": "hello", "visitor": visitor})
    [welcome] = await read_until(ws, typed("welcome"))
    return welcome


async def records_of(server: Server, count: int) -> list[CallRecord]:
    async def written() -> list[CallRecord]:
        found = await server.records()
        return found if len(found) >= count else []

    return await wait_until(written)


async def closed(ws: Socket) -> list[dict[str, Any]]:
    """What the server sent until it closed the socket (its code: `ws.close_code`)."""
    sent = []
    while True:
        message = await ws.receive(timeout=30)
        if message.type != aiohttp.WSMsgType.TEXT:
            return sent
        sent.append(message.json())


# -- conversations ---------------------------------------------------------------------------


async def test_an_order_status_chat(
    server: Server, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    ws = await connect(server, http)
    welcome = await hello(ws)
    assert welcome["resumed"] is False and VISITOR.fullmatch(welcome["visitor"])
    greeting = await read_until(ws, said(ORDER_ASK))
    assert texts(greeting) == [
        "Hi, this is Example Shop. I can tell you where your order is.",
        ORDER_ASK,
    ]
    await ws.send_json({"type": "message", "text": "order 123456"})
    answer = await read_until(ws, typed("choices"))
    assert texts(answer)[0].startswith("Order 123456 has shipped with UPS"), answer
    assert texts(answer)[-1] == ORDER_MENU
    assert answer[-1]["choices"] == [
        {"key": "1", "label": "another order"},
        {"key": "2", "label": "goodbye"},
        {"key": "0", "label": "agent"},
    ]
    await ws.send_json({"type": "message", "text": "2"})  # the goodbye button's key
    bye = await read_until(ws, typed("end"))
    assert bye == [
        {"type": "message", "text": "Thank you for shopping with Example Shop. Goodbye."},
        {"type": "end", "outcome": "contained"},
    ]
    await ws.close()
    [record] = await records_of(server, 1)
    assert (record.channel, record.outcome, record.tasks) == (
        "chat",
        "contained",
        ("order_status",),
    )
    # the conversation is linked by the keyed hash of `chat:VISITOR`, never the id itself
    customer = server.app[KEYS].customer_id(f"chat:{welcome['visitor']}")
    assert await server.app[TEXTS].sessions.linked(f"chat:{customer}") == record.call_sid
    assert record.call_sid.startswith("TX")
    ended = metric(await server.metrics(), "ivr_calls_ended_total", channel="chat")
    assert ended == 1
    assert "chat opened on order_status (new)" in caplog.text
    assert "order 123456" not in caplog.text and welcome["visitor"] not in caplog.text


async def test_a_visitor_back_continues_where_they_were(
    server: Server, http: aiohttp.ClientSession
) -> None:
    first = await connect(server, http)
    visitor = (await hello(first))["visitor"]
    await read_until(first, said(ORDER_ASK))
    await first.send_json({"type": "message", "text": "12"})  # too short: asked again
    await read_until(first, said(ORDER_ASK))
    await first.close()  # the page is reloaded

    again = await connect(server, http)
    welcome = await hello(again, visitor)
    assert welcome == {"type": "welcome", "visitor": visitor, "resumed": True}
    shown = await read_until(again, said(ORDER_ASK))  # the last turn, as it was said
    assert texts(shown) == ["That is not a six digit order number.", ORDER_ASK]
    await again.send_json({"type": "message", "text": "654321"})
    answer = await read_until(again, typed("choices"))
    assert texts(answer)[0].startswith("Order 654321 was delivered")
    await again.close()

    # the same visitor on another flow's chat: the order conversation is left, abandoned
    bank = await connect(server, http, "telebanking")
    assert (await hello(bank, visitor))["resumed"] is False
    await read_until(bank, typed("choices"))
    [record] = await records_of(server, 1)
    assert (record.flow_id, record.outcome, record.channel) == ("order_status", "abandoned", "chat")
    assert record.tasks == ("order_status",)


async def test_an_unknown_visitor_id_gets_a_new_one(
    server: Server, http: aiohttp.ClientSession
) -> None:
    ws = await connect(server, http)
    welcome = await hello(ws, "not an id!")
    assert welcome["visitor"] != "not an id!" and VISITOR.fullmatch(welcome["visitor"])
    assert welcome["resumed"] is False


async def test_after_the_end_start_begins_a_new_conversation(
    server: Server, http: aiohttp.ClientSession
) -> None:
    ws = await connect(server, http)
    await hello(ws)
    await read_until(ws, said(ORDER_ASK))
    await ws.send_json({"type": "message", "text": "agent"})  # a global: the order team
    told = await read_until(ws, typed("end"))
    assert told[-1] == {"type": "end", "outcome": "transferred"}
    await ws.send_json({"type": "start"})
    greeting = await read_until(ws, said(ORDER_ASK))
    assert texts(greeting)[0].startswith("Hi, this is Example Shop")
    records = await records_of(server, 1)
    assert [(r.outcome, r.reason) for r in records] == [("transferred", "global")]


async def test_a_balance_is_not_asked_for_by_chat(
    server: Server, http: aiohttp.ClientSession
) -> None:
    """Telebanking's account number is sensitive: on chat the customer is told to call."""
    server.set_hours(OPEN)
    ws = await connect(server, http, "telebanking")
    await hello(ws)
    menu = await read_until(ws, typed("choices"))
    assert texts(menu)[0] == "Welcome to Example Bank."
    keys = [(c["key"], c["label"]) for c in menu[-1]["choices"]]
    assert keys[:3] == [("1", "balance"), ("2", "block card"), ("3", "transactions")]
    await ws.send_json({"type": "message", "text": "1"})
    told = await read_until(ws, typed("end"))
    assert texts(told) == [
        "For your security we can't do this by message. Please call us at +15550100."
    ]
    assert told[-1] == {"type": "end", "outcome": "transferred"}
    [record] = await records_of(server, 1)
    assert (record.channel, record.outcome, record.reason, record.reason_detail) == (
        "chat",
        "transferred",
        "channel",
        "ask_account",
    )


# -- what is refused -------------------------------------------------------------------------

BAD = {
    "not JSON": ("hello there", "expected a JSON object"),
    "not an object": ("[1, 2]", "expected a JSON object"),
    "unknown type": (
        '{"type": "typing"}',
        "unknown \"type\" 'typing': expected hello, start or message",
    ),
    "no text": ('{"type": "message"}', 'a message needs "text", a string'),
    "blank text": ('{"type": "message", "text": "  "}', "a message needs some text"),
    "too long": (
        '{"type": "message", "text": "' + "x" * 1601 + '"}',
        "a message is at most 1600 characters",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
async def test_a_message_not_understood_is_answered_with_an_error(
    server: Server, http: aiohttp.ClientSession, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The socket stays open, and the conversation where it was."""
    caplog.set_level(logging.WARNING)
    data, why = BAD[case]
    ws = await connect(server, http)
    await hello(ws)
    await read_until(ws, said(ORDER_ASK))
    await ws.send_str(data)
    assert await read_until(ws, typed("error")) == [{"type": "error", "error": why}]
    assert f"a chat message was not understood: {why}" in caplog.text
    await ws.send_json({"type": "message", "text": "123456"})
    assert texts(await read_until(ws, typed("choices")))[0].startswith("Order 123456")


async def test_hello_comes_first_and_once(server: Server, http: aiohttp.ClientSession) -> None:
    ws = await connect(server, http)
    await ws.send_json({"type": "message", "text": "hi"})
    assert (await read_until(ws, typed("error")))[0]["error"] == 'send "hello" first'
    await hello(ws)
    await read_until(ws, said(ORDER_ASK))
    await ws.send_json({"type": "hello", "visitor": None})
    assert (await read_until(ws, typed("error")))[0]["error"] == '"hello" was sent already'
    await ws.send_bytes(b"\x00\x01")
    error = (await read_until(ws, typed("error")))[0]["error"]
    assert error == "expected text messages (JSON), not binary"


async def test_too_many_messages_not_understood_close_the_socket(
    server: Server, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    ws = await connect(server, http)
    for _ in range(chat_module.MAX_ERRORS):
        await ws.send_str("?")
    sent = await closed(ws)
    assert len(sent) == chat_module.MAX_ERRORS and ws.close_code == 1008
    assert "closed a chat socket after 20 messages not understood (1008)" in caplog.text
    rejected = metric(await server.metrics(), "ivr_webhook_rejected_total", reason="bad_request")
    assert rejected == 1


CLOSE = {"size": (1009, "ws_message_size"), "rate": (1008, "ws_rate")}
LOGGED = {
    "size": "closed a chat socket: a message over 64 KiB (1009)",
    "rate": "closed a chat socket sending more than 100 messages a second (1008)",
}


@pytest.mark.parametrize("limit", ["size", "rate"])
async def test_the_chat_socket_has_the_streams_limits(
    make_server: MakeServer,
    http: aiohttp.ClientSession,
    limit: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    server = await make_server(ws_rate=100)
    code, reason = CLOSE[limit]
    ws = await connect(server, http)
    await hello(ws)
    if limit == "size":
        await ws.send_str('{"type": "message", "text": "' + "x" * MAX_FRAME + '"}')
    else:
        for _ in range(1000):  # far more than the 100 a second the server takes
            if ws.closed:
                break
            try:
                await ws.send_str('{"type": "start"}')
            except ConnectionError:  # closed meanwhile
                break
    await closed(ws)
    assert ws.close_code == code
    rejected = metric(await server.metrics(), "ivr_webhook_rejected_total", reason=reason)
    assert rejected == 1
    assert LOGGED[limit] in caplog.text


async def test_an_unknown_flow_is_refused(
    server: Server, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    ws = await connect(server, http, "no_such_flow")
    assert await closed(ws) == [{"type": "error", "error": "no flow 'no_such_flow' is loaded here"}]
    assert ws.close_code == 1008
    assert "refused a chat for flow 'no_such_flow', which is not loaded" in caplog.text


async def test_a_socket_without_hello_is_closed(
    server: Server,
    http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    monkeypatch.setattr(chat_module, "HELLO_WAIT", 0.2)
    ws = await connect(server, http)
    assert await closed(ws) == []
    assert ws.close_code == 1008
    assert "closed a chat socket that sent no hello in 0.2 s (1008)" in caplog.text


async def test_a_socket_idle_past_the_flows_idle_time_is_closed(
    server: Server, http: aiohttp.ClientSession
) -> None:
    """Its conversation is over then (abandoned): the socket is closed 1000."""
    server.edit_flow("order_status.yaml", "defaults:\n", "defaults:\n  idle: 0.5\n")
    ws = await connect(server, http)
    await hello(ws)
    sent = await closed(ws)
    assert texts(sent)[-1] == ORDER_ASK and ws.close_code == 1000


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1:1"])
async def test_a_page_of_another_site_may_not_open_the_chat(
    server: Server, http: aiohttp.ClientSession, origin: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await connect(server, http, origin=origin)
    assert refused.value.status == 403
    assert metric(await server.metrics(), "ivr_webhook_rejected_total", reason="origin") == 1
    assert f"refused a chat socket from origin {origin!r} (IVR_CHAT_ORIGINS)" in caplog.text


async def test_ivr_chat_origins_lets_other_sites_in(
    make_server: MakeServer, http: aiohttp.ClientSession
) -> None:
    server = await make_server(chat_origins=("https://shop.example",))
    ws = await connect(server, http, origin="https://shop.example")
    assert (await hello(ws))["type"] == "welcome"
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await connect(server, http, origin="https://other.example")


async def test_the_public_urls_origin_is_this_servers_own(
    make_server: MakeServer, http: aiohttp.ClientSession
) -> None:
    """Behind a proxy the page's origin is the public one, not the Host the proxy sends."""
    server = await make_server(public_url="https://ivr.example.com")
    ws = await connect(server, http, origin="https://ivr.example.com")
    assert (await hello(ws))["type"] == "welcome"


async def test_the_widget_and_its_page_are_on_the_public_listener(
    server: Server, http: aiohttp.ClientSession
) -> None:
    async with http.get(server.url + "/static/chat.js") as widget:
        assert widget.status == 200
        assert widget.content_type in ("application/javascript", "text/javascript")
        assert "chat/ws" in await widget.text()
    async with http.get(server.url + "/chat?flow=order_status") as page:
        assert page.status == 200
        assert '<script src="static/chat.js" data-flow="order_status" data-open>' in (
            await page.text()
        )
    async with http.get(server.url + "/chat?flow=%3Cb%3E") as unknown:
        assert unknown.status == 404
        assert "No flow <code>&lt;b&gt;</code> is loaded here." in await unknown.text()
    async with http.get(server.url + "/chat/ws") as plain:  # no upgrade
        assert plain.status == 400
    for admin in ("/phone", "/static/phone.js", "/flows", "/metrics"):  # the admin's only
        async with http.get(server.url + admin) as response:
            assert response.status == 404, admin
