"""Live node events for `/flows`: a tiny in-process publish/subscribe, read by the page as
a server-sent event stream (`GET /flows/live`).

Whoever steps a call the browser should watch (the `/phone` softphone) calls

    from ivr.web.live import publish, ended
    publish(flow_id, node_name)      # the call is now at this node: /flows lights it
    publish(flow_id, None)           # the call is over: /flows puts the light out
                                     # (the same as ended(flow_id))

from the server's event loop. Each event is one JSON object, the same a `/phone`
WebSocket sends: `{"event": "ivr.node", "flow": ..., "node": ...}` or
`{"event": "ivr.end", "flow": ...}` (with `"call"` when one is given). Nothing is kept: a
page that opens later sees the next event. A browser that reads too slowly loses old
events, never the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from collections.abc import AsyncGenerator
from typing import Any

from aiohttp import web

QUEUE = 64  # events a subscriber may fall behind before the oldest are dropped
KEEPALIVE = 15.0  # seconds between comments on a quiet stream: proxies close idle ones
_HUBS: weakref.WeakSet[LiveNodes] = weakref.WeakSet()


class LiveNodes:
    """One admin app's subscribers; every hub alive in the process hears `publish`."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self.closed = False
        _HUBS.add(self)

    def send(self, event: dict[str, Any]) -> None:
        """Give `event` to every subscriber now (from the event loop's thread)."""
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    async def events(self) -> AsyncGenerator[dict[str, Any] | None, None]:
        """The events from now on; None after each quiet KEEPALIVE; ends at `close`."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE)
        self._queues.add(queue)
        try:
            while not self.closed:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE)
                except TimeoutError:
                    yield None
                    continue
                if event is None:
                    return
                yield event
        finally:
            self._queues.discard(queue)

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        self.closed = True
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)


def publish(flow: str, node: str | None, call: str | None = None) -> None:
    """A call on `flow` is at `node` now: every open `/flows` page lights that node;
    `node` None: the call is over (`ended`)."""
    if node is None:
        ended(flow, call)
        return
    _send({"event": "ivr.node", "flow": flow, "node": node}, call)


def ended(flow: str, call: str | None = None) -> None:
    """A call on `flow` is over: every open `/flows` page puts its light out."""
    _send({"event": "ivr.end", "flow": flow}, call)


def _send(event: dict[str, Any], call: str | None) -> None:
    if call is not None:
        event["call"] = call
    for hub in list(_HUBS):
        hub.send(event)


def stream(hub: LiveNodes) -> web.RouteDef:
    """`GET /flows/live`: the events as `text/event-stream`, one `data:` line of JSON each."""

    async def live(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            }
        )
        await response.prepare(request)
        await response.write(b"retry: 2000\n\n")
        # aclosing: a browser gone (the write raises) unsubscribes at once
        async with contextlib.aclosing(hub.events()) as events:
            async for event in events:
                if event is None:
                    await response.write(b": keepalive\n\n")
                else:
                    await response.write(f"data: {json.dumps(event)}\n\n".encode())
        return response

    return web.get("/flows/live", live)


LIVE = web.AppKey("live", LiveNodes)  # the admin app's hub: request.app[LIVE].send(...)
