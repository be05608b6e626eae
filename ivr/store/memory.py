"""In-memory sessions: for tests and single-process development (lost on restart)."""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager

from ivr.engine.session import Session
from ivr.store.base import LocalFetches, LocalLinks, LocalLocks, Stored, ttl

PURGE_EVERY = 1000  # saves between sweeps of expired sessions


class MemorySessions(LocalFetches, LocalLinks):
    def __init__(self) -> None:
        LocalFetches.__init__(self)
        LocalLinks.__init__(self)
        self._data: dict[
            str, tuple[str, str, float]
        ] = {}  # call id -> (session json, reply, expiry)
        # ended call id -> session json, kept past expiry until its record is written
        self._outbox: dict[str, str] = {}
        self._active: dict[str, float] = {}  # call in progress -> when it was last saved
        self._saves = 0
        self._locks = LocalLocks()

    async def load(self, call_id: str) -> Stored | None:
        item = self._data.get(call_id)
        if item is None or item[2] < time.time():
            self._data.pop(call_id, None)
            return None
        return Stored(Session.from_json(item[0]), item[1])

    async def save(self, session: Session, reply: str) -> None:
        # stored as JSON so a caller cannot keep mutating what the store holds
        text = session.to_json()
        self._data[session.call_id] = (text, reply, time.time() + ttl(session))
        if session.ended:
            self._outbox[session.call_id] = text
            self._active.pop(session.call_id, None)
        else:
            self._active[session.call_id] = time.time()
        self._saves += 1
        if self._saves % PURGE_EVERY == 0:  # ended calls are seldom loaded again to be dropped
            now = time.time()
            self._data = {c: item for c, item in self._data.items() if item[2] >= now}

    def lock(self, call_id: str) -> AbstractAsyncContextManager[None]:
        return self._locks(call_id)

    async def stale(self, before: float) -> list[str]:
        return [c for c, saved in self._active.items() if saved < before and c in self._data]

    async def unrecorded(self) -> list[Session]:
        return [Session.from_json(self._outbox[c]) for c in sorted(self._outbox)]

    async def mark_recorded(self, call_id: str, final: bool = False) -> None:
        self._outbox.pop(call_id, None)
        if final:
            self._data.pop(call_id, None)
            await self.drop_fetch(call_id)

    async def close(self) -> None:
        self._data.clear()
