"""In-memory sessions: for tests and single-process development (lost on restart)."""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager

from ivr.engine.session import Session
from ivr.store.base import LocalLocks, Stored, ttl


class MemorySessions:
    def __init__(self) -> None:
        self._data: dict[
            str, tuple[str, str, float]
        ] = {}  # call id -> (session json, reply, expiry)
        self._outbox: set[str] = set()
        self._locks = LocalLocks()

    async def load(self, call_id: str) -> Stored | None:
        item = self._data.get(call_id)
        if item is None or item[2] < time.time():
            self._data.pop(call_id, None)
            return None
        return Stored(Session.from_json(item[0]), item[1])

    async def save(self, session: Session, reply: str) -> None:
        # stored as JSON so a caller cannot keep mutating what the store holds
        self._data[session.call_id] = (session.to_json(), reply, time.time() + ttl(session))
        if session.ended:
            self._outbox.add(session.call_id)

    def lock(self, call_id: str) -> AbstractAsyncContextManager[None]:
        return self._locks(call_id)

    async def unrecorded(self) -> list[Session]:
        return [
            Session.from_json(self._data[c][0]) for c in sorted(self._outbox) if c in self._data
        ]

    async def mark_recorded(self, call_id: str) -> None:
        self._outbox.discard(call_id)

    async def close(self) -> None:
        self._data.clear()
