"""Slow clients: a deadline to send a request, and a cap on connections that have not.

aiohttp has no header-read timeout: a client may drip a header a byte a second for as
long as it likes, and a thousand such connections were all still open after 30 s,
holding file descriptors Twilio's next webhooks need. So, at the protocol level:
- a new connection has `deadline` seconds to send a complete request (its headers; the
  webhooks bound the body's read themselves), or it is closed;
- a request answered 400 or more (an unsigned one, say) starts the deadline again: only
  a complete request that was taken keeps a connection;
- at most `limit` connections may wait like that at once; a new one past it closes the
  one that has waited longest, with a log line and a metric
  (`ivr_webhook_rejected_total`): Twilio sends its request as soon as it connects, so
  its connections are taken long before a flood of slow ones can push them out, where
  refusing new connections would lock Twilio out for as long as the flood lasts.
Not per address: Twilio and load balancers arrive from few of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

log = logging.getLogger("ivr.connections")

DEADLINE = 10.0  # seconds to send a complete request
LIMIT = 512  # connections without one, at once (a quarter of a default 1024 descriptors)


class ConnectionGuard:
    """Made by the server; `watch` its aiohttp Server: the guard follows its connections
    and wraps its request handler (no middleware, no response signal: those cost every
    request two coroutines more and a signal's)."""

    def __init__(
        self,
        deadline: float = DEADLINE,
        limit: int = LIMIT,
        refused: Callable[[str], None] = lambda why: None,
    ) -> None:
        self.deadline, self.limit, self.refused = deadline, limit, refused
        # connection -> its deadline and transport, the longest waiting first
        self.waiting: dict[Any, tuple[asyncio.TimerHandle, asyncio.Transport]] = {}
        self._noted = 0.0  # when the cap was last logged: once a second at most

    def watch(self, server: web.Server) -> None:
        """Follow the server's connections from their start to their end, and its requests
        from their start (a complete request: its headers are in) to their answer."""
        made, lost, handle = server.connection_made, server.connection_lost, server.request_handler

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            made(handler, transport)
            if len(self.waiting) >= self.limit:
                self._evict()
            self._wait(handler, transport)

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            self._taken(handler)
            lost(handler, exc)

        async def request_handler(request: web.BaseRequest) -> web.StreamResponse:
            self._taken(request.protocol)
            try:
                response = await handle(request)
            except web.HTTPException as e:
                if e.status >= 400:
                    self._refused(request)
                raise
            except Exception:  # aiohttp answers 500
                self._refused(request)
                raise
            if response.status >= 400:
                self._refused(request)
            return response

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]
        server.request_handler = request_handler

    def _refused(self, request: web.BaseRequest) -> None:
        """A refused request (4xx, 5xx) does not keep its connection: the deadline again."""
        transport = request.transport
        if transport is not None and not transport.is_closing():
            self._taken(request.protocol)
            self._wait(request.protocol, transport)

    def _wait(self, handler: Any, transport: asyncio.Transport) -> None:
        timer = asyncio.get_running_loop().call_later(self.deadline, self._expired, handler)
        self.waiting[handler] = (timer, transport)

    def _taken(self, handler: Any) -> asyncio.Transport | None:
        timer, transport = self.waiting.pop(handler, (None, None))
        if timer is not None:
            timer.cancel()
        return transport

    def _expired(self, handler: Any) -> None:
        transport = self._taken(handler)
        if transport is not None:
            log.info("closed a connection that sent no request in %g s", self.deadline)
            self.refused("slow_client")
            transport.abort()

    def _evict(self) -> None:
        transport = self._taken(next(iter(self.waiting)))
        if transport is not None:
            transport.abort()
        self.refused("connections")
        now = asyncio.get_running_loop().time()
        if now - self._noted >= 1.0:
            self._noted = now
            log.warning(
                "%d connections wait to send a request (slow clients?): closing the "
                "longest waiting for each new one",
                self.limit,
            )
