"""The web chat on the public listener: its WebSocket `/chat/ws?flow=ID`, the widget
`/static/chat.js` that websites embed, and `/chat?flow=ID`, a page to try it on.

Thin: what the JSON means is `ivr.channels.chat`, the conversation is
`TextConversations`' (as for SMS, channel `chat`, the customer a keyed hash of
`chat:VISITOR`). Here: which pages may open the socket (this server's own origin and
IVR_CHAT_ORIGINS), the limits the Media Streams socket has (a message over 64 KiB
closes it 1009, more than IVR_WS_RATE a second 1008), and a `hello` within
HELLO_WAIT seconds. Nothing the customer wrote is logged.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from html import escape
from pathlib import Path

from aiohttp import WebSocketError, WSCloseCode, WSMsgType, web

from ivr.channels import chat as protocol
from ivr.channels.conversations import TextConversations
from ivr.channels.text import Reply
from ivr.config import web_origin
from ivr.logs import hidden, hide
from ivr.metrics import Metrics
from ivr.registry import FlowRegistry, Route
from ivr.telephony.bucket import TokenBucket
from ivr.telephony.signature import SignatureCheck
from ivr.web.guard import Guard

log = logging.getLogger("ivr.chat")

PAGE, SOCKET, WIDGET = "/chat", "/chat/ws", "/static/chat.js"
WIDGET_FILE = Path(__file__).parent / "static" / "chat.js"
CHANNEL = "chat"
MAX_FRAME = 64 * 1024  # bytes a client message may have, as on the Media Streams socket
HELLO_WAIT = 10.0  # seconds a new socket has to say hello: one that does not holds a descriptor
MAX_ERRORS = 20  # messages not understood on one socket before it is closed (1008)
HEARTBEAT = 30.0  # seconds between pings: finds dead peers, keeps proxies from idling it out
SORRY = "Sorry, something went wrong. Please try again."


class ChatSockets:
    """The `/chat/ws` handler and its open sockets, one per process: made by `add_chat`."""

    def __init__(
        self,
        flows: FlowRegistry,
        texts: Callable[[], TextConversations],
        metrics: Metrics,
        signature: SignatureCheck,
        origins: tuple[str, ...] = (),
        rate: int = 200,
    ) -> None:
        """`texts`: the conversations (made when the app starts: looked up per message);
        `origins`: other sites' pages that may open the chat; `rate`: messages a second
        a socket may send (0: any)."""
        self.flows, self.texts, self.metrics = flows, texts, metrics
        self.signature, self.origins, self.rate = signature, origins, rate
        self.open: set[web.WebSocketResponse] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if not self.origin_allowed(request, origin):
            self.metrics.rejected("origin")
            shown = (origin or "")[:100]
            log.warning("refused a chat socket from origin %r (IVR_CHAT_ORIGINS)", shown)
            raise web.HTTPForbidden(text="this page's origin may not open the chat")
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME, heartbeat=HEARTBEAT)
        if not ws.can_prepare(request).ok:
            self.metrics.rejected("bad_request")
            raise web.HTTPBadRequest(text="expected a WebSocket upgrade")
        await ws.prepare(request)
        self.open.add(ws)
        try:
            flow_id = request.query.get("flow", "")
            if self.flows.route("", flow_id or None) is None:
                log.warning("refused a chat for flow %r, which is not loaded", flow_id[:64])
                named = f"no flow {flow_id[:64]!r} is loaded here"
                why = named if flow_id else "name a flow: /chat/ws?flow=ID"
                await ws.send_str(protocol.error(why))
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"unknown flow")
                return ws
            await Chat(self, ws, flow_id or None).run()
        finally:
            self.open.discard(ws)
        return ws

    def origin_allowed(self, request: web.Request, origin: str | None) -> bool:
        """The page's origin is this server's (as the browser or IVR_PUBLIC_URL names it)
        or one of IVR_CHAT_ORIGINS. A client that is no browser sends no Origin: it could
        send any, so it is let through."""
        if origin is None:
            return True
        given = web_origin(origin)
        if given is None:  # `null`: a sandboxed frame, a file
            return False
        if given in self.origins or given == web_origin(self.signature.url(request)):
            return True
        return Guard.origin_allowed(origin, request.headers.get("Host"))

    async def close(self, _: web.Application | None = None) -> None:
        """The server stops: the widgets reconnect to another process, or later."""
        for ws in list(self.open):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping")


class Chat:
    """One widget's socket: its visitor, and the conversation it carries."""

    def __init__(self, sockets: ChatSockets, ws: web.WebSocketResponse, flow: str | None) -> None:
        self.sockets, self.ws, self.flow = sockets, ws, flow
        self.visitor: str | None = None
        self.idle = 1800.0  # seconds without a message before it closes: the flow's idle
        self.bucket = TokenBucket(sockets.rate, time.monotonic())
        self.errors = 0

    @property
    def address(self) -> str:
        return f"{CHANNEL}:{self.visitor}"

    async def run(self) -> None:
        while not self.ws.closed:
            # around the whole read: the pongs to the heartbeat's pings are no messages
            try:
                wait = HELLO_WAIT if self.visitor is None else self.idle
                message = await asyncio.wait_for(self.ws.receive(), wait)
            except TimeoutError:
                await self.timed_out()
                return
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return
            if not self.bucket.take(time.monotonic()):
                await self.too_fast()
                return
            if message.type == WSMsgType.ERROR:
                self.broken(message.data)
                return
            await self.receive(message.data if message.type == WSMsgType.TEXT else None)

    async def receive(self, data: str | None) -> None:
        """One client message: understood, or answered with an error."""
        try:
            if data is None:
                raise protocol.ChatError("expected text messages (JSON), not binary")
            inbound = protocol.parse(data)
            if self.visitor is None and not isinstance(inbound, protocol.Hello):
                raise protocol.ChatError('send "hello" first')
            if self.visitor is not None and isinstance(inbound, protocol.Hello):
                raise protocol.ChatError('"hello" was sent already')
        except protocol.ChatError as e:
            await self.refuse(str(e))
            return
        try:
            await self.act(inbound)
        except Exception:  # the store may be down: the customer may try again
            log.exception("a chat turn failed")
            await self.send([protocol.error(SORRY)])

    async def act(self, inbound: protocol.Inbound) -> None:
        if isinstance(inbound, protocol.Hello):
            self.visitor = inbound.visitor or secrets.token_urlsafe(18)
            await self.begin(hello=True)
        elif isinstance(inbound, protocol.Start):
            await self.begin(hello=False)
        else:
            hidden.set(())  # a socket's texts are hidden one at a time, as a webhook's are
            hide(inbound.text)
            route = self.route()
            if route is None:
                await self.gone()
                return
            texts = self.sockets.texts()
            await self.answer(await texts.receive(CHANNEL, self.address, inbound.text, route))

    async def begin(self, hello: bool) -> None:
        """The visitor's conversation in this flow as it stands (a page reloaded), or a new
        one: the flow greets and asks its first question."""
        route = self.route()
        if route is None:
            await self.gone()
            return
        self.idle = route.flow.idle
        texts = self.sockets.texts()
        last = await texts.resume(CHANNEL, self.address, route.flow.id)
        if hello:
            assert self.visitor is not None
            await self.send([protocol.welcome(self.visitor, last is not None)])
            log.info("chat opened on %s (%s)", route.flow.id, "resumed" if last else "new")
        if last is None:
            last = await texts.receive(CHANNEL, self.address, "", route)
        await self.answer(last)

    def route(self) -> Route | None:
        """The flow a new conversation starts on (an experiment's variant by visitor)."""
        return self.sockets.flows.route_call("", self.address, "", self.flow)

    async def gone(self) -> None:
        """The flow was unloaded (a reload removed it) while the socket was open."""
        log.warning("closed a chat: its flow %r is no longer loaded", (self.flow or "")[:64])
        await self.send([protocol.error("this chat's flow is no longer available")])
        await self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"unknown flow")

    async def answer(self, reply: Reply) -> None:
        await self.send(protocol.replies(reply))

    async def send(self, messages: list[str]) -> None:
        for message in messages:
            if self.ws.closed:
                return
            await self.ws.send_str(message)

    # -- limits ----------------------------------------------------------------------------------

    async def timed_out(self) -> None:
        """No hello in time (1008), or no message for the flow's idle time, after which its
        conversation is over anyway (1000): a socket left open holds a descriptor."""
        if self.visitor is None:
            log.warning("closed a chat socket that sent no hello in %g s (1008)", HELLO_WAIT)
            await self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"no hello")
        else:
            log.info("closed a chat socket idle for %g s (its flow's defaults.idle)", self.idle)
            await self.ws.close(code=WSCloseCode.OK, message=b"idle")

    async def refuse(self, why: str) -> None:
        """A message not understood: an error back; too many of them close the socket."""
        self.errors += 1
        log.warning("a chat message was not understood: %s", why)
        await self.send([protocol.error(why)])
        if self.errors >= MAX_ERRORS:
            log.warning("closed a chat socket after %d messages not understood (1008)", MAX_ERRORS)
            self.sockets.metrics.rejected("bad_request")
            await self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"not understood")

    async def too_fast(self) -> None:
        rate = self.sockets.rate
        log.warning("closed a chat socket sending more than %d messages a second (1008)", rate)
        self.sockets.metrics.rejected("ws_rate")
        await self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too many messages")

    def broken(self, error: object) -> None:
        """aiohttp read no message and closed the socket itself (1009: one too big)."""
        code = error.code if isinstance(error, WebSocketError) else None
        if code == WSCloseCode.MESSAGE_TOO_BIG:
            log.warning("closed a chat socket: a message over %d KiB (1009)", MAX_FRAME // 1024)
            self.sockets.metrics.rejected("ws_message_size")
        else:  # a laptop closed, a train in a tunnel: no pong came, the socket was dropped
            log.info("a chat socket broke: %s", type(error).__name__)


def add_chat(
    app: web.Application,
    flows: FlowRegistry,
    texts: Callable[[], TextConversations],
    metrics: Metrics,
    signature: SignatureCheck,
    origins: tuple[str, ...] = (),
    rate: int = 200,
) -> ChatSockets:
    """Serve the chat's socket, widget and page on the public `app`."""
    sockets = ChatSockets(flows, texts, metrics, signature, origins, rate)

    async def widget(_: web.Request) -> web.StreamResponse:
        # embedded by other sites: revalidated (ETag), so a new version is taken at once
        return web.FileResponse(WIDGET_FILE, headers={"Cache-Control": "no-cache"})

    async def page(request: web.Request) -> web.Response:
        chosen = request.query.get("flow", "")[:64]
        found = bool(chosen) and flows.route("", chosen) is not None
        status = 404 if chosen and not found else 200
        return web.Response(text=demo(chosen, found), content_type="text/html", status=status)

    app.router.add_get(SOCKET, sockets.handle)
    app.router.add_get(WIDGET, widget)
    app.router.add_get(PAGE, page)
    app.on_shutdown.append(sockets.close)  # before the server waits for its handlers
    return sockets


def demo(flow: str, found: bool) -> str:
    """`/chat?flow=ID`: a page with the widget open on that flow, and how to embed it."""
    named = escape(flow)
    if found:
        shown = (
            f"<p>The chat widget is open on flow <code>{named}</code> (bottom right). "
            "A website embeds it with:</p>"
            f'<pre><code>&lt;script src="https://YOUR-IVR-HOST/static/chat.js" '
            f'data-flow="{named}"&gt;&lt;/script&gt;</code></pre>'
            f'<script src="static/chat.js" data-flow="{named}" data-open></script>'
        )
    elif flow:
        shown = f'<p role="alert">No flow <code>{named}</code> is loaded here.</p>'
    else:
        shown = "<p>Name a flow to chat with.</p>"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,"><title>Web chat · ivr</title>'
        "<style>body{font:16px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:40rem;"
        "padding:0 1rem;color:#1b1f24}pre{background:#f3f4f6;padding:.75rem;overflow:auto}"
        "input,button{font:inherit;padding:.3rem .5rem}</style></head>"
        '<body><main><h1>Web chat</h1><form method="get">'
        '<label for="flow">Flow</label> '
        f'<input id="flow" name="flow" value="{named}" required maxlength="64"> '
        "<button>Chat</button></form>"
        f"{shown}</main></body></html>\n"
    )
