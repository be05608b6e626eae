"""The session store interface: a call's Session and the reply last sent for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from ivr.engine.session import Session

ACTIVE_TTL = 6 * 3600.0  # a call in progress longer than this is given up
ENDED_TTL = 3600.0  # ended calls stay to answer retries and status callbacks


@dataclass(frozen=True)
class Stored:
    session: Session
    reply: str  # the TwiML last returned, served again when Twilio retries a webhook


class SessionStore(Protocol):
    async def load(self, call_id: str) -> Stored | None: ...

    async def save(self, session: Session, reply: str) -> None:
        """Durable before it returns. An ended session joins the outbox of unrecorded calls."""

    def lock(self, call_id: str) -> AbstractAsyncContextManager[None]:
        """Held around load..save so two webhooks of one call never interleave."""

    async def unrecorded(self) -> list[Session]:
        """Ended sessions whose call record is not written yet."""

    async def mark_recorded(self, call_id: str) -> None: ...

    async def close(self) -> None: ...


class LocalLocks:
    """Per-call asyncio locks for stores used by one process; unused locks are dropped."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def __call__(self, call_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(call_id) or (asyncio.Lock(), 0)
        self._locks[call_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[call_id]
            if users <= 1:
                del self._locks[call_id]
            else:
                self._locks[call_id] = (lock, users - 1)


def ttl(session: Session) -> float:
    return ENDED_TTL if session.ended else ACTIVE_TTL
